"""exact_top_k against a full numpy sort."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tfrs_emb.retrieval import exact_top_k


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
