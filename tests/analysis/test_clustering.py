"""Spherical k-means, cluster naming, centroid linkage, quality."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tests.analysis.helpers import blobs
from tfrs_emb.analysis import clustering


def test_spherical_kmeans_recovers_separable_clusters():
  x, truth = blobs()
  result = clustering.spherical_kmeans(x, k=4, restarts=3, seed=1)
  # Same partition up to label permutation.
  pairs = set(zip(truth.tolist(), result.labels.tolist()))
  assert len(pairs) == 4 and len({b for _, b in pairs}) == 4
  np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0, atol=1e-5)
  # Objective = sum of cosines to the assigned centroid.
  expected = (x * result.centroids[result.labels]).sum()
  assert result.objective == pytest.approx(expected, rel=1e-4)
  sil, nmi = clustering.cluster_quality(x, result.labels, [str(t) for t in truth])
  assert sil > 0.5 and nmi == pytest.approx(1.0)
  link = clustering.centroid_linkage(result.centroids)
  assert link.shape == (3, 4)
  # k larger than N is clipped; one point per cluster.
  small = clustering.spherical_kmeans(x[:3], k=10, restarts=1)
  assert sorted(small.labels.tolist()) == [0, 1, 2]


def test_cluster_naming():
  x, truth = blobs(k=2, per=5)
  result = clustering.spherical_kmeans(x, k=2, restarts=2)
  tag_names = ["日本語", "alpha", "beta"]
  tag_emb = np.stack([result.centroids[0], result.centroids[0] * 0.9 + 0.1,
                      result.centroids[1]])
  tag_emb /= np.linalg.norm(tag_emb, axis=1, keepdims=True)
  named = clustering.name_clusters(result.centroids, tag_names, tag_emb, x, num_tags=2,
                                   num_posts=3)
  assert named[0][0] == ["日本語", "alpha"]
  assert set(named[0][1]) <= set(np.flatnonzero(result.labels == 0).tolist())
