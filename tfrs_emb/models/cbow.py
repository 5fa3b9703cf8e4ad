"""Word2Vec CBOW for sets (cases, sessions, receipts) as a Keras model.

Usage::

  from tfrs_emb.models import cbow
  result = cbow.train_cbow(cases.indptr, cases.indices, cases.vocab, dim=64, epochs=5)
  result.vocab          # training vocabulary (min-count kept), most frequent first
  result.vectors        # float32 [len(result.vocab), dim] element (input) embeddings
  result.tokens_per_s   # corpus tokens × epochs / whole training seconds
  cbow.write_projector(result, "runs/x/projector")   # vectors.tsv + metadata.tsv

Model: every element of a set is a target; its context is the mean of the input
embeddings of all *other* elements of the set (a set has no order, so the "window" is the
whole set, up to ``max_len`` elements). A training batch ``ids [B, L]`` holds B sets of
exactly L elements (``SetBatches`` groups sets by length, so there is no padding and no
mask), and the contexts of all B·L targets come from one sum,
``h_j = (Σ_i v_i − v_j) / (L − 1)``: O(B·L·d), no (target, context) pairs materialised.

Loss: negative sampling. ``shared_negatives`` (K) noise elements are drawn from the
unigram^0.75 distribution per set (default; scored against the set's L targets in one
batched product ``[B, L, d] × [B, d, K]``) or per batch (one matmul ``[B·L, d] × [d, K]``);
each noise term is weighted ``negatives / K`` so the gradient has the expectation of
word2vec's ``negatives`` independent noise samples per target. (Sampled softmax would need a per-example log-Q correction and a dense
[B·L, K] softmax; negative sampling is what gensim uses, which keeps the comparison
like-for-like.) Elements rarer than ``min_count`` are dropped; frequent elements are
subsampled with word2vec's formula (``sample``) in the input pipeline, afresh each epoch,
so dropped elements cost no compute.

Optimisation: summed loss, analytic gradients as IndexedSlices (only the touched rows),
linearly decaying rate. Default: plain SGD as word2vec, applied inside ``train_step``
(rows scattered straight into the tables, the rate folded into the [T] and [T, K]
factors, so no extra pass over [T, d] tensors), a whole epoch per traced call (a
``tf.while_loop`` over the epoch's batches: no tf.data, no Keras train function, no
per-step Python); under a multi-replica strategy, and for Adagrad, ``fit`` runs one
batch per step and the Keras optimizer applies the gradients (tf.distribute aggregates
them). The stable rate falls with corpus size: a batch applies the *sum* of thousands of
per-target gradients to a frequent element's row at once. Noise is drawn per set by
default: K draws per *batch* give rare elements almost no noise updates, and the output
layer then ranks held-out elements below popularity (BUILD_NOTES.md, JADER CBOW).
The matrix products run on a fixed ``matmul_rows`` rows (the context matrix is padded):
oneDNN builds a kernel per new shape, and with one shape per set length that cost
~0.3-0.6 s on the 30k-case demo.
The step is memory-bound elementwise work on [B·L, d] tensors, so it is written to touch
each of them as few times as possible. The input pipeline (subsampling, length groups,
shuffling) is numpy, once per epoch (``SetBatches.plan``).
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import math
import pathlib
import time
from typing import Callable, List, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import distribute
from tfrs_emb.core.log import Log, no_log
from tfrs_emb.models import cbow_kernel


INPUT_UPDATES = ("exact", "word2vec")
# word2vec's (and gensim's) noise distribution: ∝ training count ** this.
NOISE_EXPONENT = 0.75


class CBOW(tf.keras.Model):
  """CBOW over sets with shared negative sampling.

  ``train_step`` takes int32 ``[batch, set_len]`` element ids, every row a whole set of
  exactly ``set_len`` ≥ 2 elements (no padding), and runs one negative-sampling SGD step.
  ``call`` takes int ``[batch, max_len]`` ids padded with -1 and returns the mean input
  embedding of each set ``[batch, dim]``.

  Args:
    vocab_size, dim: embedding table shape.
    negatives: word2vec's noise samples per target (sets the noise terms' weight).
    shared_negatives: K noise elements drawn per batch, or per set with
      ``noise_per_set`` (stateless draws keyed by ``seed`` and the step, so a resumed
      run draws the same), shared by the batch's or the set's targets.
    noise_per_set: one draw of K per set (a batched product) rather than per batch.
    noise_distribution: float [vocab_size] noise probabilities (default uniform).
    seed: initialisation and noise draws.
    matmul_rows: pad the [T, d] context matrix to this many rows for the products
      (0 = no padding); one shape for every set length.
    sgd_schedule: when given, ``train_step`` applies plain SGD itself at this rate (by
      the optimizer's step counter); otherwise the compiled optimizer applies the
      gradients.
    input_update: "exact" (each context vector gets ∂h/(L − 1), the gradient of the
      mean) or "word2vec" (the whole ∂h, as word2vec.c and gensim do; ``gradients``).
    update_kernel: "tf" (the epoch form runs the TF step per batch) or "fused" (one
      ``cbow_kernel`` op per epoch; needs ``sgd_schedule``).
    threads: the fused op's Hogwild threads.
    noise_per_target: fused op only: every target draws ``negatives`` noise elements of
      its own (as word2vec), instead of sharing its set's ``shared_negatives``.
  """

  _TABLE_SIZE = 1 << 20

  def __init__(self, vocab_size: int, dim: int = 64, negatives: int = 5,
               shared_negatives: int = 32, noise_distribution: Optional[np.ndarray] = None,
               seed: int = 0, matmul_rows: int = 0, noise_per_set: bool = False,
               sgd_schedule: Optional[tf.keras.optimizers.schedules.LearningRateSchedule] = None,
               input_update: str = "exact", update_kernel: str = "tf", threads: int = 2,
               noise_per_target: bool = False, **kwargs):
    super().__init__(**kwargs)
    if input_update not in INPUT_UPDATES:
      raise ValueError(f"input_update must be one of {INPUT_UPDATES}, got {input_update!r}")
    if update_kernel not in ("tf", "fused"):
      raise ValueError(f"update_kernel must be tf or fused, got {update_kernel!r}")
    if update_kernel == "fused" and (sgd_schedule is None or not (
        noise_per_set or noise_per_target)):
      raise ValueError("update_kernel='fused' needs sgd_schedule and per-set or per-target "
                       "noise")
    if noise_per_target and update_kernel != "fused":
      raise ValueError("noise_per_target needs update_kernel='fused'")
    self.update_kernel = update_kernel
    self.threads = int(threads)
    self.noise_per_target = bool(noise_per_target)
    self._ops = cbow_kernel.load() if update_kernel == "fused" else None
    self.input_update = input_update
    self.vocab_size = int(vocab_size)
    self.dim = int(dim)
    self.negatives = int(negatives)
    self.shared_negatives = int(shared_negatives)
    self.seed = int(seed)
    self.matmul_rows = int(matmul_rows)
    self.sgd_schedule = sgd_schedule
    self.noise_per_set = bool(noise_per_set)
    if noise_distribution is None:
      noise_distribution = np.full(vocab_size, 1.0 / vocab_size)
    # word2vec's noise table: element i fills ~p_i of the slots; a uniform slot = a draw.
    self._noise_table = tf.constant(noise_table(noise_distribution, self._TABLE_SIZE))
    rng = np.random.default_rng(seed)
    self.input_embeddings = self.add_weight(
        name="input_embeddings", shape=(vocab_size, dim),
        initializer=tf.keras.initializers.Constant(
            (rng.random((vocab_size, dim), np.float32) - 0.5) / dim))
    self.output_embeddings = self.add_weight(
        name="output_embeddings", shape=(vocab_size, dim), initializer="zeros")
    self.loss_tracker = tf.keras.metrics.Mean(name="loss")

  @property
  def metrics(self):
    return [self.loss_tracker]

  def call(self, ids, training=False):
    """Mean input embedding of each set: int [B, L] (-1 padded) → float [B, dim]."""
    mask = tf.cast(ids >= 0, tf.float32)[..., None]
    v = tf.gather(self.input_embeddings, tf.maximum(ids, 0)) * mask
    return tf.reduce_sum(v, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)

  def _forward(self, ids, neg):
    """Forward pass with batch-shared noise ``neg [K]`` over ``ids [B, L]``, T = B·L.

    The context mean is h = c·inv with c = Σv − v and inv = 1/(L − 1); inv is applied to
    the small [T] / [K, d] factors rather than to the [T, d] tensors (one pass less).

    Returns (c [P, d] (zero-padded to ``matmul_rows``), u [T, d], un [K, d], pos [T],
    negl [P, K], inv).
    """
    d = self.dim
    v = tf.gather(self.input_embeddings, ids)                         # [B, L, d]
    inv = 1.0 / (tf.cast(tf.shape(ids)[1], tf.float32) - 1.0)
    c = tf.reshape(tf.reduce_sum(v, 1, keepdims=True) - v, [-1, d])   # [T, d]
    u = tf.reshape(tf.gather(self.output_embeddings, ids), [-1, d])   # [T, d]
    un = tf.gather(self.output_embeddings, neg)                       # [K, d]
    pos = tf.reduce_sum(c * u, -1) * inv                              # [T]  h·u
    if self.matmul_rows:
      c = tf.pad(c, [[0, tf.maximum(self.matmul_rows - tf.shape(c)[0], 0)], [0, 0]])
    negl = tf.matmul(c, un * inv, transpose_b=True)                   # [P, K]  h·un
    return c, u, un, pos, negl, inv

  def _loss(self, pos, negl):
    """Summed loss: −log σ(pos) − (negatives/K)·Σ log σ(−negl)."""
    w = self.negatives / self.shared_negatives
    return tf.reduce_sum(tf.nn.softplus(-pos)) + w * tf.reduce_sum(tf.nn.softplus(negl))

  def loss_terms(self, ids, neg):
    """Summed negative-sampling loss and the number of targets (for tests / eval)."""
    forward = self._per_set_forward if neg.shape.rank == 2 else self._forward
    _, _, _, pos, negl, _ = forward(ids, neg)
    pos = tf.reshape(pos, [-1])                                       # [T]
    negl = tf.reshape(negl, [-1, tf.shape(negl)[-1]])[:tf.size(pos)]  # [T, K]
    return self._loss(pos, negl), tf.cast(tf.size(pos), tf.float32)

  def _error_factors(self, pos, negl, scale):
    """(σ(pos) − 1, w·σ(negl)) times ``scale``: the summed loss's derivatives by the
    positive and noise scores (any shapes), w = negatives / shared_negatives."""
    return ((tf.sigmoid(pos) - 1.0) * scale,
            (self.negatives / self.shared_negatives * scale) * tf.sigmoid(negl))

  def gradients(self, ids, neg, scale=1.0):
    """Analytic gradients as IndexedSlices (no tape, no dense rows).

    With gp = σ(pos) − 1 and gn = w·σ(negl): ∂/∂h = gp·u + gn·un, ∂/∂u = gp·h,
    ∂/∂un = gnᵀ·h, and each input vector gets a·(Σ∂h − ∂h_j) from the others' contexts:
    a = inv = 1/(L − 1) with ``input_update="exact"`` (the gradient of ``loss_terms``),
    a = 1 with ``"word2vec"`` (word2vec.c and gensim with ``cbow_mean=1`` average the
    context on the way in but add the whole ∂h to every context vector).

    Args:
      ids: int32 [B, L] element ids, L ≥ 2, no padding.
      neg: int32 [K] noise elements shared by the batch, or [B, K] one draw per set.
      scale: multiplies every gradient; applied to the [T] and [T, K] factors, so an SGD
        step (scale = learning rate) costs no extra pass over [T, d] tensors.

    Returns:
      (grad_input, (grad_output_targets, grad_output_noise), pos [T], negl [T, K]); the
      gradients are IndexedSlices of the [vocab_size, dim] embedding tables.
    """
    if neg.shape.rank == 2:
      return self._per_set_gradients(ids, neg, scale)
    d = self.dim
    c, u, un, pos, negl, inv = self._forward(ids, neg)
    gp, gn = self._error_factors(pos, negl, scale)                    # [T], [P, K]
    gpi = gp * inv                                                    # ∂/∂u = gp·c·inv
    exact = self.input_update == "exact"
    t = tf.size(pos)
    dhn = tf.matmul(gn, un * inv if exact else un)[:t]                # [T, d]
    dun = tf.matmul(gn, c, transpose_a=True) * inv                    # [K, d]
    dh = tf.reshape((gpi if exact else gp)[:, None] * u + dhn,
                    tf.concat([tf.shape(ids), [d]], 0))                # [B, L, d]  a·∂h
    dv = tf.reshape(tf.reduce_sum(dh, 1, keepdims=True) - dh, [-1, d])  # [T, d]
    du = gpi[:, None] * c[:t]                                         # [T, d]
    return self._slices(ids, neg, dv, du, dun) + (pos, negl[:t])

  def _per_set_forward(self, ids, neg):
    """Forward pass with per-set noise ``neg [B, K]`` in the [B, L, ·] layout (fewer
    reshapes and slices: the step's ops are traced and instantiated once per run, a
    visible share of the 30k-case demo's ~1 s training).

    Returns (c [B, L, d], u [B, L, d], un [B, K, d], pos [B, L], negl [B, L, K], inv).
    """
    v = tf.gather(self.input_embeddings, ids)                         # [B, L, d]
    inv = 1.0 / (tf.cast(tf.shape(ids)[1], tf.float32) - 1.0)
    c = tf.reduce_sum(v, 1, keepdims=True) - v                        # [B, L, d]  h = c·inv
    u = tf.gather(self.output_embeddings, ids)                        # [B, L, d]
    un = tf.gather(self.output_embeddings, neg)                       # [B, K, d]
    pos = tf.reduce_sum(c * u, -1) * inv                              # [B, L]  h·u
    negl = tf.matmul(c, un, transpose_b=True) * inv                   # [B, L, K]  h·un
    return c, u, un, pos, negl, inv

  def _per_set_gradients(self, ids, neg, scale):
    """``gradients`` for per-set noise ``neg [B, K]``, in ``_per_set_forward``'s layout."""
    c, u, un, pos, negl, inv = self._per_set_forward(ids, neg)
    gp, gn = self._error_factors(pos, negl, scale)                    # [B, L], [B, L, K]
    gpi, gni = gp * inv, gn * inv                                     # ∂/∂u, ∂/∂un factors
    exact = self.input_update == "exact"
    dh = (tf.expand_dims(gpi if exact else gp, -1) * u                # a·∂h  [B, L, d]
          + tf.matmul(gni if exact else gn, un))
    dv = tf.reduce_sum(dh, 1, keepdims=True) - dh                     # [B, L, d]
    du = tf.expand_dims(gpi, -1) * c                                  # [B, L, d]
    dun = tf.matmul(gni, c, transpose_a=True)                         # [B, K, d]
    d = self.dim
    return self._slices(ids, neg, tf.reshape(dv, [-1, d]), tf.reshape(du, [-1, d]),
                        tf.reshape(dun, [-1, d])) + (
                            tf.reshape(pos, [-1]), tf.reshape(negl, [-1, neg.shape[1]]))

  def _slices(self, ids, neg, dv, du, dun):
    """(grad_input, (grad_output_targets, grad_output_noise)) as IndexedSlices."""
    flat = tf.reshape(ids, [-1])
    shape = tf.constant([self.vocab_size, self.dim])
    return (tf.IndexedSlices(dv, flat, shape),
            (tf.IndexedSlices(du, flat, shape),
             tf.IndexedSlices(dun, tf.reshape(neg, [-1]), shape)))

  # No tensor-dependent Python control flow here: skipping AutoGraph's source rewrite
  # saves ~0.1 s of tracing (a visible share of the 30k-case demo's training time).
  @tf.autograph.experimental.do_not_convert
  def train_step(self, data):
    """One batch ``ids [B, L]``, or a whole epoch ``(flat ids [N], shapes [S, 2])``.

    The epoch form (``SetBatches.plan``; in-step SGD on one replica, ``train_cbow``)
    runs its S batches in one ``tf.while_loop``: one call per epoch, no tf.data and no
    per-step Python.
    """
    if isinstance(data, (tuple, list)) and self._ops is not None:
      self._fused_epoch(*data)
    elif isinstance(data, (tuple, list)):   # SetBatches' batches: no checks needed
      flat, shapes = data
      offsets = plan_offsets(shapes)

      def body(i, total):
        return i + 1, total + self._train_batch(plan_batch(flat, offsets[i], shapes[i]))

      steps = tf.shape(shapes)[0]
      _, total = tf.while_loop(lambda i, _: i < steps, body, (0, 0.0),
                               parallel_iterations=1)
      # The epoch's mean of the batch losses, as per-batch updates would give.
      self.loss_tracker.update_state(total / tf.cast(steps, tf.float32),
                                     sample_weight=tf.cast(steps, tf.float32))
    else:
      ids = tf.cast(data, tf.int32)
      with tf.control_dependencies([tf.debugging.assert_non_negative(
          ids, message="CBOW.train_step takes padding-free batches (ids >= 0)"),
          tf.debugging.assert_greater_equal(
              tf.shape(ids)[1], 2, message="CBOW.train_step needs sets of >= 2 elements")]):
        self.loss_tracker.update_state(self._train_batch(tf.identity(ids)))
    return {"loss": self.loss_tracker.result()}

  def _fused_epoch(self, flat, shapes):
    """The epoch plan ``(flat [N], shapes [S, 2])`` in one ``CbowEpoch`` op: the rate
    decays from the schedule at this step to the schedule S steps on (as S batches would),
    noise keyed by (seed, step); the updated tables are assigned back to the variables."""
    step = self.optimizer.iterations
    steps = tf.cast(tf.shape(shapes)[0], step.dtype)
    rates = tf.cast(tf.stack([self.sgd_schedule(step), self.sgd_schedule(step + steps)]),
                    tf.float32)
    new_in, new_out, loss = self._ops.cbow_epoch(
        self.input_embeddings, self.output_embeddings, flat, shapes, self._noise_table,
        rates, tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)]),
        negatives=self.negatives,
        shared_negatives=0 if self.noise_per_target else self.shared_negatives,
        word2vec_update=self.input_update == "word2vec", threads=self.threads)
    self.input_embeddings.assign(new_in)
    self.output_embeddings.assign(new_out)
    step.assign_add(steps)
    self.loss_tracker.update_state(loss)

  def _train_batch(self, ids):
    """One negative-sampling step on a padding-free int32 batch ``ids [B, L]`` (L ≥ 2).

    Returns:
      The batch's mean loss per target (float32 scalar, estimated on 1/8 of them).
    """
    step = self.optimizer.iterations
    # Stateless draws keyed by the step: a resumed run draws the same noise elements.
    draws = ([tf.shape(ids)[0], self.shared_negatives] if self.noise_per_set
             else [self.shared_negatives])
    # Each replica draws its own noise for its rows (keyed by step and replica id; one
    # replica: by step alone).
    context = tf.distribute.get_replica_context()
    key = tf.cast(step, tf.int32) * context.num_replicas_in_sync + tf.cast(
        context.replica_id_in_sync_group, tf.int32)
    neg = tf.gather(self._noise_table, tf.random.stateless_uniform(
        draws, [self.seed, key], 0, self._noise_table.shape[0], dtype=tf.int32))
    if self.sgd_schedule is not None:
      # Plain SGD applied here: rows scattered straight into the tables, the rate folded
      # into the small gradient factors (the optimizer would scale [T, d] tensors again).
      g_in, (g_u, g_un), pos, negl = self.gradients(
          ids, neg, scale=self.sgd_schedule(step))
      self.input_embeddings.scatter_sub(g_in)
      self.output_embeddings.scatter_sub(g_u)
      self.output_embeddings.scatter_sub(g_un)
      step.assign_add(1)
    else:
      g_in, (g_u, g_un), pos, negl = self.gradients(ids, neg)
      g_out = tf.IndexedSlices(tf.concat([g_u.values, g_un.values], 0),
                               tf.concat([g_u.indices, g_un.indices], 0), g_u.dense_shape)
      if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        # Dense [V, d] gradients all-reduce with one fixed shape on every worker; the
        # row-sliced form is all-gathered with per-worker sizes, which
        # MultiWorkerMirroredStrategy mismatches when the workers' batches differ.
        g_in, g_out = tf.convert_to_tensor(g_in), tf.convert_to_tensor(g_out)
      self.optimizer.apply_gradients([(g_in, self.input_embeddings),
                                      (g_out, self.output_embeddings)])
    # The reported loss is the mean over the first 1/8 of the targets (rows are shuffled):
    # softplus over all [T, K] scores would cost an eighth of the step for a log line.
    n = tf.maximum(tf.size(pos) // 8, 1)
    return self._loss(pos[:n], negl[:n]) / tf.cast(n, tf.float32)

  def get_config(self):
    schedule = (None if self.sgd_schedule is None else
                tf.keras.optimizers.schedules.serialize(self.sgd_schedule))
    return {"vocab_size": self.vocab_size, "dim": self.dim, "negatives": self.negatives,
            "shared_negatives": self.shared_negatives, "seed": self.seed,
            "matmul_rows": self.matmul_rows, "noise_per_set": self.noise_per_set,
            "sgd_schedule": schedule, "input_update": self.input_update,
            "update_kernel": self.update_kernel, "threads": self.threads,
            "noise_per_target": self.noise_per_target}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    if config.get("sgd_schedule") is not None:
      config["sgd_schedule"] = tf.keras.optimizers.schedules.deserialize(
          config["sgd_schedule"])
    return cls(**config)


class SetBatches:
  """Subsampled, length-grouped, padding-free batches of sets for ``tf.data``.

  Each epoch (numpy, off the training step): every element occurrence is kept with its
  word2vec subsampling probability; sets longer than ``max_len`` keep a random
  ``max_len`` of their elements; sets left with < 2 elements have no context and are
  skipped for that epoch. Sets are then grouped by exact length L, so a batch is a dense
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
    self.steps_per_epoch = max(
        self._num_batches(np.diff(self._subsample(self._rng(e))[0]))
        for e in range(self.epochs))

  def _rng(self, epoch: int) -> np.random.Generator:
    return np.random.default_rng([self.seed, epoch])

  def _subsample(self, rng: np.random.Generator):
    """(indptr, indices) of the epoch's subsample (the rng's first draw)."""
    if self._keep is None:
      return self._indptr, self._indices
    return filter_sets(self._indptr, self._indices,
                       rng.random(len(self._indices)) < self._keep)

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
    # With autotuning on, fit() sometimes hung ~15 s on exit (seen 4 of 7 full-scale runs).
    opts.autotune.enabled = False
    return tf.data.Dataset.range(first_epoch, self.epochs).prefetch(1).flat_map(
        epoch_batches).prefetch(16).with_options(opts)


def plan_offsets(shapes: tf.Tensor) -> tf.Tensor:
  """Start of each batch in an epoch plan's flat ids: int32 [S] from shapes int32 [S, 2]."""
  return tf.cumsum(shapes[:, 0] * shapes[:, 1], exclusive=True)


def plan_batch(flat: tf.Tensor, offset: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
  """The batch int32 [B, L] of an epoch plan (``SetBatches.plan``) at ``offset``."""
  return tf.reshape(flat[offset:offset + shape[0] * shape[1]], shape)


def noise_table(probabilities: np.ndarray, size: int) -> np.ndarray:
  """word2vec's noise table: int32 [size], element i in ~p_i of the slots (slot j holds
  the first i whose cumulative probability reaches the slot's centre (j + ½)/size), so
  a uniform slot is a draw. Built as V run lengths (one search per element, not per
  slot: ~2 ms instead of ~50 ms for 2^20 slots, a visible share of the demo's training)."""
  cum = np.cumsum(np.asarray(probabilities, np.float64))
  slots = (np.arange(size) + 0.5) / size * cum[-1]
  ends = np.searchsorted(slots, cum, side="right")   # slots up to each cumulative value
  table = np.full(size, len(cum) - 1, np.int32)
  table[:ends[-1]] = np.repeat(np.arange(len(cum), dtype=np.int32), np.diff(ends, prepend=0))
  return table


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


@dataclasses.dataclass
class CbowResult:
  """Outcome of ``train_cbow``.

  Attributes:
    vocab: training vocabulary (elements with count ≥ min_count), most frequent first.
    counts: int [len(vocab)] number of sets containing each element.
    vectors: float32 [len(vocab), dim] input embeddings (the element embeddings).
    output_vectors: float32 [len(vocab), dim] output (negative-sampling) embeddings:
      mean of a set's input vectors · these scores the set's next element.
    source_ids: int [len(vocab)] id of each vocab entry in the caller's vocabulary.
    train_seconds: whole training wall time (vocabulary, batching, model build, XLA
      compilation and fit).
    tokens: corpus element occurrences × epochs (before min-count / subsampling, as gensim
      counts raw words).
    tokens_per_s: tokens / train_seconds.
    history: Keras History.history.
    model: the trained CBOW model.
    replicas: replicas in sync under the strategy used.
    kernel: the update path that ran: "fused" (``cbow_kernel``) or "tf".
  """
  vocab: List[str]
  counts: np.ndarray
  vectors: np.ndarray
  output_vectors: np.ndarray
  source_ids: np.ndarray
  train_seconds: float
  tokens: int
  tokens_per_s: float
  history: dict
  model: CBOW
  replicas: int = 1
  kernel: str = "tf"


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
  """default | mirrored (all local devices) | multi_worker (cluster from TF_CONFIG)."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy must be default, mirrored or multi_worker, got {name!r}")


class _EpochCheckpoint(tf.keras.callbacks.Callback):
  """Saves ``checkpoint`` (weights, step counter, epoch) after every finite epoch."""

  def __init__(self, checkpoint: tf.train.Checkpoint, directory: str):
    super().__init__()
    self._checkpoint = checkpoint
    self._manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1)

  def on_epoch_end(self, epoch, logs=None):
    if np.isfinite((logs or {}).get("loss", 0.0)):
      self._checkpoint.epoch.assign(epoch + 1)
      self._manager.save(checkpoint_number=epoch + 1)


def _resume(checkpoint: tf.train.Checkpoint, directory: pathlib.Path, settings: dict,
            log: Log) -> int:
  """Restores the latest checkpoint of ``directory`` (made with the same ``settings``).

  Returns:
    The number of epochs already trained (0 for a fresh directory).
  """
  directory.mkdir(parents=True, exist_ok=True)
  record = directory / "settings.json"
  if record.exists() and json.loads(record.read_text()) != settings:
    raise ValueError(f"{directory} holds a CBOW checkpoint of other settings "
                     f"({record.read_text().strip()}); use another checkpoint_dir")
  record.write_text(json.dumps(settings, sort_keys=True))
  latest = tf.train.latest_checkpoint(str(directory))
  if latest is None:
    return 0
  checkpoint.restore(latest).assert_existing_objects_matched()
  log(f"CBOW: resumed from {latest} after epoch {int(checkpoint.epoch.numpy())}")
  return int(checkpoint.epoch.numpy())


def _train_whole_epochs(model: CBOW, batches: SetBatches, first_epoch: int,
                        callbacks: Sequence[tf.keras.callbacks.Callback],
                        verbose: int) -> dict:
  """``fit`` for in-step SGD on one replica: one traced call per epoch (no tf.data, no
  Keras train function), with the Keras callback protocol (one batch per epoch).

  ``fit``'s own machinery (its autograph-converted train function, data handler and
  iterator) cost ~0.1-0.15 s of a ~1 s demo training; here the first call traces
  ``CBOW.train_step`` once (fixed input signature) and every epoch reuses it. The next
  epoch is planned (numpy, ``SetBatches.plan``) on a thread while the current one trains.

  Returns:
    The History dict (``loss`` per epoch).
  """
  run_epoch = tf.function(model.train_step, autograph=False, input_signature=[(
      tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 2], tf.int32))])
  cbs = tf.keras.callbacks.CallbackList(list(callbacks), add_history=True,
                                        add_progbar=verbose != 0, model=model,
                                        verbose=verbose, epochs=batches.epochs, steps=1)
  model.stop_training = False
  cbs.on_train_begin()
  logs = {}
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as planner:
    plan = planner.submit(batches.plan, first_epoch)
    for epoch in range(first_epoch, batches.epochs):
      current = plan.result()
      if epoch + 1 < batches.epochs:
        plan = planner.submit(batches.plan, epoch + 1)
      model.reset_metrics()
      cbs.on_epoch_begin(epoch)
      cbs.on_train_batch_begin(0)
      logs = {name: float(value) for name, value in run_epoch(current).items()}
      cbs.on_train_batch_end(0, logs)
      cbs.on_epoch_end(epoch, logs)
      if model.stop_training:
        break
  cbs.on_train_end(logs)
  return model.history.history


def train_cbow(indptr: np.ndarray, indices: np.ndarray, vocab: Sequence[str], dim: int = 64,
               negatives: int = 5, shared_negatives: int = 5, epochs: int = 5,
               min_count: int = 5, sample: float = 1e-3, learning_rate: float = 0.07,
               min_learning_rate: float = 2e-5, tokens_per_batch: int = 8192,
               optimizer: str = "sgd", max_len: int = 64, seed: int = 0,
               strategy: str = "default", log_dir: Optional[str] = None, verbose: int = 0,
               steps_per_execution: int = 8, noise_per_set: bool = True,
               checkpoint_dir: Optional[str] = None, row_multiple: int = 0,
               input_update: str = "exact", kernel: str = "auto", threads: int = 2,
               noise_per_target: bool = False, fused_learning_rate: Optional[float] = None,
               fused_input_update: Optional[str] = None,
               fused_tokens_per_batch: Optional[int] = None,
               noise_exponent: float = NOISE_EXPONENT,
               callbacks: Sequence[tf.keras.callbacks.Callback] = (),
               log: Log = no_log) -> CbowResult:
  """Trains CBOW on sets given in CSR form.

  Args:
    indptr: int [num_sets + 1]; set i is ``indices[indptr[i]:indptr[i+1]]``.
    indices: int [total] element ids into ``vocab`` (unique within a set).
    vocab: element strings.
    dim: embedding size.
    negatives: noise samples per target (word2vec's ``negative``).
    shared_negatives: noise elements drawn per set (``noise_per_set``) or per batch,
      shared by the targets of that set or batch; each weighted negatives / this.
    epochs: passes over the sets.
    min_count: drop elements occurring in fewer sets.
    sample: subsampling threshold (0 disables).
    learning_rate, min_learning_rate: step size, decayed linearly over training. The
      stable rate falls with corpus size (subsampling keeps more of the frequent
      elements, so their rows sum more gradients per batch): 0.07 suits ~30k sets; at
      ~700k sets 0.07 diverges; configs/jader_w2v_full.flags uses 0.01 with
      ``input_update="word2vec"`` (BUILD_NOTES.md, JADER CBOW).
    optimizer: "sgd" (word2vec's plain SGD on the summed loss, sparse row updates applied
      in the train step; through the Keras optimizer under a multi-replica strategy) or
      "adagrad" (per-coordinate accumulators; use learning_rate ~1.0).
    tokens_per_batch: element slots per batch (rows × set length); also the fixed row
      count of the step's matrix products.
    max_len: longest set used (longer sets keep a random subset).
    seed: seeds initialisation, batching and noise draws (no global seed is set).
    strategy: "default", "mirrored" or "multi_worker" (TF_CONFIG).
    log_dir: TensorBoard log folder (None: no TensorBoard callback).
    verbose: Keras fit verbosity (0 silent, 1 progress bar, 2 a line per epoch).
    steps_per_execution: train steps per tf.function call under ``fit`` (Adagrad or
      several replicas; in-step SGD on one replica runs a whole epoch per call).
    noise_per_set: every set draws its own noise elements (default). With one draw per
      batch, rare elements are almost never noise and the output layer learns a bias
      toward them (heldout_recall@10 0.01 vs 0.28 on the development release).
    checkpoint_dir: when given, a checkpoint is written there after every epoch, and a
      run that finds one (from an interrupted run with the same data and settings)
      resumes after its last finished epoch, giving the uninterrupted run's result.
      train_seconds then counts only the resumed part. Under multi_worker, workers other
      than the chief use ``checkpoint_dir.worker<i>`` (as they do for ``log_dir``), so
      no two processes write one file.
    row_multiple: batch rows are a multiple of this (0: the number of replicas, so every
      replica gets equal rows). A one-process run with ``row_multiple=N`` sees the very
      batches an N-worker run splits, so the two can be compared exactly.
    input_update: "exact" (the gradient of the context mean: ∂h/(L − 1) to each context
      vector) or "word2vec" (the whole ∂h, as word2vec.c and gensim with cbow_mean).
    kernel: "auto" (the fused C++ epoch op, ``cbow_kernel``, when it loads and the
      settings allow it: SGD on one replica with per-set or per-target noise; else the
      pure-TF step, with one logged line saying why), "fused" (the op or an error) or
      "tf" (the pure-TF step). ``CbowResult.kernel`` says which ran.
    threads: the fused op's Hogwild threads.
    noise_per_target: every target draws ``negatives`` noise elements of its own (as
      word2vec and gensim); fused op only (the TF path then draws per set, logged).
    fused_learning_rate, fused_input_update: replace ``learning_rate`` / ``input_update``
      when the fused op runs (None: the same), so a fallback to the TF step keeps the
      settings tuned for it (the fused op's sequential per-set updates stand a higher
      rate than the TF step's batched sums: 0.05 with the word2vec update diverges
      there on the demo).
    fused_tokens_per_batch: the fused op's batches only set the order of its sets (it
      loops over them one by one); smaller batches mix set lengths more finely. None:
      ``tokens_per_batch``. At 692,821 cases the word2vec update needs this near-random
      order (128: heldout_recall@10 0.2995 vs 0.29 at 8192, BUILD_NOTES.md).
    noise_exponent: noise distribution ∝ training count ** this (word2vec's 0.75). Lower
      values draw frequent elements as noise more often, so the output layer penalises
      them less and its scores lean from lift toward P(element | context).
    callbacks: extra Keras callbacks.
    log: progress messages (default: none).

  Returns:
    CbowResult.

  Raises:
    FloatingPointError: training diverged (non-finite loss or embeddings).
    ValueError: too few elements, an unknown optimizer, strategy or kernel, or a
      checkpoint_dir holding a run of other settings.
    cbow_kernel.KernelUnavailable: ``kernel="fused"`` and the op cannot run.
  """
  t0 = time.perf_counter()
  indptr = np.asarray(indptr, np.int64)
  indices = np.asarray(indices, np.int64)
  counts = np.bincount(indices, minlength=len(vocab))
  kept = np.nonzero(counts >= min_count)[0]
  kept = kept[np.argsort(-counts[kept], kind="stable")]
  remap = np.full(len(vocab), -1, np.int64)
  remap[kept] = np.arange(len(kept))
  new = remap[indices]
  new_indptr, new_indices = filter_sets(indptr, new, new >= 0)
  kcounts = counts[kept]
  if len(kept) < 2:
    raise ValueError(f"only {len(kept)} elements occur in >= {min_count} sets; lower "
                     "min_count or give more data")
  if optimizer not in ("sgd", "adagrad"):
    raise ValueError(f"optimizer must be adagrad or sgd, got {optimizer!r}")
  strat = make_strategy(strategy)
  replicas = strat.num_replicas_in_sync
  log(f"CBOW: {type(strat).__name__} with {replicas} replica(s); {len(kept):,d} elements "
      f"(min_count {min_count}) of {len(vocab):,d}")
  noise = kcounts.astype(np.float64) ** noise_exponent
  noise /= noise.sum()
  # In-step SGD on one replica trains a whole epoch per call (_train_whole_epochs).
  whole_epochs = optimizer == "sgd" and replicas == 1
  choice = cbow_kernel.resolve(
      kernel, supported=whole_epochs and (noise_per_set or noise_per_target),
      why_not="Adagrad, several replicas or per-batch noise")
  if choice.reason:
    log(f"CBOW: fused kernel not used ({choice.reason}); training with the pure-TF step"
        + (f" (noise per {'set' if noise_per_set else 'batch'}, not per target)"
           if noise_per_target else ""))
  fused = choice.path == "fused"
  if fused:
    learning_rate = learning_rate if fused_learning_rate is None else fused_learning_rate
    input_update = fused_input_update or input_update
  order_tokens = (fused_tokens_per_batch or tokens_per_batch) if fused else tokens_per_batch
  batches = SetBatches(new_indptr, new_indices, keep_probability=keep_probabilities(
      kcounts, sample), epochs=epochs, tokens_per_batch=order_tokens, max_len=max_len,
                       seed=seed, row_multiple=row_multiple or replicas)
  total_steps = batches.steps_per_epoch * epochs
  log(f"CBOW: {choice.path} update, learning_rate {learning_rate}, input_update "
      f"{input_update}, batches of {order_tokens} tokens")
  with strat.scope():
    schedule = tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, max(total_steps, 1), min_learning_rate)
    model = CBOW(len(kept), dim=dim, negatives=negatives, shared_negatives=shared_negatives,
                 noise_distribution=noise, seed=seed, matmul_rows=tokens_per_batch,
                 noise_per_set=noise_per_set, input_update=input_update,
                 sgd_schedule=schedule if whole_epochs else None,
                 update_kernel=choice.path, threads=threads,
                 noise_per_target=noise_per_target and fused)
    if optimizer == "adagrad":
      opt = tf.keras.optimizers.Adagrad(schedule, initial_accumulator_value=0.1)
    else:
      opt = tf.keras.optimizers.SGD(schedule)
    # No XLA: batch shapes vary with set length, and each shape would compile anew.
    model.compile(optimizer=opt, steps_per_execution=steps_per_execution)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=opt,
                                     epoch=tf.Variable(0, dtype=tf.int64, trainable=False))
  cbs = [tf.keras.callbacks.TerminateOnNaN()]
  first_epoch = 0
  if checkpoint_dir:
    settings = {"data": hashlib.sha1(new_indptr.tobytes() + new_indices.tobytes()).hexdigest(),
                "dim": dim, "negatives": negatives, "shared_negatives": shared_negatives,
                "epochs": epochs, "sample": sample, "learning_rate": learning_rate,
                "min_learning_rate": min_learning_rate, "tokens_per_batch": order_tokens,
                "optimizer": optimizer, "max_len": max_len, "seed": seed, "replicas": replicas,
                "noise_per_set": noise_per_set, "row_multiple": batches.row_multiple,
                "input_update": input_update, "kernel": choice.path,
                "noise_per_target": noise_per_target and fused,
                "noise_exponent": noise_exponent}
    checkpoint_dir = str(distribute.output_path(checkpoint_dir, strat))
    first_epoch = _resume(checkpoint, pathlib.Path(checkpoint_dir), settings, log)
    cbs.append(_EpochCheckpoint(checkpoint, checkpoint_dir))   # before any user callback
  cbs += list(callbacks)
  if log_dir:
    cbs.append(tf.keras.callbacks.TensorBoard(
        log_dir=str(distribute.output_path(log_dir, strat)), update_freq="epoch",
        profile_batch=0, write_graph=False))
  if whole_epochs:
    history = _train_whole_epochs(model, batches, first_epoch, cbs, verbose)
  else:
    ds = batches.dataset(first_epoch)
    if strategy != "default":
      opts = tf.data.Options()
      opts.experimental_distribute.auto_shard_policy = (
          tf.data.experimental.AutoShardPolicy.DATA)
      ds = ds.with_options(opts)
    history = model.fit(ds, epochs=epochs, initial_epoch=first_epoch,
                        steps_per_epoch=batches.steps_per_epoch, verbose=verbose,
                        callbacks=cbs).history
  vectors = model.input_embeddings.numpy()
  losses = history.get("loss", [])
  # All scores start at 0 (zero output vectors): the first loss is ~(1 + negatives)·ln 2.
  if (not np.isfinite(vectors).all() or not np.isfinite(losses).all()
      or np.max(losses, initial=0.0) > 10 * (1 + negatives) * math.log(2)):
    raise FloatingPointError(
        f"CBOW training diverged (loss per epoch: {losses}); lower learning_rate "
        f"({learning_rate}) or tokens_per_batch ({tokens_per_batch}): a batch applies the "
        "sum of its targets' gradients to each element row")
  seconds = time.perf_counter() - t0
  tokens = int(len(indices)) * (epochs - first_epoch)
  return CbowResult(vocab=[vocab[i] for i in kept], counts=kcounts, vectors=vectors,
                    output_vectors=model.output_embeddings.numpy(),
                    source_ids=kept, train_seconds=seconds, tokens=tokens,
                    tokens_per_s=tokens / seconds, history=dict(history), model=model,
                    replicas=replicas, kernel=choice.path)


def write_projector(vocab: Sequence[str], vectors: np.ndarray, out_dir: "str | pathlib.Path",
                    counts: Optional[np.ndarray] = None) -> pathlib.Path:
  """Writes vectors.tsv + metadata.tsv (TensorBoard Embedding Projector) into out_dir.

  metadata.tsv has a header row: element, kind, count.
  """
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  np.savetxt(out / "vectors.tsv", np.asarray(vectors, np.float32), delimiter="\t", fmt="%.5f")
  with open(out / "metadata.tsv", "w", encoding="utf-8") as f:
    f.write("element\tkind\tcount\n")
    for i, v in enumerate(vocab):
      kind = v.split(":", 1)[0] if ":" in v else ""
      c = int(counts[i]) if counts is not None else ""
      f.write(f"{v.replace(chr(9), ' ')}\t{kind}\t{c}\n")
  return out
