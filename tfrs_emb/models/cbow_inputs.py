"""The input pipeline of the Keras CBOW: sets → subsampled, length-grouped batches.

Numpy, once per epoch, off the training step: word2vec's subsampling (``sample``) drops
element occurrences afresh every epoch (so dropped elements cost no compute), sets longer
than ``max_len`` keep a random subset, and sets are grouped by exact length so every batch
is a dense, padding-free ``[rows, L]`` matrix (``SetBatches``). An epoch is handed to the
model as one *plan* ``(flat ids [N], shapes [S, 2])`` (``SetBatches.plan``), or as a
``tf.data`` pipeline of its batches (``SetBatches.dataset``).

Usage::

  from tfrs_emb.models import cbow_inputs
  batches = cbow_inputs.SetBatches(indptr, indices, keep_probability=
      cbow_inputs.keep_probabilities(counts, 1e-3), epochs=5, tokens_per_batch=8192)
  flat, shapes = batches.plan(epoch=0)
"""

import math
from typing import List, Optional

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf


class SetBatches:
  """Subsampled, length-grouped, padding-free batches of sets for ``tf.data``.

  Each epoch (numpy, off the training step): every element occurrence is kept with its
  word2vec subsampling probability; sets longer than ``max_len`` keep a random
  ``max_len`` of their elements; sets left with < 2 elements have no context and are
  skipped for that epoch. An epoch that subsampling leaves with no set of >= 2 elements
  (tiny corpora: there ``sample`` · total is below every count, so gensim's formula keeps
  each element rarely; gensim trains nothing then) trains on the sets unsubsampled, so
  it is never empty. Sets are then grouped by exact length L, so a batch is a dense
  ``[rows, L]`` matrix with ``rows ≈ tokens_per_batch / L``. When ``row_multiple`` > 1
  (tf.distribute replicas), the last batch of a length is topped up to a multiple with
  random sets of that length from the same epoch. Keras needs the same number of steps in
  every epoch, so the batch count of each epoch is worked out in advance (from the same
  seeded draws) and an epoch with fewer batches than the most splits its largest ones.
  Order of sets and batches is reshuffled each epoch.
  """

  def __init__(self, indptr: np.ndarray, indices: np.ndarray,
               keep_probability: Optional[np.ndarray] = None, epochs: int = 1,
               tokens_per_batch: int = 8192, max_len: int = 64, seed: int = 0,
               row_multiple: int = 1):
    self._indptr = np.asarray(indptr, np.int64)
    self._indices = np.asarray(indices, np.int32)
    self._keep = None if keep_probability is None else \
        np.asarray(keep_probability, np.float64)[self._indices]
    self.epochs = int(epochs)
    self.tokens_per_batch = int(tokens_per_batch)
    self.max_len = int(max_len)
    self.seed = int(seed)
    self.row_multiple = int(row_multiple)
    if not self._num_batches(np.diff(self._indptr)):
      raise ValueError("SetBatches: no set has >= 2 elements (a set needs a context); "
                       "lower min_count or give sets of two or more elements")
    self.steps_per_epoch = max(
        self._num_batches(np.diff(self._subsample(self._rng(e))[0]))
        for e in range(self.epochs))

  def _rng(self, epoch: int) -> np.random.Generator:
    return np.random.default_rng([self.seed, epoch])

  def _subsample(self, rng: np.random.Generator):
    """(indptr, indices) of the epoch's subsample (the rng's first draw); the sets
    unsubsampled when the subsample has no set of >= 2 elements to train on."""
    if self._keep is None:
      return self._indptr, self._indices
    indptr, indices = filter_sets(self._indptr, self._indices,
                                  rng.random(len(self._indices)) < self._keep)
    if not self._num_batches(np.diff(indptr)):
      return self._indptr, self._indices
    return indptr, indices

  def _rows(self, width: int) -> int:
    m = self.row_multiple
    return max(m, self.tokens_per_batch // width // m * m)

  def _num_batches(self, lengths: np.ndarray) -> int:
    per_width = np.bincount(np.minimum(lengths, self.max_len), minlength=self.max_len + 1)
    return int(sum(math.ceil(n / self._rows(w)) for w, n in enumerate(per_width) if w >= 2))

  def epoch(self, epoch: int = 0) -> List[np.ndarray]:
    """Epoch ``epoch``: ``steps_per_epoch`` int32 [rows, L] batches in random order."""
    rng = self._rng(epoch)
    indptr, indices = self._subsample(rng)
    m = self.row_multiple
    clipped = np.minimum(np.diff(indptr), self.max_len)   # longer sets go with max_len
    batches = []
    for w in range(2, self.max_len + 1):
      sel = np.nonzero(clipped == w)[0]
      if not len(sel):
        continue
      sel = rng.permutation(sel)
      if w < self.max_len:
        mat = indices[indptr[sel][:, None] + np.arange(w)]
      else:   # rare long sets: a random subset of max_len elements each
        mat = np.stack([rng.choice(indices[indptr[c]:indptr[c + 1]], w, replace=False)
                        for c in sel])
      rows = self._rows(w)
      for i in range(0, len(mat), rows):
        b = mat[i:i + rows]
        if len(b) % m:
          b = np.concatenate([b, mat[rng.integers(0, len(mat), m - len(b) % m)]])
        batches.append(b)
    while len(batches) < self.steps_per_epoch:
      big = max(range(len(batches)), key=lambda j: len(batches[j]))
      half = len(batches[big]) // m // 2 * m
      if half:
        batches.append(batches[big][half:])
        batches[big] = batches[big][:half]
      else:   # only in tiny corpora: every batch is one row group; revisit one
        batches.append(batches[rng.integers(len(batches))])
    return [batches[j] for j in rng.permutation(len(batches))]

  def plan(self, epoch: int = 0):
    """Epoch ``epoch`` as (flat int32 [N] ids of its batches one after the other, int32
    [steps_per_epoch, 2] batch shapes): the input of ``CBOW.train_step``'s epoch form."""
    batches = self.epoch(int(epoch))
    return (np.concatenate([b.ravel() for b in batches]),
            np.array([b.shape for b in batches], np.int32))

  def dataset(self, first_epoch: int = 0) -> tf.data.Dataset:
    """Epochs ``first_epoch`` … ``epochs − 1``, one after the other (fit with
    ``steps_per_epoch``; a resumed run starts after its last finished epoch).

    Python runs once per epoch, not per step: ``tf.numpy_function`` plans an epoch
    (``plan``), and tf.data slices the batches out in C++. The next epoch is planned in
    the background while the current one trains.
    """
    @tf.autograph.experimental.do_not_convert   # plain graph code: skip the rewrite
    def epoch_batches(epoch):
      flat, shapes = tf.numpy_function(self.plan, [epoch], (tf.int32, tf.int32),
                                       stateful=False)
      return tf.data.Dataset.from_tensor_slices((plan_offsets(shapes), shapes)).map(
          tf.autograph.experimental.do_not_convert(
              lambda offset, shape: plan_batch(flat, offset, shape)))

    opts = tf.data.Options()
    # With autotuning on, fit() sometimes hung on exit at full scale.
    opts.autotune.enabled = False
    return tf.data.Dataset.range(first_epoch, self.epochs).prefetch(1).flat_map(
        epoch_batches).prefetch(16).with_options(opts)


def plan_offsets(shapes: tf.Tensor) -> tf.Tensor:
  """Start of each batch in an epoch plan's flat ids: int32 [S] from shapes int32 [S, 2]."""
  return tf.cumsum(shapes[:, 0] * shapes[:, 1], exclusive=True)


def plan_batch(flat: tf.Tensor, offset: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
  """The batch int32 [B, L] of an epoch plan (``SetBatches.plan``) at ``offset``."""
  return tf.reshape(flat[offset:offset + shape[0] * shape[1]], shape)


def filter_sets(indptr: np.ndarray, indices: np.ndarray, keep: np.ndarray):
  """Keeps the ``keep``-marked elements of CSR sets: (new indptr [num_sets + 1], indices)."""
  new_indptr = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])[indptr]
  return new_indptr, indices[keep]


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
  """word2vec / gensim subsampling: P(keep) = (sqrt(c / t) + 1) · t / c, t = sample·Σc."""
  counts = np.asarray(counts, np.float64)
  if sample <= 0:
    return np.ones_like(counts)
  t = sample * counts.sum()
  return np.minimum(1.0, (np.sqrt(counts / t) + 1.0) * t / np.maximum(counts, 1.0))
