"""Item-kNN against the direct numpy cosine formula, with and without a neighbour cut."""

import numpy as np
import pytest

from tfrs_emb.models import item_knn

SETS = [[0, 1, 2], [0, 1], [1, 2, 3], [2, 3, 4], [0, 3, 4, 1]]


def _csr(sets):
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  return indptr, np.concatenate(sets)


def _direct(sets, vocab_size):
  x = np.zeros((len(sets), vocab_size))
  for i, s in enumerate(sets):
    x[i, s] = 1.0
  n = x.sum(0)
  with np.errstate(divide="ignore", invalid="ignore"):
    s = np.nan_to_num((x.T @ x) / np.sqrt(np.outer(n, n)))
  np.fill_diagonal(s, 0.0)
  return s


def test_similarity_and_scores_match_the_direct_formula():
  model = item_knn.fit(*_csr(SETS), 6)
  s = _direct(SETS, 6)
  np.testing.assert_allclose(model.similarity.toarray(), s, rtol=1e-6)
  ctx = [[0, 2], [4], [3, 1, 0]]
  x = np.zeros((3, 6))
  for i, c in enumerate(ctx):
    x[i, c] = 1.0
  np.testing.assert_allclose(model.scorer()(*_csr(ctx)), x @ s, rtol=1e-6)


def test_neighbors_keeps_each_rows_top_k():
  full = _direct(SETS, 6)
  cut = item_knn.fit(*_csr(SETS), 6, neighbors=2).similarity.toarray()
  for r in range(6):
    kept = np.nonzero(cut[r])[0]
    assert len(kept) == min(2, np.count_nonzero(full[r]))
    np.testing.assert_allclose(cut[r, kept], full[r, kept], rtol=1e-6)
    others = np.setdiff1d(np.nonzero(full[r])[0], kept)
    assert not len(others) or full[r, others].max() <= full[r, kept].min()


def test_negative_neighbors_is_an_error():
  with pytest.raises(ValueError, match="neighbors"):
    item_knn.fit(*_csr(SETS), 6, neighbors=-1)
