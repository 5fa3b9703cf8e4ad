"""Next-element recommendation from a CBOW's two embedding tables, as a servable Keras model.

Usage::

  from tfrs_emb.models import set_recommender
  rec = set_recommender.SetRecommender(vocab, input_vectors, output_vectors, k=10)
  out = rec(tf.constant([["whole milk", "rolls/buns", ""]]))   # "" pads
  out["ids"], out["scores"]      # [batch, k] recommended elements, best first
  out["embedding"]               # [batch, dim] unit mean of the known input vectors
  out["known_elements"]          # [batch] how many input elements are in the vocabulary
  set_recommender.export_set_recommender(rec, "exported_models/set2vec", version=1)

Scores are the CBOW's own prediction (gensim's ``predict_output_word``): the mean of the
known input elements' input vectors · every element's output vector, plus an optional
per-element ``log_prior`` (e.g. ``metrics.set_embeddings.noise_log_prior``, which turns the
negative-sampling log odds into log P(element | set)). With ``item_weights`` (an EASE
matrix B over the elements ``item_ids``, ``models.ease``) the scores are fused:
x·B + ``cbow_weight`` · (CBOW score + log prior), x the set's binary row over ``item_ids``;
an element outside ``item_ids`` gets the CBOW term only. Input elements are
never recommended. A set with no known element gets no answer: ``known_elements`` = 0,
every id "" and every score 0 (not popular items presented as a prediction). A repeated
input element counts once, as in training (a set holds each element once):
``["milk", "milk", "milk", "bread"]`` answers exactly as ``["milk", "bread"]``.

Query spellings: training NFKC-normalises and strips element names (``data.sets``), but
core TensorFlow has no NFKC op and the export must stay servable by stock TF Serving. So
the graph strips ASCII whitespace (``tf.strings.strip``) and resolves ``aliases``, the
raw spellings the training file used (``SetCorpus.aliases``, e.g. half-width ``ﾊﾞﾅﾅ`` →
``バナナ``), to their elements. Any other Unicode variant of a name (one the training data
never spelled that way) must be NFKC-normalised by the client before querying.
"""

import pathlib
from typing import Mapping, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import serving
from tfrs_emb.models.case_encoder import table_with_oov_row

# What tf.strings.strip removes (ASCII whitespace); alias keys are stripped the same way.
_ASCII_SPACE = " \t\n\v\f\r"


class SetRecommender(tf.keras.Model):
  """Element strings of a set → top-k next elements, their scores and the set embedding.

  Input: tf.string [batch, n] padded with "" (or a RaggedTensor). Unknown strings are
  ignored; a repeated element counts once (the query is the set of its elements, as in
  training). Each string is stripped of ASCII whitespace and mapped through ``aliases``
  first. Output dict: ``ids`` tf.string [batch, k], ``scores`` float32 [batch, k],
  ``embedding`` float32 [batch, dim] (unit mean of the distinct known elements' input
  vectors), ``known_elements`` int32 [batch] (distinct known elements). Where fewer than
  k candidates remain, the tail ids are "" with score 0.

  Args:
    vocab: the elements [V].
    input_vectors, output_vectors: float [V, dim] CBOW tables (zeros when None: ``dim``).
    k: recommendations per set.
    log_prior: optional float [V] added to every element's CBOW score.
    item_ids: optional int [n] vocab rows with EASE weights (distinct).
    item_weights: float [n, n] the EASE matrix over ``item_ids`` (zeros when None, e.g.
      before loading saved weights).
    cbow_weight: factor of the CBOW term (score + log prior).
    aliases: optional spelling → element (``SetCorpus.aliases``); kept where the element
      is in ``vocab`` and the stripped spelling is not itself an element.
  """

  def __init__(self, vocab: Sequence[str], input_vectors: Optional[np.ndarray] = None,
               output_vectors: Optional[np.ndarray] = None, dim: Optional[int] = None,
               k: int = 10, log_prior: Optional[np.ndarray] = None,
               item_ids: Optional[Sequence[int]] = None,
               item_weights: Optional[np.ndarray] = None, cbow_weight: float = 1.0,
               aliases: Optional[Mapping[str, str]] = None, **kwargs):
    super().__init__(**kwargs)
    self.vocab = list(vocab)
    if len(self.vocab) < 1 or k < 1:
      raise ValueError(f"need a non-empty vocab and k >= 1, got {len(self.vocab)} and {k}")
    self.k = int(min(k, len(self.vocab)))
    self.cbow_weight = float(cbow_weight)
    self.item_ids = None if item_ids is None else [int(i) for i in item_ids]
    self.item_weights = None
    if self.item_ids is not None:
      n = len(self.item_ids)
      if (len(set(self.item_ids)) != n
          or not all(0 <= i < len(self.vocab) for i in self.item_ids)):
        raise ValueError(f"item_ids must be {n} distinct rows in [0, {len(self.vocab)})")
      if item_weights is not None and np.shape(item_weights) != (n, n):
        raise ValueError(f"item_weights must be [{n}, {n}] (item_ids), got "
                         f"{np.shape(item_weights)}")
      self.item_weights = self.add_weight(
          name="item_weights", shape=(n, n), trainable=False,
          initializer=("zeros" if item_weights is None else
                       tf.keras.initializers.Constant(np.asarray(item_weights, np.float32))))
      self._item_cols = tf.constant(np.asarray(self.item_ids, np.int64) + 1)   # OOV is 0
    elif item_weights is not None:
      raise ValueError("item_weights needs item_ids")
    in_init, self.dim = table_with_oov_row(input_vectors, dim)
    out_init, _ = table_with_oov_row(output_vectors, self.dim)
    row = {v: i for i, v in enumerate(self.vocab)}
    self.aliases = {}
    for spelling, element in (aliases or {}).items():
      key = spelling.strip(_ASCII_SPACE)
      if key and key not in row and element in row:
        self.aliases[key] = element
    # One lookup over the elements then the alias spellings; _row_of maps its index
    # (0 = unknown) to the element's row + 1.
    self.lookup = tf.keras.layers.StringLookup(
        vocabulary=self.vocab + list(self.aliases), num_oov_indices=1, mask_token=None,
        name="element_lookup")
    self._row_of = tf.constant(np.asarray(
        [0] + list(range(1, len(self.vocab) + 1))
        + [row[e] + 1 for e in self.aliases.values()], np.int64))
    self.input_embedding = tf.keras.layers.Embedding(
        len(self.vocab) + 1, self.dim, embeddings_initializer=in_init, trainable=False,
        name="input_embedding")
    self.output_embedding = tf.keras.layers.Embedding(
        len(self.vocab) + 1, self.dim, embeddings_initializer=out_init, trainable=False,
        name="output_embedding")
    for table in (self.input_embedding, self.output_embedding):
      table.build((None,))   # their tables are used directly, never called
    prior = np.zeros(len(self.vocab) + 1, np.float32)
    if log_prior is not None:
      prior[1:] = np.asarray(log_prior, np.float32)
    self.log_prior = self.add_weight(
        name="log_prior", shape=(len(self.vocab) + 1,), trainable=False,
        initializer=tf.keras.initializers.Constant(prior))
    self._names = tf.constant([""] + self.vocab)

  def call(self, elements):
    if isinstance(elements, tf.RaggedTensor):
      elements = elements.to_tensor(default_value="")
    ids = tf.gather(self._row_of, self.lookup(tf.strings.strip(elements)))  # [B, n], 0 = unknown
    batch = tf.shape(ids)[0]
    rows = tf.repeat(tf.range(batch, dtype=tf.int64), tf.shape(ids)[1])
    taken = tf.scatter_nd(tf.stack([rows, tf.reshape(ids, [-1])], 1),
                          tf.ones([tf.size(ids)], tf.int32),
                          tf.stack([tf.cast(batch, tf.int64), len(self.vocab) + 1]))
    # Each known element once, however often the query repeats it (training sets hold
    # every element once).
    known = tf.cast(taken[:, 1:] > 0, tf.float32)                      # [B, V]
    count = tf.reduce_sum(known, axis=1)                               # [B]
    h = tf.matmul(known, self.input_embedding.embeddings[1:]) / tf.maximum(count, 1.0)[:, None]
    scores = tf.matmul(h, self.output_embedding.embeddings, transpose_b=True)  # [B, V+1]
    scores = self.cbow_weight * (scores + self.log_prior[None, :])
    if self.item_weights is not None:
      x = tf.gather(known, self._item_cols - 1, axis=1)                 # [B, n]
      ease = tf.matmul(x, self.item_weights)                            # [B, n]
      scores = tf.transpose(tf.tensor_scatter_nd_add(
          tf.transpose(scores), self._item_cols[:, None], tf.transpose(ease)))
    # Excluded: the OOV row and the set's own elements.
    excluded = tf.logical_or(taken > 0, tf.range(tf.shape(scores)[1])[None, :] == 0)
    scores = tf.where(excluded, tf.fill(tf.shape(scores), -np.inf), scores)
    top, idx = tf.math.top_k(scores, self.k)
    valid = tf.logical_and(tf.math.is_finite(top), count[:, None] > 0)
    return {"ids": tf.where(valid, tf.gather(self._names, idx), ""),
            "scores": tf.where(valid, top, 0.0),
            "embedding": tf.math.l2_normalize(h, axis=-1, epsilon=1e-24),
            "known_elements": tf.cast(count, tf.int32)}

  def get_config(self):
    return {"vocab": self.vocab, "dim": self.dim, "k": self.k, "item_ids": self.item_ids,
            "cbow_weight": self.cbow_weight, "aliases": self.aliases}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


def export_set_recommender(model: SetRecommender, export_dir: "str | pathlib.Path",
                           version: int = 1, overwrite: bool = True) -> pathlib.Path:
  """Exports to ``export_dir/version`` (TF Serving layout).

  Signature ``serving_default``: ``elements`` tf.string [batch, n] ("" padded) → ``ids``,
  ``scores``, ``embedding``, ``known_elements`` (see SetRecommender). The query is a set:
  an element repeated in a row counts once (``known_elements`` counts distinct known
  elements), so a repeated element does not outweigh the others. An existing version
  is replaced once the new one is complete (``overwrite=False`` refuses instead).
  """

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="elements")])
  def serve(elements):
    return model(elements)

  return serving.save_for_serving(model, export_dir, {"serving_default": serve},
                                  version=version, overwrite=overwrite)
