"""Word2Vec CBOW for sets (cases, sessions, receipts) as a Keras model, and its config.

Usage::

  from tfrs_emb.models import cbow, cbow_training
  config = cbow.CbowConfig(dim=64, epochs=5)
  result = cbow_training.train_cbow(cases.indptr, cases.indices, cases.vocab, config)

Model: every element of a set is a target; its context is the mean of the input
embeddings of all *other* elements of the set (a set has no order, so the "window" is the
whole set, up to ``max_len`` elements). A training batch ``ids [B, L]`` holds B sets of
exactly L elements (``cbow_inputs.SetBatches`` groups sets by length, so there is no
padding and no mask), and the contexts of all B·L targets come from one sum,
``h_j = (Σ_i v_i − v_j) / (L − 1)``: O(B·L·d), no (target, context) pairs materialised.

Loss: negative sampling. K noise elements are drawn from the unigram^``noise_exponent``
distribution per set (default: K = max(``shared_negatives``, L), scored against the set's
L targets in one batched product ``[B, L, d] × [B, d, K]``; fewer than L shared rows would
each take L pushes per step from nearly the same context, which stalls or diverges on
long sets) or per batch (K = ``shared_negatives``, one matmul
``[B·L, d] × [d, K]``); each noise term is weighted ``negatives / K`` so the gradient has
the expectation of word2vec's ``negatives`` independent noise samples per target.
Negative sampling is what gensim uses, which keeps the comparison like-for-like.

Optimisation: summed loss, analytic gradients as IndexedSlices (only the touched rows),
linearly decaying rate. With ``sgd_schedule`` plain SGD (as word2vec) is applied inside
``train_step`` (rows scattered straight into the tables, the rate folded into the [T] and
[T, K] factors, so no extra pass over [T, d] tensors), and the epoch form runs a whole
epoch per call (a ``tf.while_loop`` over its batches, or one fused ``cbow_kernel`` op);
otherwise the compiled Keras optimizer applies the gradients (Adagrad, or several
replicas, where tf.distribute aggregates them). The matrix products run on a fixed
``matmul_rows`` rows (the context matrix is padded), so oneDNN builds one kernel rather
than one per set length.
"""

import dataclasses
from typing import Optional

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import config as config_lib
from tfrs_emb.core.config import field
from tfrs_emb.models import cbow_inputs
from tfrs_emb.models import cbow_kernel


INPUT_UPDATES = ("exact", "word2vec")
OPTIMIZERS = ("sgd", "adagrad")
# word2vec's (and gensim's) noise distribution: ∝ training count ** this.
NOISE_EXPONENT = 0.75


@dataclasses.dataclass(frozen=True)
class CbowConfig:
  """Every setting of a CBOW training run (``cbow_training.train_cbow``), declared once.

  The trainers' flags are generated from these fields (``trainers/flagdefs.py``);
  ``core.config.check_config`` checks a config against their bounds; the checkpoint guard
  of ``train_cbow`` records the whole config, so a new setting is one field here plus its
  use. ``fused_*`` settings replace their plain counterparts when the fused op runs
  (0 or empty: the same), so a fallback to the pure-TF step keeps the settings tuned for
  it.
  """
  dim: int = field(64, "Embedding dimension.", lower=1)
  negatives: int = field(5, "Noise samples per target (word2vec's negative).", lower=1)
  shared_negatives: int = field(5, "Noise elements drawn per set (--noise_per_set; at "
                                "least the set's length) or per batch, shared by its "
                                "targets; each weighted negatives / the count drawn.",
                                lower=1)
  noise_per_set: bool = field(True, "Each set draws its own noise elements (one draw per "
                              "batch leaves rare elements almost never noise).")
  noise_per_target: bool = field(False, "Fused op: every target draws --negatives noise "
                                 "elements of its own (as word2vec) instead of sharing its "
                                 "set's --shared_negatives (the TF step then draws per set).")
  noise_exponent: float = field(NOISE_EXPONENT, "Noise distribution ∝ training count ** "
                                "this (word2vec's 0.75; lower ranks frequent elements "
                                "higher).", lower=0.0)
  epochs: int = field(5, "Passes over the sets.", lower=1)
  min_count: int = field(5, "Drop elements occurring in fewer sets.", lower=1)
  sample: float = field(1e-3, "Subsampling threshold (0 = off).", lower=0.0)
  learning_rate: float = field(0.07, "Initial learning rate, decayed linearly to "
                               "--min_learning_rate; the stable rate falls with corpus "
                               "size (a batch sums many gradients into a frequent row).",
                               lower=0.0)
  min_learning_rate: float = field(2e-5, "Final learning rate (linear decay).", lower=0.0)
  optimizer: str = field("sgd", "sgd (word2vec's plain SGD, applied in the train step on "
                         "one replica) or adagrad (per-coordinate; learning rate ~1).",
                         choices=OPTIMIZERS)
  input_update: str = field("exact", "Each context vector gets dh/(L-1) (exact, the "
                            "gradient of the mean) or the whole dh (word2vec, as gensim).",
                            choices=INPUT_UPDATES)
  kernel: str = field("auto", "Update path: the fused C++ epoch op (fused; built by `make "
                      "install`), the pure-TF step (tf), or fused when it loads and the "
                      "settings allow it (auto; a fallback is logged).",
                      choices=cbow_kernel.KERNELS)
  fused_learning_rate: float = field(0.0, "Initial learning rate when the fused op runs "
                                     "(0 = --learning_rate, which the TF step keeps).",
                                     lower=0.0)
  fused_input_update: str = field("", "Input update when the fused op runs (empty = "
                                  "--input_update, which the TF step keeps).",
                                  choices=("",) + INPUT_UPDATES)
  fused_tokens_per_batch: int = field(0, "Fused op: elements per batch of its epoch plan, "
                                      "which only orders the sets (smaller = finer mix of "
                                      "set lengths; 0 = --tokens_per_batch).", lower=0)
  tokens_per_batch: int = field(8192, "Elements per batch (rows × set length); also the "
                                "fixed row count of the step's matrix products.", lower=2)
  steps_per_execution: int = field(8, "Train steps per tf.function call under Keras fit "
                                   "(Adagrad or several replicas).", lower=1)
  max_len: int = field(64, "Longest set used (longer sets keep a random subset each "
                       "epoch).", lower=2)
  row_multiple: int = field(0, "Batch rows are a multiple of this (0: the replicas); a "
                            "one-process run with N sees the batches an N-worker run "
                            "splits.", lower=0)
  seed: int = field(0, "Seeds initialisation, batching and noise draws.")
  threads: int = field(2, "The fused op's Hogwild threads.", lower=1)

  def fused(self) -> "CbowConfig":
    """The settings the fused op trains with: ``fused_*`` values in place of their plain
    counterparts where set."""
    return dataclasses.replace(
        self, learning_rate=self.fused_learning_rate or self.learning_rate,
        input_update=self.fused_input_update or self.input_update,
        tokens_per_batch=self.fused_tokens_per_batch or self.tokens_per_batch)


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
      ``noise_per_set`` max(K, L) for sets of L elements (stateless draws keyed by
      ``seed`` and the step, so a resumed run draws the same), shared by the batch's or
      the set's targets.
    noise_per_set: one draw per set (a batched product) rather than per batch.
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
    config_lib.check_fields(CbowConfig, dim=dim, negatives=negatives,
                            shared_negatives=shared_negatives, seed=seed,
                            input_update=input_update, threads=threads)
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

  def _noise_weight(self, negl):
    """negatives / K, K = the noise elements drawn (``negl``'s last axis)."""
    return self.negatives / tf.cast(tf.shape(negl)[-1], tf.float32)

  def _loss(self, pos, negl):
    """Summed loss: −log σ(pos) − (negatives/K)·Σ log σ(−negl)."""
    return (tf.reduce_sum(tf.nn.softplus(-pos))
            + self._noise_weight(negl) * tf.reduce_sum(tf.nn.softplus(negl)))

  def loss_terms(self, ids, neg):
    """Summed negative-sampling loss and the number of targets (for tests / eval)."""
    forward = self._per_set_forward if neg.shape.rank == 2 else self._forward
    _, _, _, pos, negl, _ = forward(ids, neg)
    pos = tf.reshape(pos, [-1])                                       # [T]
    negl = tf.reshape(negl, [-1, tf.shape(negl)[-1]])[:tf.size(pos)]  # [T, K]
    return self._loss(pos, negl), tf.cast(tf.size(pos), tf.float32)

  def _error_factors(self, pos, negl, scale):
    """(σ(pos) − 1, w·σ(negl)) times ``scale``: the summed loss's derivatives by the
    positive and noise scores (any shapes), w = negatives / K (``_noise_weight``)."""
    return ((tf.sigmoid(pos) - 1.0) * scale,
            (self._noise_weight(negl) * scale) * tf.sigmoid(negl))

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
    reshapes and slices than the batch-shared form, so fewer ops to trace).

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
                            tf.reshape(pos, [-1]), tf.reshape(negl, [-1, tf.shape(neg)[1]]))

  def _slices(self, ids, neg, dv, du, dun):
    """(grad_input, (grad_output_targets, grad_output_noise)) as IndexedSlices."""
    flat = tf.reshape(ids, [-1])
    shape = tf.constant([self.vocab_size, self.dim])
    return (tf.IndexedSlices(dv, flat, shape),
            (tf.IndexedSlices(du, flat, shape),
             tf.IndexedSlices(dun, tf.reshape(neg, [-1]), shape)))

  # No tensor-dependent Python control flow here: AutoGraph's source rewrite is skipped
  # (less tracing time).
  @tf.autograph.experimental.do_not_convert
  def train_step(self, data):
    """One batch ``ids [B, L]``, or a whole epoch ``(flat ids [N], shapes [S, 2])``.

    The epoch form (``cbow_inputs.SetBatches.plan``; in-step SGD on one replica)
    runs its S batches in one ``tf.while_loop``: one call per epoch, no tf.data and no
    per-step Python.
    """
    if isinstance(data, (tuple, list)) and self._ops is not None:
      self._fused_epoch(*data)
    elif isinstance(data, (tuple, list)):   # SetBatches' batches: no checks needed
      flat, shapes = data
      offsets = cbow_inputs.plan_offsets(shapes)

      def body(i, total):
        batch = cbow_inputs.plan_batch(flat, offsets[i], shapes[i])
        return i + 1, total + self._train_batch(batch)

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
    # Per set: at least L (the set length) of them, so no noise row takes a push from
    # each of the set's L targets, all from nearly the same context, in one step
    # (with few shared rows long sets diverge or stall).
    draws = ([tf.shape(ids)[0], tf.maximum(self.shared_negatives, tf.shape(ids)[1])]
             if self.noise_per_set else [self.shared_negatives])
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


def noise_table(probabilities: np.ndarray, size: int) -> np.ndarray:
  """word2vec's noise table: int32 [size], element i in ~p_i of the slots (slot j holds
  the first i whose cumulative probability reaches the slot's centre (j + ½)/size), so
  a uniform slot is a draw. Built as V run lengths (one search per element, not per
  slot)."""
  cum = np.cumsum(np.asarray(probabilities, np.float64))
  slots = (np.arange(size) + 0.5) / size * cum[-1]
  ends = np.searchsorted(slots, cum, side="right")   # slots up to each cumulative value
  table = np.full(size, len(cum) - 1, np.int32)
  table[:ends[-1]] = np.repeat(np.arange(len(cum), dtype=np.int32), np.diff(ends, prepend=0))
  return table
