"""Markdown post loader: front matter quirks, headings, skipped posts, --strict."""

import dataclasses
import datetime as dt
import pathlib

import pytest

from tfrs_emb.data import techblog as tb

GOOD = """---
title: "Goで始めるテスト"
date: 2020/01/15 09:25:42
tags:
  - Go
  - テスト
categories:
  - Programming
lede: "一行目の説明。
  二行目の説明。"

---

# はじめに

本文です。

```sh
# not a heading (shell comment)
echo hi
```

~~~~python
## also not a heading
~~~~

## まとめ ##
"""


def _write(root: pathlib.Path, name: str, text, encoding="utf-8") -> pathlib.Path:
  path = root / name
  path.parent.mkdir(parents=True, exist_ok=True)
  if isinstance(text, bytes):
    path.write_bytes(text)
  else:
    path.write_text(text, encoding=encoding)
  return path


def test_front_matter_quirks_and_headings(tmp_path):
  _write(tmp_path, "2020/a.md", GOOD)
  post = tb.load_posts(tmp_path).posts[0]
  assert post.post_id == "2020/a"
  assert post.title == "Goで始めるテスト"
  assert post.date == dt.datetime(2020, 1, 15, 9, 25, 42)
  assert post.tags == ("Go", "テスト")
  assert post.categories == ("Programming",)
  # Multi-line double-quoted lede folds into one line.
  assert post.lede == "一行目の説明。 二行目の説明。"
  # Headings inside ``` and ~~~ fences are ignored; closing #'s are stripped.
  assert post.headings == ("はじめに", "まとめ")
  assert "echo hi" not in post.body and "本文です。" in post.body
  assert post.text("title+lede+headings") == (
      "Goで始めるテスト\n一行目の説明。 二行目の説明。\nはじめに\nまとめ")
  assert post.text("title") == "Goで始めるテスト"
  with pytest.raises(ValueError, match="unknown text variant"):
    post.text("everything")


def test_tag_and_category_aliases_and_date_forms(tmp_path):
  _write(tmp_path, "b.md", "---\ntitle: B\ndate: 2021-03-04\ntag: [DB, 'SQL']\n"
         "category: [[Infra, Cloud]]\n---\nbody\n")
  _write(tmp_path, "20210101-c.markdown", "---\ntitle: C\ntag: Single\n---\n")
  posts = tb.load_posts(tmp_path).posts
  b, c = sorted(posts, key=lambda p: p.title)
  assert b.tags == ("DB", "SQL") and b.categories == ("Infra", "Cloud")
  assert b.first_category == "Infra"
  assert b.date == dt.datetime(2021, 3, 4)
  # No date: taken from the file name's YYYYMMDD prefix.
  assert c.tags == ("Single",) and c.date == dt.datetime(2021, 1, 1)
  assert c.lede == "" and c.headings == ()


BAD = {
    "nofm.md": ("# just markdown\n", "no YAML front matter"),
    "unclosed.md": ("---\ntitle: x\n", "never closed"),
    "badyaml.md": ("---\ntitle: [unclosed\n---\n", "bad YAML in front matter"),
    "notitle.md": ("---\ndate: 2020-01-01\ntags: [a]\n---\n", "no 'title'"),
    "baddate.md": ("---\ntitle: t\ndate: yesterday\n---\n", "'date'"),
    "latin1.md": ("---\ntitle: café\n---\n".encode("latin-1"), "not valid UTF-8"),
    "list.md": ("---\n- a\n- b\n---\n", "must be a YAML mapping"),
}


def test_bad_posts_are_reported_counted_and_strict_raises(tmp_path, capsys):
  _write(tmp_path, "good.md", GOOD)
  for name, (text, _) in BAD.items():
    _write(tmp_path, name, text)
  _write(tmp_path, "notes.txt", "ignored: not a post suffix")
  result = tb.load_posts(tmp_path, log=print)
  assert len(result.posts) == 1
  assert len(result.skipped) == len(BAD)
  reasons = {pathlib.Path(p).name: r for p, r in result.skipped}
  for name, (_, expected) in BAD.items():
    assert expected in reasons[name], (name, reasons[name])
  printed = capsys.readouterr().out
  assert f"loaded 1 posts, skipped {len(BAD)}" in printed
  assert "badyaml.md" in printed and "bad YAML" in printed
  with pytest.raises(tb.PostParseError, match=r"baddate\.md: front matter 'date'"):
    tb.load_posts(tmp_path, strict=True)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    tb.load_posts(tmp_path / "missing")


def test_real_posts(shared_data):
  result = tb.load_posts(shared_data / "techblog" / "posts")
  assert len(result.posts) == 100 and not result.skipped
  assert len({t for p in result.posts for t in p.tags}) == 166
  assert all(p.tags for p in result.posts)
  dates = [p.date for p in result.posts]
  assert dates == sorted(dates) and dates[0].year == 2020
  # Front matter with a blank line before the closing '---' parses like the others.
  def blank_before_close(post):
    lines = pathlib.Path(post.path).read_text(encoding="utf-8").splitlines()
    close = lines.index("---", 1)
    return lines[close - 1].strip() == ""
  quirky = [p for p in result.posts if blank_before_close(p)]
  assert quirky, "expected the real quirk: blank line before closing ---"
  assert all(p.title and p.tags and p.categories for p in quirky)
  # Multi-line lede (20200121-throtoling) is read whole.
  throt = next(p for p in result.posts if p.post_id.endswith("20200121-throtoling"))
  assert throt.lede.startswith("スロットリングとは") and throt.lede.endswith("仕組みです。")
  assert sum(1 for p in result.posts if not p.headings) == 1


def test_contrastive_views_pair_title_and_lede_with_headings_and_paragraphs():
  body = ("# 背景\n\nこの記事ではGoのテストについて詳しく説明します。長い段落です。\n\n"
          "| a | b |\n|---|---|\n\n短い\n\n## 手順\n\n![img](x.png)\n\n"
          "> 引用の段落は使いません。引用の段落は使いません。\n\n# まとめ\n\n## 付録\n\n"
          "テーブル駆動テストを   使うと\nケースを簡潔に書けます。")
  heads, cleaned = tb.headings_and_body(body)
  post = tb.Post("p", "p.md", "Goのテスト", dt.datetime(2020, 1, 1), ("Go",), (),
                 "テストの書き方", heads, cleaned)
  assert tb.paragraphs(cleaned) == ["この記事ではGoのテストについて詳しく説明します。長い段落です。",
                                    "テーブル駆動テストを 使うと ケースを簡潔に書けます。"]
  assert tb.paragraphs(cleaned, max_chars=5)[1] == "テーブル駆"
  anchor, positives = tb.contrastive_views(post, max_paragraphs=1)
  assert anchor == "Goのテスト\nテストの書き方"
  assert positives == ["背景\n手順\nまとめ\n付録", "背景\n手順", "まとめ\n付録",
                       "この記事ではGoのテストについて詳しく説明します。長い段落です。"]
  no_heads = dataclasses.replace(post, headings=(), body="")
  assert tb.contrastive_views(no_heads, 3) == ("Goのテスト\nテストの書き方", [])
