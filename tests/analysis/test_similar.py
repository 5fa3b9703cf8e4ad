"""Similar-article search (self excluded), rank_dice, per-query scores."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tfrs_emb.analysis.similar import per_query_rank_dice
from tfrs_emb.analysis.similar import search_similar
from tfrs_emb.analysis.similar import similar_articles
from tfrs_emb.encoders.registry import make_encoder


def test_similar_search_excludes_self_and_pads():
  texts = ["Goのテスト入門", "Goのテストを書く", "AWS Lambda入門", "AWS Lambdaの設定",
           "Vue.jsのslot", "Vue.jsのprops"]
  tags = [{"go"}, {"go"}, {"aws"}, {"aws"}, {"vue"}, {"vue"}]
  tfidf = make_encoder("tfidf")
  res, emb = similar_articles(tfidf, texts, tags, k=1)
  assert res.neighbors[:, 0].tolist() == [1, 0, 3, 2, 5, 4]
  assert res.rank_dice == pytest.approx(1.0) and res.seconds >= 0
  np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
  # Fewer posts than k: padded with -1.
  nb, sc = search_similar(emb[:2], k=3)
  assert nb[0].tolist() == [1, -1, -1] and np.isneginf(sc[0, 1])
  # Duplicate texts tie with the query itself: the query is still the one excluded.
  nb, _ = search_similar(np.repeat(emb[:1], 3, axis=0), k=2)
  assert [sorted(row) for row in nb.tolist()] == [[1, 2], [0, 2], [0, 1]]


def test_per_query_rank_dice():
  nb = np.array([[1, 2], [0, 2], [0, 1]])
  per_q = per_query_rank_dice(nb, [{"a"}, {"a"}, set()], k=1)
  assert per_q[:2].tolist() == [1.0, 1.0] and np.isnan(per_q[2])
  # Rows of other queries: query 2's neighbour 0 shares nothing, query 1's -1 pads.
  per_q = per_query_rank_dice(np.array([[0, 1], [-1, -1]]), [{"a"}, {"a"}, {"b"}], k=1,
                              query_ids=[2, 1])
  assert per_q.tolist() == [0.0, 0.0]
