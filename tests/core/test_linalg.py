"""exact_top_k against a full numpy sort."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tfrs_emb.core.linalg import exact_top_k


def _reference(q, x, k):
  s = q @ x.T
  idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(s, idx, axis=1), idx


@pytest.mark.parametrize("n,k,block,chunk,threads", [
    (5000, 10, 64, 512, 2),      # many chunks, a remainder chunk, threaded blocks
    (5000, 10, 1000, None, 1),   # default chunk, single thread
    (300, 7, 16, 4096, 2),       # chunk larger than the database: one chunk
    (6, 10, 8, None, 2),         # k larger than the database: clipped
    (2048, 1, 32, 256, 2),       # k = 1, database an exact multiple of the chunk
])
def test_exact_top_k_matches_numpy_sort(n, k, block, chunk, threads):
  rng = np.random.default_rng(n + k)
  x = rng.normal(size=(n, 24)).astype(np.float32)
  q = rng.normal(size=(123, 24)).astype(np.float32)
  s, i = exact_top_k(q, x, k, block_size=block, chunk_size=chunk, num_threads=threads)
  ref_s, ref_i = _reference(q, x, k)
  kk = min(k, n)
  assert s.shape == (123, kk) and i.shape == (123, kk)
  assert s.dtype == np.float32 and i.dtype == np.int64
  np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)
  # Random continuous data has no ties: the indices must match exactly.
  np.testing.assert_array_equal(i, ref_i)
  # The returned scores are the scores of the returned indices.
  np.testing.assert_allclose(s, np.einsum("qd,qkd->qk", q, x[i]), rtol=1e-5, atol=1e-5)


def test_exact_top_k_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="share D"):
    exact_top_k(np.zeros((2, 3), np.float32), np.zeros((5, 4), np.float32), 2)


def test_drop_self_removes_the_query_or_else_the_last_result():
  from tfrs_emb.core.linalg import drop_self
  nb = np.array([[3, 1, 2], [0, 2, 5]])
  sc = np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]], np.float32)
  top, kept = drop_self(nb, np.array([1, 9]), 2, scores=sc)
  np.testing.assert_array_equal(top, [[3, 2], [0, 2]])
  np.testing.assert_allclose(kept, [[0.9, 0.7], [0.6, 0.5]])
  with pytest.raises(ValueError, match="k\\+1"):
    drop_self(nb, np.array([1, 9]), 3)


def test_top_k_excluding_self_pads_small_databases():
  from tfrs_emb.core.linalg import l2_normalize, top_k_excluding_self
  x = l2_normalize(np.random.default_rng(0).standard_normal((3, 4)))
  np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
  scores, ids = top_k_excluding_self(x, x, np.arange(3), k=4)
  assert ids.shape == (3, 4)
  for q in range(3):
    assert q not in ids[q]
    assert sorted(ids[q, :2]) == sorted(set(range(3)) - {q})
    np.testing.assert_array_equal(ids[q, 2:], -1)
    assert np.all(np.isneginf(scores[q, 2:]))
  np.testing.assert_array_equal(l2_normalize(np.zeros((1, 3))), 0.0)
