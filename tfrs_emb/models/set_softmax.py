"""A full-softmax set completion model: the other elements of a set → the missing one.

Usage::

  from tfrs_emb.models import set_softmax
  result = set_softmax.train_set_softmax(indptr, indices, vocab, set_softmax.SoftmaxConfig())
  rec = set_recommender.SetRecommender(result.vocab, result.vectors, result.output_vectors,
                                       log_prior=result.bias)

Model: every element j of a set is a target; its context is the mean of the input
embeddings of the set's other elements, h_j = Σ_{i≠j} m_i v_i / Σ_{i≠j} m_i, where the
mask m drops each context element with probability ``dropout`` while training (a
denoising input, as in Mult-DAE). Logits over the whole vocabulary are h_j · Wᵀ + b, the
loss the softmax cross-entropy of the target, averaged over the batch's targets. A batch
holds whole sets padded with -1 (``[B, L]``, longer sets keep a random ``max_len`` subset
each epoch), so all B·L leave-one-out targets share one sum. Trained with Adam.

Scoring is the ``SetRecommender``'s (and ``metrics.set_embeddings.cbow_scorer``'s with a
prior): plain mean of the known input vectors · W + b, so the export serves exactly the
trained model; the input embeddings serve similar-element search.
"""

import dataclasses
import time
from typing import List, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import config as config_lib
from tfrs_emb.core.config import field
from tfrs_emb.core.log import Log, no_log


@dataclasses.dataclass(frozen=True)
class SoftmaxConfig:
  """Every setting of a ``train_set_softmax`` run."""
  dim: int = field(64, "Embedding dimension.", lower=1)
  epochs: int = field(10, "Passes over the sets.", lower=1)
  learning_rate: float = field(0.003, "Adam learning rate.", lower=0.0)
  dropout: float = field(0.2, "Probability of dropping each context element while "
                         "training.", lower=0.0, upper=0.9)
  l2: float = field(0.0, "L2 penalty on the embeddings of each batch's elements.",
                    lower=0.0)
  min_count: int = field(1, "Drop elements occurring in fewer sets.", lower=1)
  max_len: int = field(64, "Longest set used (longer sets keep a random subset each "
                       "epoch).", lower=2)
  batch_sets: int = field(128, "Most sets per batch.", lower=1)
  logits_per_batch: int = field(1 << 22, "Fewer sets per batch when targets × vocabulary "
                                "(the [B, L, V] logits) would exceed this.", lower=1)
  seed: int = field(0, "Seeds initialisation, batching and dropout.")


@dataclasses.dataclass
class SoftmaxResult:
  """Outcome of ``train_set_softmax``: vocab (kept elements, most frequent first), their
  ``source_ids`` in the caller's vocabulary, input ``vectors`` [V, dim], output
  ``output_vectors`` [V, dim] and ``bias`` [V] (float32), the loss per epoch, wall time."""
  vocab: List[str]
  source_ids: np.ndarray
  vectors: np.ndarray
  output_vectors: np.ndarray
  bias: np.ndarray
  losses: List[float]
  train_seconds: float


class SetSoftmax(tf.keras.Model):
  """Leave-one-out softmax over a vocabulary of ``vocab_size`` elements.

  ``call(ids)`` takes int32 [B, L] ids padded with -1 and returns the logits
  float32 [B, L, vocab_size] of each position's element given the set's other elements.
  """

  def __init__(self, vocab_size: int, dim: int, dropout: float = 0.0, l2: float = 0.0,
               seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size, self.dim, self.dropout, self.l2 = vocab_size, dim, dropout, l2
    self.seed = seed
    init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed)
    self.input_embeddings = self.add_weight(name="input_embeddings",
                                            shape=(vocab_size, dim), initializer=init)
    self.output_embeddings = self.add_weight(
        name="output_embeddings", shape=(vocab_size, dim),
        initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1))
    self.bias = self.add_weight(name="bias", shape=(vocab_size,), initializer="zeros")

  def call(self, ids, training=False):
    present = tf.cast(ids >= 0, tf.float32)                           # [B, L]
    mask = present
    if training and self.dropout > 0:
      mask *= tf.cast(tf.random.uniform(tf.shape(ids)) >= self.dropout, tf.float32)
    v = tf.gather(self.input_embeddings, tf.maximum(ids, 0)) * mask[..., None]
    total = tf.reduce_sum(v, 1, keepdims=True) - v                    # [B, L, d]
    count = tf.reduce_sum(mask, 1, keepdims=True) - mask              # [B, L]
    h = total / tf.maximum(count, 1.0)[..., None]
    return tf.einsum("bld,vd->blv", h, self.output_embeddings) + self.bias

  def loss_of(self, ids, training=False):
    """Mean cross-entropy over the batch's targets (positions of sets of ≥ 2 elements)."""
    logits = self(ids, training=training)
    present = ids >= 0
    valid = tf.logical_and(present, tf.reduce_sum(tf.cast(present, tf.int32), 1,
                                                  keepdims=True) >= 2)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(ids, 0), logits)
    w = tf.cast(valid, tf.float32)
    loss = tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1.0)
    if self.l2:
      rows = tf.boolean_mask(ids, present)
      loss += self.l2 * (tf.reduce_sum(tf.square(tf.gather(self.input_embeddings, rows)))
                         + tf.reduce_sum(tf.square(tf.gather(self.output_embeddings, rows)))
                         ) / tf.maximum(tf.reduce_sum(w), 1.0)
    return loss


def _batches(indptr: np.ndarray, indices: np.ndarray, config: SoftmaxConfig,
             vocab_size: int, rng: np.random.Generator):
  """One epoch: int32 [B, L] batches of shuffled sets (-1 padded), B ≤ batch_sets and
  B·max_len·V ≤ logits_per_batch (at least one set)."""
  lengths = np.diff(indptr)
  order = rng.permutation(np.nonzero(lengths >= 2)[0])
  batch_sets = max(1, min(config.batch_sets,
                          config.logits_per_batch // (config.max_len * vocab_size)))
  for lo in range(0, len(order), batch_sets):
    rows = order[lo:lo + batch_sets]
    width = int(min(config.max_len, lengths[rows].max()))
    out = np.full((len(rows), width), -1, np.int32)
    for i, r in enumerate(rows):
      s = indices[indptr[r]:indptr[r + 1]]
      if len(s) > width:
        s = rng.choice(s, width, replace=False)
      out[i, :len(s)] = s
    yield out


def train_set_softmax(indptr: np.ndarray, indices: np.ndarray, vocab: Sequence[str],
                      config: SoftmaxConfig, log: Log = no_log) -> SoftmaxResult:
  """Trains ``SetSoftmax`` on sets in CSR form.

  Args:
    indptr: int [num_sets + 1]; set i is ``indices[indptr[i]:indptr[i+1]]``.
    indices: int [total] element ids into ``vocab`` (unique within a set).
    vocab: element strings.
    config: ``SoftmaxConfig`` (checked first).
    log: one line per epoch.

  Raises:
    ValueError: a setting outside its bounds, or fewer than two elements kept.
    FloatingPointError: a non-finite loss.
  """
  config_lib.check_config(config)
  t0 = time.perf_counter()
  indptr, indices = np.asarray(indptr, np.int64), np.asarray(indices, np.int64)
  counts = np.bincount(indices, minlength=len(vocab))
  kept = np.nonzero(counts >= config.min_count)[0]
  kept = kept[np.argsort(-counts[kept], kind="stable")]
  if len(kept) < 2:
    raise ValueError(f"only {len(kept)} elements occur in >= {config.min_count} sets")
  remap = np.full(len(vocab), -1, np.int64)
  remap[kept] = np.arange(len(kept))
  new = remap[indices]
  keep = new >= 0
  new_indptr = np.concatenate([[0], np.cumsum(keep)])[indptr]
  new_indices = new[keep]
  tf.random.set_seed(config.seed)
  model = SetSoftmax(len(kept), config.dim, config.dropout, config.l2, config.seed)
  optimizer = tf.keras.optimizers.Adam(config.learning_rate)

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
  def step(ids):
    with tf.GradientTape() as tape:
      loss = model.loss_of(ids, training=True)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  rng = np.random.default_rng(config.seed)
  losses = []
  for epoch in range(config.epochs):
    total, n = 0.0, 0
    for batch in _batches(new_indptr, new_indices, config, len(kept), rng):
      total += float(step(tf.constant(batch)))
      n += 1
    losses.append(total / max(n, 1))
    if not np.isfinite(losses[-1]):
      raise FloatingPointError(f"set softmax diverged (loss per epoch: {losses}); lower "
                               f"learning_rate ({config.learning_rate})")
    log(f"set softmax epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.4f}")
  return SoftmaxResult([vocab[i] for i in kept], kept, model.input_embeddings.numpy(),
                       model.output_embeddings.numpy(), model.bias.numpy(), losses,
                       time.perf_counter() - t0)
