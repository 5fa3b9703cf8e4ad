"""Array maths every layer shares: L2 normalisation, exact top-k, self-exclusion.

Exact maximum-inner-product top-k over an in-memory embedding matrix.

The cost of exact search with a small embedding width (D = 64) is less the matrix product
than the selection: a plain ``top_k`` / ``argpartition`` over every one of the
``num_queries × num_items`` scores reads them back from memory and branches on each.
``exact_top_k`` avoids that with a *strided group maximum*:

1. The database is cut into chunks of ``P`` consecutive rows. Item ``i`` belongs to group
   ``i mod P``. For a block of queries, each chunk's scores ``S = Q_b @ X_chunk^T``
   ``[B, P]`` are computed by BLAS into a cache-resident buffer and folded at once into a
   running maximum ``M[B, P] = max(M, S)`` (one vectorised pass, no selection).
2. The top-k items of a query lie in at most k groups, and those groups have the k largest
   maxima (ties aside): if an item of a group outside the top-k maxima were in the top k,
   the k groups above it would each hold an item scoring higher, a contradiction.
3. So only the k best groups of ``M`` (``k × N/P`` candidates) are rescored exactly and
   the k best of them returned (their rows gathered a few queries at a time, so the
   gathered rows stay in cache).

Blocks of queries run in parallel threads (numpy and BLAS release the GIL) with BLAS
single-threaded per call, so both the products and the folding use every core.
"""

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

import numpy as np

try:  # keeps BLAS single-threaded inside the query-block threads (scikit-learn ships it)
  from threadpoolctl import threadpool_limits
except ImportError:  # correct without it, only slower (BLAS and block threads oversubscribe)
  def threadpool_limits(**unused_kwargs):
    return contextlib.nullcontext()


def _top_k_rows(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
  """Column indices [B, k] of each row's k largest scores, best first, and their scores."""
  if k < scores.shape[1]:
    part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
  else:
    part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
  vals = np.take_along_axis(scores, part, axis=1)
  order = np.argsort(-vals, axis=1, kind="stable")
  return (np.take_along_axis(vals, order, axis=1),
          np.take_along_axis(part, order, axis=1))


def _search_block(q: np.ndarray, db: np.ndarray, k: int, chunk: int) -> Tuple[np.ndarray, np.ndarray]:
  """Exact top-k of one query block q [B, D] against db [N, D] (see the module docstring)."""
  n = db.shape[0]
  b = q.shape[0]
  num_chunks = -(-n // chunk)
  if num_chunks == 1:
    return _top_k_rows(q @ db.T, k)
  buf = np.empty((b, chunk), np.float32)
  best = np.matmul(q, db[:chunk].T)
  full = n // chunk
  for c in range(1, full):
    np.matmul(q, db[c * chunk:(c + 1) * chunk].T, out=buf)
    np.maximum(best, buf, out=best)
  rem = n - full * chunk
  if rem:
    tail = buf[:, :rem]
    np.matmul(q, db[full * chunk:].T, out=tail)
    np.maximum(best[:, :rem], tail, out=best[:, :rem])
  # k best groups per query, then every member of those groups rescored exactly.
  _, groups = _top_k_rows(best, min(k, chunk))
  cand = (groups[:, :, None] + (np.arange(num_chunks) * chunk)[None, None, :]).reshape(b, -1)
  valid = cand < n
  cand = np.where(valid, cand, 0)
  cand_scores = _rescore(q, db, cand)
  cand_scores[~valid] = -np.inf
  vals, pos = _top_k_rows(cand_scores, k)
  return vals, np.take_along_axis(cand, pos, axis=1)


def _rescore(q: np.ndarray, db: np.ndarray, cand: np.ndarray,
             gather_bytes: int = 1 << 20) -> np.ndarray:
  """Scores [B, C] of q [B, D] against its candidate rows db[cand] (cand int [B, C]).

  The candidate rows are gathered a few queries at a time (about ``gather_bytes``): one
  gather for the whole block (B × C × D floats, hundreds of MB for a large database) is
  a fresh allocation whose page faults and cache misses rival the block's products.
  """
  step = max(1, gather_bytes // max(cand.shape[1] * db.shape[1] * db.itemsize, 1))
  out = np.empty(cand.shape, np.float32)
  for s in range(0, len(q), step):
    np.matmul(db[cand[s:s + step]], q[s:s + step, :, None], out=out[s:s + step, :, None])
  return out


def exact_top_k(queries: np.ndarray, database: np.ndarray, k: int,
                block_size: int = 256, chunk_size: Optional[int] = None,
                num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Exact top-k by inner product.

  Args:
    queries: float32 [num_queries, dim].
    database: float32 [num_items, dim].
    k: number of neighbours per query (clipped to num_items).
    block_size: queries scored per step by one thread; memory per thread is about
      ``block_size × (2 × chunk_size + k × num_items / chunk_size × dim)`` floats.
    chunk_size: database rows per score chunk (= number of strided groups); default
      picks about sqrt(k × num_items × 4), between 256 and 16384.
    num_threads: parallel query blocks; default = CPUs available to this process.

  Returns:
    (scores float32 [num_queries, k], indices int64 [num_queries, k]), best first.
    Ties may be broken differently from a full sort.
  """
  queries = np.ascontiguousarray(queries, np.float32)
  db = np.ascontiguousarray(database, np.float32)
  if queries.ndim != 2 or db.ndim != 2 or queries.shape[1] != db.shape[1]:
    raise ValueError(f"queries [Q, D] and database [N, D] must share D; got "
                     f"{queries.shape} and {db.shape}")
  if k < 1 or block_size < 1:
    raise ValueError(f"k and block_size must be positive, got k={k}, block_size={block_size}")
  n = db.shape[0]
  k = min(k, n)
  if chunk_size is None:
    chunk_size = int(np.clip(2 ** round(np.log2(max(np.sqrt(4.0 * k * n), 1.0))), 256, 16384))
  chunk_size = min(chunk_size, n)
  if num_threads is None:
    num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
  out_s = np.empty((len(queries), k), np.float32)
  out_i = np.empty((len(queries), k), np.int64)
  starts = range(0, len(queries), block_size)

  def run(start):
    s, i = _search_block(queries[start:start + block_size], db, k, chunk_size)
    out_s[start:start + block_size] = s
    out_i[start:start + block_size] = i

  if num_threads <= 1 or len(starts) <= 1:
    for start in starts:
      run(start)
  else:
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(num_threads) as ex:
      list(ex.map(run, starts))
  return out_s, out_i


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
  """``x / max(||x||, eps)`` along ``axis`` as float32 (zero rows stay zero)."""
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), eps)


def drop_self(neighbors: np.ndarray, query_ids: np.ndarray, k: int,
              scores: Optional[np.ndarray] = None):
  """Removes each query's own row from its results.

  Args:
    neighbors: int [Q, >= k+1] result ids, best first (-1 = no result).
    query_ids: int [Q], the database row of each query.
    k: results kept per query.
    scores: optional float [Q, same width] scores of ``neighbors``.

  Returns:
    int64 [Q, k] ids without the query's own row (when it is absent the last result is
    dropped instead), and with ``scores`` also their float32 [Q, k] scores.
  """
  neighbors = np.asarray(neighbors, np.int64)
  query_ids = np.asarray(query_ids, np.int64)
  if neighbors.ndim != 2 or neighbors.shape[1] < k + 1 or len(neighbors) != len(query_ids):
    raise ValueError(f"neighbors must be [Q, >= k+1] = [{len(query_ids)}, >= {k + 1}], "
                     f"got {neighbors.shape}")
  is_self = neighbors == query_ids[:, None]
  first_self = np.where(is_self.any(axis=1), is_self.argmax(axis=1), neighbors.shape[1] - 1)
  keep = np.ones(neighbors.shape, bool)
  keep[np.arange(len(neighbors)), first_self] = False
  width = neighbors.shape[1] - 1
  top = neighbors[keep].reshape(-1, width)[:, :k]
  if scores is None:
    return top
  kept_scores = np.asarray(scores, np.float32)[keep].reshape(-1, width)[:, :k]
  return top, kept_scores


def top_k_excluding_self(queries: np.ndarray, database: np.ndarray, query_ids: np.ndarray,
                         k: int, **kwargs) -> Tuple[np.ndarray, np.ndarray]:
  """Exact top-k of database rows ``query_ids`` (given as ``queries``), themselves excluded.

  Returns:
    (scores float32 [Q, k], indices int64 [Q, k]); -inf / -1 pad when N - 1 < k.
  """
  n = len(database)
  s, i = exact_top_k(queries, database, min(k + 1, n), **kwargs)
  if i.shape[1] < k + 1:  # small database: pad so drop_self can always drop one
    pad = k + 1 - i.shape[1]
    i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
    s = np.pad(s, ((0, 0), (0, pad)), constant_values=-np.inf)
  nb, sc = drop_self(i, query_ids, k, scores=s)
  return sc, nb
