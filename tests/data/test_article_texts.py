"""Article-like texts for timing and encoder checks."""

import pytest

from tfrs_emb.data import article_texts
from tfrs_emb.data.article_texts import ArticleParts

PARTS = [ArticleParts("Go入門", "Goを始めます。", ("インストール", "Hello", "まとめ")),
         ArticleParts("AWS", "", ("Lambda", "S3")),
         ArticleParts("Vue.js", "propsの話", ())]


def test_replicated_texts_keep_titles_and_ledes_and_recombine_headings():
  texts = article_texts.replicated_texts(PARTS, 10, seed=1)
  assert len(texts) == 10
  assert texts[:3] == [p.text() for p in PARTS]  # copy 0: the articles themselves
  all_heads = {h for p in PARTS for h in p.headings}
  for j, text in enumerate(texts[3:], 3):
    p = PARTS[j % 3]
    lines = text.split("\n")
    assert lines[:1 + bool(p.lede)] == [p.title, p.lede][:1 + bool(p.lede)]
    assert set(lines[1 + bool(p.lede):]) <= all_heads
  assert texts == article_texts.replicated_texts(PARTS, 10, seed=1)
  assert texts != article_texts.replicated_texts(PARTS, 10, seed=2)
  with pytest.raises(ValueError, match="at least one article"):
    article_texts.replicated_texts([], 3)
