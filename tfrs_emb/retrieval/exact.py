"""Exact maximum-inner-product top-k over an in-memory embedding matrix."""

from typing import Tuple

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf


@tf.function(jit_compile=False)
def _block_top_k(queries: tf.Tensor, database: tf.Tensor, k: int):
  scores = tf.matmul(queries, database, transpose_b=True)
  return tf.math.top_k(scores, k=k, sorted=True)


def exact_top_k(queries: np.ndarray, database: np.ndarray, k: int,
                block_size: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
  """Exact top-k by inner product.

  Args:
    queries: float32 [num_queries, dim].
    database: float32 [num_items, dim].
    k: number of neighbours per query (clipped to num_items).
    block_size: queries scored per step; bounds memory at block_size * num_items floats.

  Returns:
    (scores float32 [num_queries, k], indices int64 [num_queries, k]), best first.
  """
  queries = np.asarray(queries, np.float32)
  db = tf.constant(np.asarray(database, np.float32))
  k = min(k, int(db.shape[0]))
  out_s = np.empty((len(queries), k), np.float32)
  out_i = np.empty((len(queries), k), np.int64)
  for start in range(0, len(queries), block_size):
    s, i = _block_top_k(tf.constant(queries[start:start + block_size]), db, k)
    out_s[start:start + block_size] = s.numpy()
    out_i[start:start + block_size] = i.numpy()
  return out_s, out_i
