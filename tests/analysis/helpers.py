"""Shared test data of the analysis tests."""

import numpy as np


def blobs(k=4, per=20, dim=24, noise=0.15, seed=0):
  """Unit rows [k * per, dim] around k random centres, and the centre of each row."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((k, dim))
  x = np.repeat(centres, per, axis=0) + noise * rng.standard_normal((k * per, dim))
  return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(k), per)
