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
whole set, up to ``max_len`` elements). For a padded batch of sets ``ids [B, L]`` the
contexts of all targets come from one sum: ``h_j = (Σ_i v_i − v_j) / (n − 1)``, so a batch
costs O(B·L·d) instead of O(B·L²·d) and no (target, context) pairs are materialised.

Loss: negative sampling. ``shared_negatives`` (K) noise elements are drawn per batch from
the unigram^0.75 distribution and scored against every target in one matmul
``[B·L, d] × [d, K]``; each noise term is weighted ``negatives / K`` so the gradient has
the expectation of word2vec's ``negatives`` independent noise samples per target, with
lower variance. (Sampled softmax would need a per-example log-Q correction and a dense
[B·L, K] softmax; negative sampling is what gensim uses, which keeps the comparison
like-for-like.) Frequent elements are subsampled with word2vec's formula (``sample``),
elements rarer than ``min_count`` are dropped.

Optimisation: summed loss, analytic gradients as IndexedSlices (only the touched rows),
applied by a Keras optimizer (so tf.distribute aggregates them), with a linearly
decaying rate. Default: plain SGD as word2vec, but with a smaller rate (0.008): a batch
applies the *sum* of thousands of per-target gradients to a frequent element's row at
once; at word2vec's 0.025 with 64 shared negatives and 16k-slot batches the loss
diverged (4 → 15,000 in 3 epochs). Adagrad (lr ~1) is the stable alternative; it scores
higher on class agreement and lower on rank_dice (see BUILD_NOTES.md, JADER CBOW).
``jit_compile`` (XLA) is optional (no gain measured on the loaded 2-core machine). The input pipeline (length buckets, padding, shuffling)
is numpy in a ``tf.data`` generator with prefetch, off the training step.
"""

import dataclasses
import math
import pathlib
import time
from typing import Iterator, List, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

_BUCKETS = (4, 6, 8, 11, 14, 18, 24, 32, 48, 64, 96, 128)


class CBOW(tf.keras.Model):
  """CBOW over padded sets with shared negative sampling.

  Inputs are int32 ``[batch, max_set_len]`` element ids, padded with -1.
  ``call`` returns the mean input embedding of each set ``[batch, dim]``; ``train_step``
  runs one negative-sampling SGD step.
  """

  _TABLE_SIZE = 1 << 20

  def __init__(self, vocab_size: int, dim: int = 64, negatives: int = 5,
               shared_negatives: int = 32, noise_distribution: Optional[np.ndarray] = None,
               keep_probability: Optional[np.ndarray] = None, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size = int(vocab_size)
    self.dim = int(dim)
    self.negatives = int(negatives)
    self.shared_negatives = int(shared_negatives)
    self.seed = int(seed)
    if noise_distribution is None:
      noise_distribution = np.full(vocab_size, 1.0 / vocab_size)
    if keep_probability is None:
      keep_probability = np.ones(vocab_size)
    # word2vec's noise table: element i fills ~p_i of the slots; a uniform slot = a draw.
    cum = np.cumsum(np.asarray(noise_distribution, np.float64))
    slots = (np.arange(self._TABLE_SIZE) + 0.5) / self._TABLE_SIZE * cum[-1]
    self._noise_table = tf.constant(
        np.minimum(np.searchsorted(cum, slots), vocab_size - 1).astype(np.int32))
    self._keep = tf.constant(keep_probability, tf.float32)
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

  def _forward(self, safe, maskf, neg):
    """Shared forward pass. Returns (h, u, un, pos, negl, target, inv)."""
    n = tf.reduce_sum(maskf, 1, keepdims=True)                      # [B, 1]
    target = maskf * tf.cast(n > 1.0, tf.float32)                   # [B, L]
    inv = (1.0 / tf.maximum(n - 1.0, 1.0))[..., None]               # [B, 1, 1]
    v = tf.gather(self.input_embeddings, safe) * maskf[..., None]   # [B, L, d]
    h = (tf.reduce_sum(v, 1, keepdims=True) - v) * inv              # [B, L, d] context mean
    u = tf.gather(self.output_embeddings, safe)                     # [B, L, d]
    un = tf.gather(self.output_embeddings, neg)                     # [K, d]
    pos = tf.reduce_sum(h * u, -1)                                  # [B, L]
    negl = tf.einsum("bld,kd->blk", h, un)                          # [B, L, K]
    return h, u, un, pos, negl, target, inv

  def loss_terms(self, safe, maskf, neg):
    """Summed negative-sampling loss and the number of targets (for tests / eval)."""
    _, _, _, pos, negl, target, _ = self._forward(safe, maskf, neg)
    per = -(tf.math.log_sigmoid(pos) + (self.negatives / self.shared_negatives)
            * tf.reduce_sum(tf.math.log_sigmoid(-negl), -1))
    return tf.reduce_sum(per * target), tf.reduce_sum(target)

  def gradients(self, safe, maskf, neg):
    """Analytic gradients of ``loss_terms`` as IndexedSlices (no tape, no dense rows).

    Args:
      safe: int32 [B, L] element ids (padding replaced by 0).
      maskf: float32 [B, L], 1 where the slot holds a (kept) element.
      neg: int32 [K] shared noise elements.

    Returns:
      (loss_sum, num_targets, grad_input IndexedSlices, grad_output IndexedSlices).
    """
    d = self.dim
    h, u, un, pos, negl, target, inv = self._forward(safe, maskf, neg)
    w = self.negatives / self.shared_negatives
    loss = -tf.reduce_sum((tf.math.log_sigmoid(pos) + w * tf.reduce_sum(
        tf.math.log_sigmoid(-negl), -1)) * target)
    gp = (tf.sigmoid(pos) - 1.0) * target                           # [B, L]
    gn = w * tf.sigmoid(negl) * target[..., None]                   # [B, L, K]
    dh = gp[..., None] * u + tf.einsum("blk,kd->bld", gn, un)       # [B, L, d]
    dv = (tf.reduce_sum(dh, 1, keepdims=True) - dh) * inv * maskf[..., None]
    du = gp[..., None] * h                                          # [B, L, d]
    dun = tf.einsum("blk,bld->kd", gn, h)                           # [K, d]
    flat = tf.reshape(safe, [-1])
    g_in = tf.IndexedSlices(tf.reshape(dv, [-1, d]), flat, tf.constant([self.vocab_size, d]))
    g_out = tf.IndexedSlices(tf.concat([tf.reshape(du, [-1, d]), dun], 0),
                             tf.concat([flat, neg], 0), tf.constant([self.vocab_size, d]))
    return loss, tf.reduce_sum(target), g_in, g_out

  def train_step(self, ids):
    ids = tf.cast(ids, tf.int32)
    safe = tf.maximum(ids, 0)
    mask = (ids >= 0) & (tf.random.uniform(tf.shape(ids)) < tf.gather(self._keep, safe))
    maskf = tf.cast(mask, tf.float32)
    neg = tf.gather(self._noise_table, tf.random.uniform(
        [self.shared_negatives], 0, self._noise_table.shape[0], dtype=tf.int32))
    loss, count, g_in, g_out = self.gradients(safe, maskf, neg)
    self.optimizer.apply_gradients([(g_in, self.input_embeddings),
                                    (g_out, self.output_embeddings)])
    self.loss_tracker.update_state(loss / tf.maximum(count, 1.0))
    return {"loss": self.loss_tracker.result()}

  def get_config(self):
    return {"vocab_size": self.vocab_size, "dim": self.dim, "negatives": self.negatives,
            "shared_negatives": self.shared_negatives, "seed": self.seed}


class SetBatches:
  """Length-bucketed, padded batches of sets for ``tf.data`` (numpy, off the step).

  Sets are grouped into buckets of padded width (4, 6, 8, 11, ...), so padding stays
  small and XLA sees only a handful of shapes. Every batch of a bucket has the same number
  of rows (``tokens_per_batch // width``, a multiple of ``row_multiple``); the last batch
  of a bucket is padded with empty rows. Order of sets and batches is reshuffled each
  epoch.
  """

  def __init__(self, indptr: np.ndarray, indices: np.ndarray, tokens_per_batch: int = 16384,
               max_len: int = 64, seed: int = 0, row_multiple: int = 8):
    rng = np.random.default_rng(seed)
    lengths = np.diff(indptr)
    keep = lengths >= 2
    widths = [w for w in _BUCKETS if w < max_len] + [max_len]
    self.buckets = []
    for lo, w in zip([0] + widths[:-1], widths):
      sel = np.nonzero(keep & (lengths > lo) & ((lengths <= w) | (w == max_len)))[0]
      if not len(sel):
        continue
      mat = np.full((len(sel), w), -1, np.int32)
      take = np.minimum(lengths[sel], w)
      row = np.repeat(np.arange(len(sel)), take)
      col = np.arange(len(row)) - np.repeat(np.cumsum(take) - take, take)
      mat[row, col] = indices[indptr[sel][row] + col]
      for r in np.nonzero(lengths[sel] > w)[0]:   # rare: keep a random subset
        c = sel[r]
        mat[r] = rng.choice(indices[indptr[c]:indptr[c + 1]], w, replace=False)
      rows = max(row_multiple, (tokens_per_batch // w) // row_multiple * row_multiple)
      self.buckets.append((mat, rows))
    self.steps_per_epoch = sum(math.ceil(len(m) / r) for m, r in self.buckets)
    self.num_sets = int(keep.sum())
    self._rng = rng

  def epoch(self) -> Iterator[np.ndarray]:
    """One epoch of int32 [rows, width] batches in random order."""
    plan = []
    for b, (mat, rows) in enumerate(self.buckets):
      perm = self._rng.permutation(len(mat))
      plan.extend((b, perm[i:i + rows]) for i in range(0, len(mat), rows))
    for j in self._rng.permutation(len(plan)):
      b, idx = plan[j]
      mat, rows = self.buckets[b]
      out = mat[idx]
      if len(out) < rows:
        out = np.concatenate([out, np.full((rows - len(out), mat.shape[1]), -1, np.int32)])
      yield out

  def dataset(self, epochs: int) -> tf.data.Dataset:
    def gen():
      for _ in range(epochs):
        yield from self.epoch()
    ds = tf.data.Dataset.from_generator(
        gen, output_signature=tf.TensorSpec([None, None], tf.int32))
    return ds.prefetch(16)


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
    source_ids: int [len(vocab)] id of each vocab entry in the caller's vocabulary.
    train_seconds: whole training wall time (vocabulary, batching, model build, XLA
      compilation and fit).
    tokens: corpus element occurrences × epochs (before min-count / subsampling, as gensim
      counts raw words).
    tokens_per_s: tokens / train_seconds.
    history: Keras History.history.
    model: the trained CBOW model.
    replicas: replicas in sync under the strategy used.
  """
  vocab: List[str]
  counts: np.ndarray
  vectors: np.ndarray
  source_ids: np.ndarray
  train_seconds: float
  tokens: int
  tokens_per_s: float
  history: dict
  model: CBOW
  replicas: int = 1


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
  """default | mirrored (all local devices) | multi_worker (cluster from TF_CONFIG)."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy must be default, mirrored or multi_worker, got {name!r}")


def train_cbow(indptr: np.ndarray, indices: np.ndarray, vocab: Sequence[str], dim: int = 64,
               negatives: int = 5, shared_negatives: int = 32, epochs: int = 5,
               min_count: int = 5, sample: float = 1e-3, learning_rate: float = 0.008,
               min_learning_rate: float = 2e-5, tokens_per_batch: int = 8192,
               optimizer: str = "sgd",
               max_len: int = 64, seed: int = 0, strategy: str = "default",
               log_dir: Optional[str] = None, verbose: int = 1,
               jit_compile: Optional[bool] = None, steps_per_execution: int = 1,
               callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> CbowResult:
  """Trains CBOW on sets given in CSR form.

  Args:
    indptr: int [num_sets + 1]; set i is ``indices[indptr[i]:indptr[i+1]]``.
    indices: int [total] element ids into ``vocab`` (unique within a set).
    vocab: element strings.
    dim: embedding size.
    negatives: noise samples per target (word2vec's ``negative``).
    shared_negatives: noise elements drawn per batch and shared by all its targets.
    epochs: passes over the sets.
    min_count: drop elements occurring in fewer sets.
    sample: subsampling threshold (0 disables).
    learning_rate, min_learning_rate: step size, decayed linearly over training.
    optimizer: "sgd" (word2vec's plain SGD on the summed loss, sparse row updates) or
      "adagrad" (per-coordinate accumulators; use learning_rate ~1.0).
    tokens_per_batch: padded slots per batch (rows × width).
    max_len: longest set used (longer sets keep a random subset).
    seed: seeds initialisation, batching, sampling.
    strategy: "default", "mirrored" or "multi_worker" (TF_CONFIG).
    log_dir: TensorBoard log folder (None: no TensorBoard callback).
    verbose: Keras fit verbosity (1 = progress bar).
    jit_compile: XLA; default off (no gain measured on 2 loaded cores).
    steps_per_execution: train steps per tf.function call (less Python per step).
    callbacks: extra Keras callbacks.

  Returns:
    CbowResult.
  """
  t0 = time.perf_counter()
  tf.random.set_seed(seed)
  indptr = np.asarray(indptr, np.int64)
  indices = np.asarray(indices, np.int64)
  counts = np.bincount(indices, minlength=len(vocab))
  kept = np.nonzero(counts >= min_count)[0]
  kept = kept[np.argsort(-counts[kept], kind="stable")]
  remap = np.full(len(vocab), -1, np.int64)
  remap[kept] = np.arange(len(kept))
  new = remap[indices]
  valid = new >= 0
  lengths = np.add.reduceat(valid.astype(np.int64), indptr[:-1]) if len(indices) else \
      np.zeros(len(indptr) - 1, np.int64)
  lengths[np.diff(indptr) == 0] = 0
  new_indptr = np.zeros_like(indptr)
  np.cumsum(lengths, out=new_indptr[1:])
  new_indices = new[valid]
  kcounts = counts[kept]
  if len(kept) < 2:
    raise ValueError(f"only {len(kept)} elements occur in >= {min_count} sets; lower "
                     "min_count or give more data")
  strat = make_strategy(strategy)
  replicas = strat.num_replicas_in_sync
  if verbose:
    print(f"CBOW: {type(strat).__name__} with {replicas} replica(s); {len(kept):,d} elements "
          f"(min_count {min_count}) of {len(vocab):,d}")
  batches = SetBatches(new_indptr, new_indices, tokens_per_batch=tokens_per_batch,
                       max_len=max_len, seed=seed, row_multiple=8 * replicas)
  noise = kcounts.astype(np.float64) ** 0.75
  noise /= noise.sum()
  total_steps = batches.steps_per_epoch * epochs
  if jit_compile is None:
    jit_compile = False
  with strat.scope():
    model = CBOW(len(kept), dim=dim, negatives=negatives, shared_negatives=shared_negatives,
                 noise_distribution=noise, keep_probability=keep_probabilities(kcounts, sample),
                 seed=seed)
    schedule = tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, max(total_steps, 1), min_learning_rate)
    if optimizer == "adagrad":
      opt = tf.keras.optimizers.Adagrad(schedule, initial_accumulator_value=0.1)
    elif optimizer == "sgd":
      opt = tf.keras.optimizers.SGD(schedule)
    else:
      raise ValueError(f"optimizer must be adagrad or sgd, got {optimizer!r}")
    model.compile(optimizer=opt, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
  cbs = list(callbacks)
  if log_dir:
    cbs.append(tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch",
                                              profile_batch=0, write_graph=False))
  ds = batches.dataset(epochs)
  if strategy != "default":
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(opts)
  hist = model.fit(ds, epochs=epochs, steps_per_epoch=batches.steps_per_epoch,
                   verbose=verbose, callbacks=cbs)
  vectors = model.input_embeddings.numpy()
  seconds = time.perf_counter() - t0
  tokens = int(len(indices)) * epochs
  return CbowResult(vocab=[vocab[i] for i in kept], counts=kcounts, vectors=vectors,
                    source_ids=kept, train_seconds=seconds, tokens=tokens,
                    tokens_per_s=tokens / seconds, history=dict(hist.history), model=model,
                    replicas=replicas)


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
