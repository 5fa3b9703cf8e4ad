"""Tabular training loops: interrupted pretraining resumes to the uninterrupted result."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models import tabular_training as training


class _Interrupt(tf.keras.callbacks.Callback):
  """Raises in the middle of epoch ``epoch`` (a crash after earlier checkpoints)."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_begin(self, epoch, logs=None):
    self.current = epoch

  def on_train_batch_end(self, batch, logs=None):
    if self.current == self.epoch and batch == 1:
      raise KeyboardInterrupt("simulated interruption")


class _Epochs(tf.keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append(epoch)


def _features(n=256):
  rng = np.random.default_rng(0)
  cont = rng.normal(size=(n, 3)).astype(np.float32)
  cont[rng.random((n, 3)) < 0.1] = np.nan  # missing values take part too
  return {"continuous": cont,
          "categorical": rng.integers(0, 5, (n, 2)).astype(np.int32)}


def _pretrain(features, epochs, checkpoint_dir, resume=False, callbacks=()):
  tf.keras.utils.set_random_seed(0)  # same initial weights in every call of this test
  enc = training.build_encoder(3, (5, 5), dim=8, num_heads=2, num_layers=1, dropout=0.0,
                               numeric_embedding="periodic", num_frequencies=2)
  training.pretrain(enc, features, epochs=epochs, batch_size=64, lr=3e-3, seed=7,
                    projection_dim=8, checkpoint_dir=checkpoint_dir, resume=resume,
                    callbacks=callbacks)
  return enc.get_weights()


def test_interrupted_pretraining_resumes_to_the_same_weights(tmp_path):
  feats = _features()
  straight = _pretrain(feats, 3, tmp_path / "straight")
  with pytest.raises(KeyboardInterrupt):
    _pretrain(feats, 3, tmp_path / "ckpt", callbacks=[_Interrupt(epoch=2)])
  assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-2")
  seen = _Epochs()
  resumed = _pretrain(feats, 3, tmp_path / "ckpt", resume=True, callbacks=[seen])
  assert seen.epochs == [2]  # only the interrupted epoch ran again
  for a, b in zip(straight, resumed):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-3")


@pytest.mark.parametrize("multiplier", [1.0, 0.5])
def test_probe_epochs_train_the_head_on_the_frozen_encoder_first(multiplier):
  feats = _features(128)
  y = (np.nan_to_num(feats["continuous"][:, 0]) > 0).astype(np.int32)
  tf.keras.utils.set_random_seed(0)
  enc = training.build_encoder(3, (5, 5), dim=8, num_heads=2, num_layers=1, dropout=0.0,
                               numeric_embedding="linear")
  before = [w.copy() for w in enc.get_weights()]
  probed = training.fit_classifier(enc, 2, feats, y, feats, y, lr=1e-2,
                                   encoder_lr_multiplier=multiplier, epochs=1, batch_size=32,
                                   patience=1, seed=0, probe_epochs=2)
  assert enc.trainable  # unfrozen for fine-tuning
  assert any(not np.allclose(a, b) for a, b in zip(before, enc.get_weights()))
  assert probed.head.built
  # The probe alone leaves the encoder untouched.
  tf.keras.utils.set_random_seed(0)
  enc = training.build_encoder(3, (5, 5), dim=8, num_heads=2, num_layers=1, dropout=0.0,
                               numeric_embedding="linear")
  enc.trainable = False
  clf = training.TabularClassifier(enc, num_classes=2, encoder_lr_multiplier=multiplier)
  clf.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  clf.fit(feats, y, epochs=1, batch_size=32, verbose=0)
  for a, b in zip(before, enc.get_weights()):
    np.testing.assert_array_equal(a, b)
