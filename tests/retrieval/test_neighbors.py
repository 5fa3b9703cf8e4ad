"""Nearest-neighbour classifiers on embeddings: KNN vote, neighbour label histogram."""

import numpy as np
import pytest

from tfrs_emb.retrieval.neighbors import (cosine_neighbors, knn_vote, l2_neighbors,
                                          neighbor_label_distribution)


def test_knn_vote_with_nearest_tiebreak():
  train = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
  labels = np.array([0, 1, 2, 2])
  queries = np.array([[1, 0.01], [0.05, 1]], np.float32)
  # Query 0: neighbours labelled 0 (nearest) and 1 → tie → 0; query 1: both 2.
  np.testing.assert_array_equal(knn_vote(train, labels, queries, 3, k=2), [0, 2])


def test_cosine_neighbors_ignore_norm_and_can_exclude_self():
  db = np.array([[1, 0], [10, 1], [0, 1]], np.float32)
  sims, idx = cosine_neighbors(db[:1] * 5, db, 2)
  np.testing.assert_array_equal(idx, [[0, 1]])
  assert sims[0, 0] == pytest.approx(1.0)
  _, idx = cosine_neighbors(db, db, 1, query_ids=np.arange(3))
  np.testing.assert_array_equal(idx[:, 0], [1, 0, 1])


def test_l2_neighbors_are_nearest_by_squared_distance():
  db = np.array([[0, 0], [3, 0], [10, 10], [1, 1]], np.float32)
  q = np.array([[2.4, 0], [9, 9]], np.float32)
  scores, idx = l2_neighbors(q, db, 2)
  np.testing.assert_array_equal(idx, [[1, 3], [2, 1]])  # 117 < 128 from (9, 9)
  expected = -((q[:, None] - db[idx]) ** 2).sum(-1)
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-4)


def test_neighbor_label_distribution_weights_by_similarity():
  sims = np.array([[0.9, 0.5, 0.1]], np.float32)
  labels = np.array([[2, 0, 2]])
  hist = neighbor_label_distribution(sims, labels, 3, temperature=0.1)
  w = np.exp(np.array([0.9, 0.5, 0.1]) / 0.1)
  w /= w.sum()
  np.testing.assert_allclose(hist, [[w[1], 0.0, w[0] + w[2]]], rtol=1e-5)
  # Low temperature → the nearest neighbour's label; -1 (no neighbour) has no weight.
  sharp = neighbor_label_distribution(sims, np.array([[1, 0, -1]]), 3, temperature=1e-3)
  np.testing.assert_allclose(sharp, [[0, 1, 0]], atol=1e-6)
