"""Clustered random unit vectors: unit rows, seeded, sets that follow the clusters."""

import numpy as np

from tfrs_emb.data.clustered import clustered_embeddings


def test_clustered_embeddings_are_seeded_unit_rows_with_cluster_sets():
  x, sets = clustered_embeddings(500, dim=8, num_clusters=5, noise=0.1, seed=3)
  assert x.shape == (500, 8) and x.dtype == np.float32 and len(sets) == 500
  np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
  again, _ = clustered_embeddings(500, dim=8, num_clusters=5, noise=0.1, seed=3)
  np.testing.assert_array_equal(x, again)
  cluster = np.array([min(s) for s in sets])          # the cluster id is the smallest token
  assert set(cluster) <= set(range(5))
  # Low noise: same-cluster items are much closer than items of different clusters.
  same = x[cluster == cluster[0]] @ x[0]
  other = x[cluster != cluster[0]] @ x[0]
  assert same.mean() > other.mean() + 0.5
