"""Blog recommendations: related, diverse, personalised."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tfrs_emb.analysis.recommend import BlogRecommender


def test_recommender_related_diverse_personalized():
  # Posts 0-3 in cluster 0 (0,1,2 nearly identical), 4-5 in cluster 1.
  emb = np.array([[1, 0, 0], [0.99, 0.1, 0], [0.98, 0.15, 0], [0.7, 0.7, 0],
                  [0, 0, 1], [0, 0.1, 0.99]], np.float32)
  ids = [f"p{i}" for i in range(6)]
  dates = [1, 2, 3, 4, 5, 6]
  rec = BlogRecommender(ids, emb, dates, clusters=[0, 0, 0, 0, 1, 1])
  assert rec.related("p0", k=2) == ["p1", "p2"]
  assert rec.related(0, k=2) == rec.related("p0", k=2)
  assert "p0" not in rec.related("p0", k=5) and len(rec.related("p0", k=10)) == 5
  # Same cluster, not itself, not already related, newest first.
  assert rec.diverse("p0", k=1, related_k=2) == ["p3"]
  assert rec.related("p3", k=1) == ["p2"]
  assert rec.diverse("p3", k=3, related_k=1) == ["p1", "p0"]
  assert rec.diverse("p4", related_k=1) == []
  personal = rec.personalized(["p4", "p5"], k=3)
  assert "p4" not in personal and "p5" not in personal
  assert personal[0] == "p3"  # the only post with some y/z mass
  with pytest.raises(KeyError, match="unknown post id"):
    rec.related("nope")
  with pytest.raises(ValueError, match="non-empty reading history"):
    rec.personalized([])
  with pytest.raises(ValueError, match="needs dates and clusters"):
    BlogRecommender(ids, emb).diverse("p0")
