"""Training the Keras CBOW (``cbow.CBOW``) on sets given in CSR form, from one config.

Usage::

  from tfrs_emb.models import cbow_training
  config = cbow_training.CbowConfig(dim=64, epochs=5)
  result = cbow_training.train_cbow(cases.indptr, cases.indices, cases.vocab, config)
  result.vocab          # training vocabulary (min-count kept), most frequent first
  result.vectors        # float32 [len(result.vocab), dim] element (input) embeddings
  result.tokens_per_s   # corpus tokens × epochs / whole training seconds

``train_cbow`` runs these steps: the training vocabulary (``min_count``, most frequent
first) and the noise distribution; the update path (the fused ``cbow_kernel`` op or the
pure-TF step, ``kernel``) and the settings it trains with (``CbowConfig.fused``); the
epoch batches (``cbow_inputs.SetBatches``); the model and optimizer under the
tf.distribute strategy; resuming from ``checkpoint_dir``; training (in-step SGD on one
replica: one traced call per epoch, ``_train_whole_epochs``; otherwise Keras ``fit`` on
the batches' tf.data pipeline); and a divergence check.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import math
import pathlib
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import config as config_lib
from tfrs_emb.core import distribute
from tfrs_emb.core.log import Log, no_log
from tfrs_emb.models import cbow
from tfrs_emb.models import cbow_inputs
from tfrs_emb.models import cbow_kernel
from tfrs_emb.models.cbow import CbowConfig  # noqa: F401  (train_cbow's config, re-exported)


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
    train_seconds: whole training wall time (vocabulary, batching, model build, tracing
      and training).
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
  model: cbow.CBOW
  replicas: int = 1
  kernel: str = "tf"


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
  """Restores the latest checkpoint of ``directory``, made with the same ``settings``
  (recorded in its settings.json).

  Returns:
    The number of epochs already trained (0 for a fresh directory).

  Raises:
    ValueError: the directory holds a run of other settings; names the differing keys.
  """
  directory.mkdir(parents=True, exist_ok=True)
  record = directory / "settings.json"
  if record.exists():
    differing = _differing_keys(json.loads(record.read_text()), settings)
    if differing:
      raise ValueError(f"{directory} holds a CBOW checkpoint of other settings (differing: "
                       f"{', '.join(differing)}); use another checkpoint_dir")
  record.write_text(json.dumps(settings, sort_keys=True))
  latest = tf.train.latest_checkpoint(str(directory))
  if latest is None:
    return 0
  checkpoint.restore(latest).assert_existing_objects_matched()
  log(f"CBOW: resumed from {latest} after epoch {int(checkpoint.epoch.numpy())}")
  return int(checkpoint.epoch.numpy())


def _differing_keys(old: Any, new: Any, prefix: str = "") -> List[str]:
  """Dotted keys whose values differ between two settings records (a key in only one of
  them counts as differing)."""
  if not (isinstance(old, dict) and isinstance(new, dict)):
    return [] if old == new else [prefix or "(record)"]
  out = []
  for key in sorted(set(old) | set(new)):
    name = f"{prefix}.{key}" if prefix else key
    if key not in old or key not in new:
      out.append(name)
    else:
      out += _differing_keys(old[key], new[key], name)
  return out


def _train_whole_epochs(model: cbow.CBOW, batches: cbow_inputs.SetBatches, first_epoch: int,
                        callbacks: Sequence[tf.keras.callbacks.Callback],
                        verbose: int) -> dict:
  """``fit`` for in-step SGD on one replica: one traced call per epoch (no tf.data, no
  Keras train function), with the Keras callback protocol (one batch per epoch).

  The first call traces ``CBOW.train_step`` once (fixed input signature) and every epoch
  reuses it, without ``fit``'s train function, data handler and iterator. The next epoch
  is planned (numpy, ``SetBatches.plan``) on a thread while the current one trains.

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


@dataclasses.dataclass
class _Vocabulary:
  """The training vocabulary and the corpus in its ids.

  Attributes:
    kept: int [V] caller's ids of the elements in >= min_count sets, most frequent first.
    counts: int [V] number of sets of each kept element.
    indptr, indices: the sets in CSR form over kept ids (other elements dropped).
  """
  kept: np.ndarray
  counts: np.ndarray
  indptr: np.ndarray
  indices: np.ndarray

  def noise(self, exponent: float) -> np.ndarray:
    """float64 [V] noise distribution ∝ count ** exponent."""
    noise = self.counts.astype(np.float64) ** exponent
    return noise / noise.sum()

  def digest(self) -> str:
    """SHA-1 of the training corpus (the checkpoint guard's data key)."""
    return hashlib.sha1(self.indptr.tobytes() + self.indices.tobytes()).hexdigest()


def _training_vocabulary(indptr: np.ndarray, indices: np.ndarray, vocab_size: int,
                         min_count: int) -> _Vocabulary:
  """Keeps the elements of >= ``min_count`` sets, most frequent first (ties by id).

  Raises:
    ValueError: fewer than two elements are kept.
  """
  counts = np.bincount(indices, minlength=vocab_size)
  kept = np.nonzero(counts >= min_count)[0]
  kept = kept[np.argsort(-counts[kept], kind="stable")]
  if len(kept) < 2:
    raise ValueError(f"only {len(kept)} elements occur in >= {min_count} sets; lower "
                     "min_count or give more data")
  remap = np.full(vocab_size, -1, np.int64)
  remap[kept] = np.arange(len(kept))
  new = remap[indices]
  new_indptr, new_indices = cbow_inputs.filter_sets(indptr, new, new >= 0)
  return _Vocabulary(kept, counts[kept], new_indptr, new_indices)


def _update_path(config: CbowConfig, whole_epochs: bool,
                 log: Log) -> Tuple[str, CbowConfig]:
  """The update path that runs ("fused" or "tf", ``cbow_kernel.resolve``) and the
  settings it trains with (``CbowConfig.fused`` for the fused op; per-target noise only
  there)."""
  choice = cbow_kernel.resolve(
      config.kernel, supported=whole_epochs and (
          config.noise_per_set or config.noise_per_target),
      why_not="Adagrad, several replicas or per-batch noise")
  if choice.reason:
    log(f"CBOW: fused kernel not used ({choice.reason}); training with the pure-TF step"
        + (f" (noise per {'set' if config.noise_per_set else 'batch'}, not per target)"
           if config.noise_per_target else ""))
  if choice.path == "fused":
    return choice.path, config.fused()
  return choice.path, dataclasses.replace(config, noise_per_target=False)


def _build_model(settings: CbowConfig, vocabulary: _Vocabulary, kernel: str,
                 total_steps: int, whole_epochs: bool,
                 strategy: tf.distribute.Strategy) -> Tuple[cbow.CBOW, tf.train.Checkpoint]:
  """The compiled model (in-step SGD when ``whole_epochs``, else the Keras optimizer) and
  a checkpoint of its weights, optimizer and epoch, under ``strategy``'s scope."""
  with strategy.scope():
    schedule = tf.keras.optimizers.schedules.PolynomialDecay(
        settings.learning_rate, max(total_steps, 1), settings.min_learning_rate)
    model = cbow.CBOW(len(vocabulary.kept), dim=settings.dim, negatives=settings.negatives,
                      shared_negatives=settings.shared_negatives,
                      noise_distribution=vocabulary.noise(settings.noise_exponent),
                      seed=settings.seed, matmul_rows=settings.tokens_per_batch,
                      noise_per_set=settings.noise_per_set,
                      input_update=settings.input_update,
                      sgd_schedule=schedule if whole_epochs else None,
                      update_kernel=kernel, threads=settings.threads,
                      noise_per_target=settings.noise_per_target)
    if settings.optimizer == "adagrad":
      opt = tf.keras.optimizers.Adagrad(schedule, initial_accumulator_value=0.1)
    else:
      opt = tf.keras.optimizers.SGD(schedule)
    # No XLA: batch shapes vary with set length, and each shape would compile anew.
    model.compile(optimizer=opt, steps_per_execution=settings.steps_per_execution)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=opt,
                                     epoch=tf.Variable(0, dtype=tf.int64, trainable=False))
  return model, checkpoint


def _fit(model: cbow.CBOW, batches: cbow_inputs.SetBatches, first_epoch: int,
         callbacks: Sequence[tf.keras.callbacks.Callback], verbose: int,
         whole_epochs: bool, shard: bool) -> dict:
  """Trains epochs ``first_epoch`` … and returns the History dict: one traced call per
  epoch (``whole_epochs``), else Keras ``fit`` on the tf.data batches (sharded by data
  across workers when ``shard``)."""
  if whole_epochs:
    return _train_whole_epochs(model, batches, first_epoch, callbacks, verbose)
  ds = batches.dataset(first_epoch)
  if shard:
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    ds = ds.with_options(opts)
  return model.fit(ds, epochs=batches.epochs, initial_epoch=first_epoch,
                   steps_per_epoch=batches.steps_per_epoch, verbose=verbose,
                   callbacks=list(callbacks)).history


def _user_callbacks(callbacks: Sequence[tf.keras.callbacks.Callback],
                    log_dir: Optional[str], strategy: tf.distribute.Strategy) -> list:
  """The caller's callbacks, then TensorBoard into ``log_dir`` (this worker's path) when
  given."""
  out = list(callbacks)
  if log_dir:
    out.append(tf.keras.callbacks.TensorBoard(
        log_dir=str(distribute.output_path(log_dir, strategy)), update_freq="epoch",
        profile_batch=0, write_graph=False))
  return out


def _check_converged(model: cbow.CBOW, losses: Sequence[float], settings: CbowConfig):
  """Raises FloatingPointError when a loss or an embedding is not finite, or a loss is
  far above the starting loss (all scores start at 0 from the zero output vectors: the
  first loss is ~(1 + negatives)·ln 2)."""
  if (not np.isfinite(model.input_embeddings.numpy()).all()
      or not np.isfinite(losses).all()
      or np.max(losses, initial=0.0) > 10 * (1 + settings.negatives) * math.log(2)):
    raise FloatingPointError(
        f"CBOW training diverged (loss per epoch: {list(losses)}); lower learning_rate "
        f"({settings.learning_rate}) or tokens_per_batch ({settings.tokens_per_batch}): a "
        "batch applies the sum of its targets' gradients to each element row")


def train_cbow(indptr: np.ndarray, indices: np.ndarray, vocab: Sequence[str],
               config: CbowConfig, *, strategy: str = "default",
               log_dir: Optional[str] = None, checkpoint_dir: Optional[str] = None,
               callbacks: Sequence[tf.keras.callbacks.Callback] = (), verbose: int = 0,
               log: Log = no_log) -> CbowResult:
  """Trains CBOW on sets given in CSR form.

  Args:
    indptr: int [num_sets + 1]; set i is ``indices[indptr[i]:indptr[i+1]]``.
    indices: int [total] element ids into ``vocab`` (unique within a set).
    vocab: element strings.
    config: every training setting (``CbowConfig``; checked first).
    strategy: one of ``core.distribute.STRATEGIES`` (multi_worker reads TF_CONFIG).
    log_dir: TensorBoard log folder (None: no TensorBoard callback).
    checkpoint_dir: when given, a checkpoint is written there after every epoch, and a
      run that finds one (from an interrupted run with the same data, config, replicas
      and update path) resumes after its last finished epoch, giving the uninterrupted
      run's result; train_seconds then counts only the resumed part. Under multi_worker,
      workers other than the chief use ``checkpoint_dir.worker<i>`` (as for ``log_dir``),
      so no two processes write one file.
    callbacks: extra Keras callbacks.
    verbose: Keras fit verbosity (0 silent, 1 progress bar, 2 a line per epoch).
    log: progress messages (default: none).

  Returns:
    CbowResult.

  Raises:
    FloatingPointError: training diverged (non-finite loss or embeddings).
    ValueError: a setting outside its bounds, too few elements, an unknown strategy, or
      a checkpoint_dir holding a run of other settings (naming the differing keys).
    cbow_kernel.KernelUnavailable: ``kernel="fused"`` and the op cannot run.
  """
  config_lib.check_config(config)
  t0 = time.perf_counter()
  indices = np.asarray(indices, np.int64)
  vocabulary = _training_vocabulary(np.asarray(indptr, np.int64), indices, len(vocab),
                                    config.min_count)
  strat = distribute.make_strategy(strategy)
  replicas = strat.num_replicas_in_sync
  log(f"CBOW: {type(strat).__name__} with {replicas} replica(s); "
      f"{len(vocabulary.kept):,d} elements (min_count {config.min_count}) of {len(vocab):,d}")
  # In-step SGD on one replica trains a whole epoch per call (_train_whole_epochs).
  whole_epochs = config.optimizer == "sgd" and replicas == 1
  kernel, settings = _update_path(config, whole_epochs, log)
  batches = cbow_inputs.SetBatches(
      vocabulary.indptr, vocabulary.indices, keep_probability=cbow_inputs.keep_probabilities(
          vocabulary.counts, settings.sample), epochs=settings.epochs,
      tokens_per_batch=settings.tokens_per_batch, max_len=settings.max_len,
      seed=settings.seed, row_multiple=settings.row_multiple or replicas)
  log(f"CBOW: {kernel} update, learning_rate {settings.learning_rate}, input_update "
      f"{settings.input_update}, batches of {settings.tokens_per_batch} tokens")
  model, checkpoint = _build_model(settings, vocabulary, kernel,
                                   batches.steps_per_epoch * settings.epochs, whole_epochs,
                                   strat)
  first_epoch = 0
  cbs = [tf.keras.callbacks.TerminateOnNaN()]
  if checkpoint_dir:
    record = {"config": config_lib.config_dict(config), "data": vocabulary.digest(),
              "replicas": replicas, "kernel": kernel}
    checkpoint_dir = str(distribute.output_path(checkpoint_dir, strat))
    first_epoch = _resume(checkpoint, pathlib.Path(checkpoint_dir), record, log)
    cbs.append(_EpochCheckpoint(checkpoint, checkpoint_dir))   # before any user callback
  cbs += _user_callbacks(callbacks, log_dir, strat)
  history = _fit(model, batches, first_epoch, cbs, verbose, whole_epochs,
                 shard=strategy != "default")
  _check_converged(model, history.get("loss", []), settings)
  seconds = time.perf_counter() - t0
  tokens = int(len(indices)) * (settings.epochs - first_epoch)
  return CbowResult(vocab=[vocab[i] for i in vocabulary.kept], counts=vocabulary.counts,
                    vectors=model.input_embeddings.numpy(),
                    output_vectors=model.output_embeddings.numpy(),
                    source_ids=vocabulary.kept, train_seconds=seconds, tokens=tokens,
                    tokens_per_s=tokens / seconds, history=dict(history), model=model,
                    replicas=replicas, kernel=kernel)
