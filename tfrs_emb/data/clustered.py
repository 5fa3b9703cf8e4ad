"""Clustered random unit vectors with a set per item (retrieval development without JADER)."""

from typing import List, Tuple

import numpy as np


def clustered_embeddings(num_items: int, dim: int = 64, num_clusters: int = 2000,
                         noise: float = 0.7, seed: int = 0
                         ) -> Tuple[np.ndarray, List[frozenset]]:
  """Item i = its cluster centre plus Gaussian noise, L2-normalised.

  Item i's set is {its cluster} ∪ three tokens drawn near it, so nearer items share more.

  Returns:
    (float32 [num_items, dim] unit rows, list of frozensets of ints).
  """
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(num_clusters, dim)).astype(np.float32)
  assign = rng.integers(0, num_clusters, num_items)
  x = centers[assign] + noise * rng.normal(size=(num_items, dim)).astype(np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  extra = (assign[:, None] * 10 + rng.integers(0, 10, (num_items, 3))) + num_clusters
  sets = [frozenset([int(a), *map(int, e)]) for a, e in zip(assign, extra)]
  return x.astype(np.float32), sets
