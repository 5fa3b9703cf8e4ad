"""Case embeddings from element embeddings: a Keras CaseEncoder and a numpy fast path.

Usage::

  from tfrs_emb.models import case_encoder
  # numpy fast path over all cases (CSR input, unknown elements = -1 are ignored)
  rows = case_encoder.map_elements(cases.vocab, result.vocab)    # caller id -> row or -1
  emb = case_encoder.case_embeddings(cases.indptr, rows[cases.indices], result.vectors,
                                     aggregation="mean")            # float32 [N, d], unit rows
  # scoring: tfrs_emb.metrics.set_embeddings.evaluate_case_search

  # Keras model for serving: ragged (or ""-padded) element strings -> unit embedding
  enc = case_encoder.CaseEncoder(result.vocab, result.vectors, aggregation="mean")
  enc(tf.ragged.constant([["drug:アムロジピン", "reac:末梢性浮腫"]]))     # [1, d]
  case_encoder.export_case_encoder(enc, "exported_models/jader_case_encoder", version=1)
  # serving_default: elements (tf.string [batch, max_len], padded with "") ->
  #   embedding float32 [batch, dim], known_elements int32 [batch]

Aggregation: ``mean`` = mean of the known elements' vectors, ``max`` = element-wise max;
both then L2-normalised. Unknown or empty input: a case with no known element (all
unknown, all "", or no elements at all) embeds as the zero vector, and the signature's
``known_elements`` is 0 for it, so a caller can tell "nothing known" from an answer.
Element strings must already be NFKC-normalised and prefixed (``drug:``/``reac:``/``hist:``),
as ``tfrs_emb.data.jader`` produces them.
"""

import pathlib
from typing import Optional, Sequence

import numpy as np
import scipy.sparse

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import serving
from tfrs_emb.core.linalg import l2_normalize

AGGREGATIONS = ("mean", "max")


def _check_aggregation(aggregation: str):
  if aggregation not in AGGREGATIONS:
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def map_elements(source_vocab: Sequence[str], target_vocab: Sequence[str]) -> np.ndarray:
  """int [len(source_vocab)]: row of each source element in target_vocab, -1 if absent."""
  pos = {v: i for i, v in enumerate(target_vocab)}
  return np.array([pos.get(v, -1) for v in source_vocab], np.int64)


def case_embeddings(indptr: np.ndarray, rows: np.ndarray, vectors: np.ndarray,
                    aggregation: str = "mean", chunk_cases: int = 100_000,
                    normalize: bool = True) -> np.ndarray:
  """Unit case embeddings from CSR element rows (numpy / scipy; same maths as CaseEncoder).

  Args:
    indptr: int [num_cases + 1] CSR offsets.
    rows: int [total] row of each case element in ``vectors``; -1 = unknown (ignored).
    vectors: float32 [vocab, dim] element embeddings.
    aggregation: "mean" or "max".
    chunk_cases: cases per chunk for "max" (bounds the gathered [chunk_elements, dim]).
    normalize: L2-normalise the rows (False: the plain mean / max).

  Returns:
    float32 [num_cases, dim], L2-normalised unless ``normalize`` is False (zero rows for
    cases with no known element).
  """
  _check_aggregation(aggregation)
  indptr = np.asarray(indptr, np.int64)
  rows = np.asarray(rows, np.int64)
  vectors = np.asarray(vectors, np.float32)
  n = len(indptr) - 1
  valid = rows >= 0
  counts = np.add.reduceat(valid.astype(np.int64), indptr[:-1]) if len(rows) else \
      np.zeros(n, np.int64)
  counts[np.diff(indptr) == 0] = 0
  vptr = np.zeros(n + 1, np.int64)
  np.cumsum(counts, out=vptr[1:])
  vrows = rows[valid]
  if aggregation == "mean":
    mat = scipy.sparse.csr_matrix((np.ones(len(vrows), np.float32), vrows, vptr),
                                  shape=(n, len(vectors)))
    out = np.asarray(mat @ vectors, np.float32) / np.maximum(counts, 1)[:, None]
    return l2_normalize(out) if normalize else out
  out = np.zeros((n, vectors.shape[1]), np.float32)
  for lo in range(0, n, chunk_cases):
    hi = min(n, lo + chunk_cases)
    g = vectors[vrows[vptr[lo]:vptr[hi]]]
    if not len(g):
      continue
    starts = vptr[lo:hi] - vptr[lo]
    nonempty = counts[lo:hi] > 0
    red = np.maximum.reduceat(g, np.minimum(starts, len(g) - 1), axis=0)
    out[lo:hi][nonempty] = red[nonempty]
  return l2_normalize(out) if normalize else out


def table_with_oov_row(vectors: Optional[np.ndarray], dim: Optional[int]):
  """(initializer, dim) of a [vocab + 1, dim] lookup table whose row 0 (the StringLookup's
  out-of-vocabulary id) is zero and whose rows 1.. are ``vectors`` (zeros when None)."""
  if vectors is None:
    return "zeros", int(dim)
  vectors = np.asarray(vectors, np.float32)
  table = np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors])
  return tf.keras.initializers.Constant(table), vectors.shape[1]


class CaseEncoder(tf.keras.Model):
  """Element strings → L2-normalised case embedding (mean or max of element vectors).

  Input: tf.string RaggedTensor [batch, (elements)] or dense [batch, max_len] padded
  with "". Unknown elements and "" are ignored. Output: float32 [batch, dim] (the zero
  vector when no element is known); ``encode`` also returns ``known_elements``.
  """

  def __init__(self, vocab: Sequence[str], vectors: Optional[np.ndarray] = None,
               dim: Optional[int] = None, aggregation: str = "mean", **kwargs):
    super().__init__(**kwargs)
    _check_aggregation(aggregation)
    self.vocab = list(vocab)
    self.aggregation = aggregation
    init, self.dim = table_with_oov_row(vectors, dim)
    self.lookup = tf.keras.layers.StringLookup(vocabulary=self.vocab, num_oov_indices=1,
                                               mask_token=None, name="element_lookup")
    self.embedding = tf.keras.layers.Embedding(len(self.vocab) + 1, self.dim,
                                               embeddings_initializer=init, trainable=False,
                                               name="element_embedding")

  def _known_ids(self, elements):
    """(element ids [B, (n)] int64 with 0 = unknown or "", known mask [B, (n)] float32)."""
    if not isinstance(elements, tf.RaggedTensor):
      elements = tf.RaggedTensor.from_tensor(elements, padding="")
    ids = tf.ragged.map_flat_values(self.lookup, elements)
    known = tf.ragged.map_flat_values(lambda i: tf.cast(i > 0, tf.float32), ids)
    return ids, known

  def known_elements(self, elements):
    """int32 [batch]: elements of each case found in the vocabulary (0 = the embedding is
    the zero vector: nothing to search with)."""
    _, known = self._known_ids(elements)
    return tf.cast(tf.reduce_sum(known, axis=1), tf.int32)

  def call(self, elements):
    return self.encode(elements)[0]

  def encode(self, elements):
    """(unit embedding float32 [batch, dim], ``known_elements`` int32 [batch])."""
    ids, known = self._known_ids(elements)                              # [B, (n)]
    vecs = tf.ragged.map_flat_values(self.embedding, ids)               # [B, (n), d]
    count = tf.reduce_sum(known, axis=1)[:, None]                       # [B, 1]
    if self.aggregation == "mean":
      summed = tf.reduce_sum(vecs * tf.expand_dims(known, -1), axis=1)
      agg = summed / tf.maximum(count, 1.0)
    else:
      neg_inf = tf.ragged.map_flat_values(
          lambda v, k: tf.where(k[:, None] > 0, v, tf.fill(tf.shape(v), -np.inf)),
          vecs, known)
      agg = tf.reduce_max(neg_inf, axis=1)
      agg = tf.where(count > 0, agg, tf.zeros_like(agg))
      agg = tf.reshape(agg, [-1, self.dim])
    return (tf.math.l2_normalize(agg, axis=-1, epsilon=1e-24),
            tf.cast(count[:, 0], tf.int32))

  def get_config(self):
    return {"vocab": self.vocab, "dim": self.dim, "aggregation": self.aggregation}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


def export_case_encoder(encoder: CaseEncoder, export_dir: "str | pathlib.Path",
                        version: int = 1, overwrite: bool = True) -> pathlib.Path:
  """Exports ``encoder`` to ``export_dir/version`` (TF Serving layout).

  Signature ``serving_default``: ``elements`` tf.string [batch, max_len] ("" padded) →
  ``embedding`` float32 [batch, dim] and ``known_elements`` int32 [batch] (0: no element
  is in the vocabulary and the embedding is the zero vector). An existing version is
  replaced once the new one is complete (``overwrite=False`` refuses instead).
  """

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="elements")])
  def serve(elements):
    embedding, known = encoder.encode(elements)
    return {"embedding": embedding, "known_elements": known}

  return serving.save_for_serving(encoder, export_dir, {"serving_default": serve},
                                  version=version, overwrite=overwrite)
