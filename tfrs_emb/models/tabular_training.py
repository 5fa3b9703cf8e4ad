"""Training loops of the tabular Transformer: pretraining (resumable), fine-tuning, inference.

Feature dicts: ``continuous`` float32 [N, C], ``categorical`` int32 [N, K] (see
``tfrs_emb.models.tabular``). Nothing here seeds global RNGs; data order is seeded per call.
"""

import contextlib
import pathlib
import time
from typing import Dict, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import distribute
from tfrs_emb.core.log import Log, no_log
from tfrs_emb.models.tabular import TabularClassifier, TabularEncoder, TabularPretrainer
from tfrs_emb.models.tabular_ensemble import TabularEnsembleClassifier

Features = Dict[str, np.ndarray]


def _scope(strategy: Optional[tf.distribute.Strategy]):
  return strategy.scope() if strategy is not None else contextlib.nullcontext()


def build_encoder(num_continuous: int, cardinalities: Sequence[int], *,
                  strategy: Optional[tf.distribute.Strategy] = None, **arch) -> TabularEncoder:
  """A built encoder (variables created); ``arch``: TabularEncoder's keyword arguments.

  With ``strategy`` the variables are created under ``strategy.scope()`` (mirrored), as
  ``pretrain(..., strategy=strategy)`` needs.
  """
  with _scope(strategy):
    enc = TabularEncoder(num_continuous=num_continuous, cardinalities=cardinalities, **arch)
    enc({"continuous": tf.zeros([2, num_continuous]),
         "categorical": tf.zeros([2, len(cardinalities)], tf.int32)})
  return enc


def pretrain(encoder: TabularEncoder, features: Features, *, epochs: int, batch_size: int,
             lr: float, seed: int, projection_dim: int = 128, mask_rate: float = 0.15,
             corruption_rate: float = 0.3, mfm_weight: float = 1.0,
             contrastive_weight: float = 1.0, jit_compile: bool = False, verbose: int = 0,
             log_dir: Optional[pathlib.Path] = None,
             checkpoint_dir: Optional[pathlib.Path] = None, resume: bool = False,
             callbacks: Sequence[tf.keras.callbacks.Callback] = (),
             strategy: Optional[tf.distribute.Strategy] = None,
             deadline: float = float("inf"), log: Log = no_log) -> TabularPretrainer:
  """Self-supervised pretraining of ``encoder`` on label-free rows; returns the pretrainer.

  Epoch e visits the rows in an order seeded by (seed, e). With ``checkpoint_dir`` the
  weights, optimizer state, the pretrainer's RNG and the epoch counter are saved after
  every epoch (``tf.train.CheckpointManager``, last one kept); ``resume`` restores the
  latest one and continues from its epoch, so an interrupted run that resumes ends with
  the weights an uninterrupted one would have (up to dropout, which draws from
  Keras's global generator).

  ``strategy`` (e.g. ``tf.distribute.MultiWorkerMirroredStrategy``; None = the default,
  single-replica path, unchanged): ``encoder`` must have been built under its scope
  (``build_encoder(..., strategy=strategy)``). Every worker passes the same ``features``;
  each global batch of ``batch_size`` rows is split between the replicas (DATA
  auto-shard), the gradients of the per-replica mean losses are averaged, so every
  worker applies the same update. Checkpoints: the chief writes ``checkpoint_dir``, every
  other worker ``checkpoint_dir.worker<i>`` (``distribute.output_path``), from which it
  also resumes.

  ``deadline`` (a ``time.monotonic`` value): after the first epoch, no epoch starts that
  would end after it if it lasted as long as the last one; ``epochs_run`` on the returned
  pretrainer counts the epochs done, ``epoch_seconds`` lists this call's epoch wall times.
  ``log`` gets one line per epoch.
  """
  with _scope(strategy):
    model = TabularPretrainer(encoder, projection_dim=projection_dim, mask_rate=mask_rate,
                              corruption_rate=corruption_rate, mfm_weight=mfm_weight,
                              contrastive_weight=contrastive_weight, seed=seed)
    model.compile(optimizer=tf.keras.optimizers.Adam(lr), jit_compile=jit_compile)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
  manager = None
  if checkpoint_dir:
    if strategy is not None:
      checkpoint_dir = distribute.output_path(checkpoint_dir, strategy)
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    manager = tf.train.CheckpointManager(ckpt, str(checkpoint_dir), max_to_keep=1)
    if resume and manager.latest_checkpoint:
      # Create every variable first (heads build on first call; optimizer slots on build),
      # so the restore fills them all; the RNG draws of this call are overwritten by it.
      with _scope(strategy):
        if strategy is None:
          model._pretrain_losses({k: v[:2] for k, v in features.items()}, training=False)  # pylint: disable=protected-access
        else:   # the RNG is mirrored: create the heads without drawing from it
          _build_heads(model)
        model.optimizer.build(model.trainable_variables)
      ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
  if strategy is not None:
    with strategy.scope():   # mirrored heads and optimizer slots before the first step
      _build_heads(model)
      model.optimizer.build(model.trainable_variables)
  callbacks = list(callbacks)
  if log_dir:
    callbacks.append(tf.keras.callbacks.TensorBoard(str(log_dir), update_freq="epoch"))
  n = len(features["continuous"])
  if n < batch_size:
    raise ValueError(f"pretraining needs at least batch_size={batch_size} rows, got {n}")
  first, last_seconds, model.epoch_seconds = int(epoch.numpy()), 0.0, []
  for e in range(first, epochs):
    if e > first and time.monotonic() + last_seconds > deadline:
      log(f"pretraining stopped after {e} of {epochs} epochs (time budget)")
      break
    started = time.monotonic()
    order = np.random.default_rng([seed, e]).permutation(n)
    ds = (tf.data.Dataset.from_tensor_slices({k: v[order] for k, v in features.items()})
          .batch(batch_size, drop_remainder=True).prefetch(2))
    if strategy is not None:
      # Every worker holds the same rows: split each global batch (not files) between them.
      opts = tf.data.Options()
      opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
      ds = ds.with_options(opts)
    model.fit(ds, initial_epoch=e, epochs=e + 1, verbose=verbose, callbacks=callbacks)
    epoch.assign(e + 1)
    if manager:
      manager.save(checkpoint_number=e + 1)
    last_seconds = time.monotonic() - started
    model.epoch_seconds.append(last_seconds)
    log(f"pretraining epoch {e + 1}/{epochs}: {last_seconds:.1f} s")
  model.epochs_run = int(epoch.numpy())
  return model


def _build_heads(model: TabularPretrainer) -> None:
  """Creates the pretrainer's lazily built head variables without drawing from its RNG."""
  d = model.encoder.dim
  shapes = [(model.projector, [None, d]),
            (model.predictor, [None, model.projector.layers[-1].units])]
  for layer, shape in shapes + [(head, [None, d]) for head in model.cat_heads]:
    if not layer.built:   # building a built layer again would make new variables
      layer.build(shape)


class TimeLimit(tf.keras.callbacks.Callback):
  """Stops training after the epoch at which another epoch as long as the last one would
  take the fit's epochs past ``seconds``.

  The first epoch also traces the train and validation steps (seconds on 2 cores, more
  than a whole small fit), so its length predicts nothing: it never stops training and
  counts as long as the latest epoch. Every fit thus runs at least two epochs.
  ``epoch_seconds`` lists every epoch's wall seconds (what the time budget measures).
  """

  def __init__(self, seconds: float):
    super().__init__()
    self.seconds = seconds
    self.epoch_started = self.first_ended = 0.0
    self.epoch_seconds = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch_started = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    now = time.monotonic()
    last = now - self.epoch_started
    self.epoch_seconds.append(last)
    if epoch == 0:
      self.first_ended = now
      return
    if (now - self.first_ended) + 2 * last > self.seconds:
      self.model.stop_training = True


def fit_classifier(encoder: TabularEncoder, num_classes: int, train: Features,
                   train_y: np.ndarray, val: Features, val_y: np.ndarray, *, lr: float,
                   encoder_lr_multiplier: float, epochs: int, batch_size: int, patience: int,
                   seed: int, dropout: float = 0.1, min_steps_per_epoch: int = 0,
                   probe_epochs: int = 0, ensemble_k: int = 1, jit_compile: bool = False,
                   verbose: int = 0, log_dir: Optional[pathlib.Path] = None,
                   time_limit: float = float("inf")) -> TabularClassifier:
  """Fits encoder + head with early stopping on validation accuracy (best weights kept).

  ``ensemble_k`` > 1: a ``TabularEnsembleClassifier`` (TabM-mini, that many members sharing
  the encoder, trained together on each batch; validation accuracy is the ensemble's).

  ``min_steps_per_epoch`` repeats a small labelled set so that one epoch has at least that
  many steps (early stopping then sees comparable amounts of training per epoch).
  ``probe_epochs``: first train the head alone on the frozen encoder for that many epochs
  (linear probing, then fine-tuning: LP-FT, Kumar et al. 2022), so the encoder's first
  updates follow a fitted head instead of a random one. ``time_limit``: seconds after
  which no further epoch starts (``TimeLimit``; the best weights are still restored).
  ``clf.history.history["epoch_seconds"]``: each fine-tuning epoch's wall seconds.
  """
  if ensemble_k > 1:
    clf = TabularEnsembleClassifier(encoder, num_classes=num_classes, dropout=dropout,
                                    encoder_lr_multiplier=encoder_lr_multiplier,
                                    ensemble_k=ensemble_k)
  else:
    clf = TabularClassifier(encoder, num_classes=num_classes, dropout=dropout,
                            encoder_lr_multiplier=encoder_lr_multiplier)

  def compile_():
    clf.compile(optimizer=tf.keras.optimizers.Adam(lr),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                jit_compile=jit_compile)
  n = len(train_y)
  steps = max(1, n // batch_size)
  repeats = max(1, -(-min_steps_per_epoch // steps)) if min_steps_per_epoch else 1
  ds = (tf.data.Dataset.from_tensor_slices((train, train_y)).repeat(repeats)
        .shuffle(n * repeats, seed=seed).batch(batch_size).prefetch(2))
  val_ds = tf.data.Dataset.from_tensor_slices((val, val_y)).batch(2048)
  if probe_epochs:
    encoder.trainable = False
    compile_()
    clf.fit(ds, epochs=probe_epochs, verbose=verbose)
    encoder.trainable = True
  compile_()
  limit = TimeLimit(time_limit)
  callbacks = [tf.keras.callbacks.EarlyStopping("val_accuracy", patience=patience, mode="max",
                                                restore_best_weights=True), limit]
  if log_dir:
    callbacks.append(tf.keras.callbacks.TensorBoard(str(log_dir), update_freq="epoch"))
  history = clf.fit(ds, validation_data=val_ds, epochs=epochs, verbose=verbose,
                    callbacks=callbacks)
  history.history["epoch_seconds"] = limit.epoch_seconds
  return clf


def embed(model: "TabularEncoder | TabularClassifier", features: Features,
          batch_size: int = 2048) -> np.ndarray:
  """Row embeddings float32 [N, d] in inference mode: an encoder's [CLS], or the
  embedding a classifier's head reads (``TabularClassifier.embed``)."""
  fn = tf.function(lambda x: model.embed(x, training=False))
  out = [fn({k: v[s:s + batch_size] for k, v in features.items()}).numpy()
         for s in range(0, len(features["continuous"]), batch_size)]
  return np.concatenate(out)


def predict_proba(clf: TabularClassifier, features: Features) -> np.ndarray:
  """Class probabilities float32 [N, num_classes] in inference mode."""
  ds = tf.data.Dataset.from_tensor_slices(features).batch(2048)
  return tf.nn.softmax(clf.predict(ds, verbose=0)).numpy()
