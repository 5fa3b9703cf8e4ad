"""Small CBOW corpora for the model and training tests."""

import numpy as np


def grouped_sets(num_sets=600, vocab=40, seed=0):
  """Sets drawn from 4 groups of 10 elements (so there is structure to learn)."""
  rng = np.random.default_rng(seed)
  sets = []
  for _ in range(num_sets):
    group = rng.integers(4)
    size = rng.integers(2, 8)
    sets.append(np.sort(rng.choice(np.arange(10) + 10 * group, size, replace=False)))
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  return indptr, np.concatenate(sets), [f"e{i}" for i in range(vocab)]
