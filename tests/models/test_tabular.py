"""Tabular Transformer: tokenizer shapes, masking and missing tokens, pretraining losses."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models.tabular import (FeatureTokenizer, TabularClassifier, TabularEncoder,
                                     TabularPretrainer)


def _batch(n=32, seed=0):
  rng = np.random.default_rng(seed)
  return {"continuous": rng.normal(size=(n, 10)).astype(np.float32),
          "categorical": np.stack([rng.integers(0, 4, n), rng.integers(0, 40, n)],
                                  axis=1).astype(np.int32)}


@pytest.mark.parametrize("kind", ["linear", "periodic"])
def test_tokenizer_shapes_and_mask(kind):
  tok = FeatureTokenizer(8, 10, (4, 40), numeric_embedding=kind, num_frequencies=4)
  b = _batch(5)
  out = tok(b["continuous"], b["categorical"])
  assert out.shape == (5, 13, 8)
  mask = np.zeros((5, 12), bool)
  mask[:, 3] = True
  mask[2, 11] = True
  masked = tok(b["continuous"], b["categorical"], tf.constant(mask)).numpy()
  np.testing.assert_allclose(masked[:, 4], np.tile(tok.mask_tokens.numpy()[3], (5, 1)))
  np.testing.assert_allclose(masked[2, 12], tok.mask_tokens.numpy()[11])
  np.testing.assert_allclose(masked[1, 12], out.numpy()[1, 12])  # unmasked token unchanged
  np.testing.assert_allclose(masked[:, 0], out.numpy()[:, 0])  # [CLS]


def test_missing_continuous_value_gets_the_feature_missing_token():
  tok = FeatureTokenizer(8, 10, (4, 40), numeric_embedding="periodic", num_frequencies=4)
  b = _batch(3)
  cont = b["continuous"].copy()
  cont[1, 4] = np.nan
  out = tok(cont, b["categorical"]).numpy()
  assert np.isfinite(out).all()
  np.testing.assert_allclose(out[1, 5], tok.missing_tokens.numpy()[4])
  np.testing.assert_allclose(out[0], tok(b["continuous"], b["categorical"]).numpy()[0])


def test_each_continuous_feature_has_its_own_weights():
  tok = FeatureTokenizer(4, 10, (4, 40))
  b = _batch(3)
  base = tok(b["continuous"], b["categorical"]).numpy()
  changed = dict(b)
  changed["continuous"] = b["continuous"].copy()
  changed["continuous"][:, 2] += 1.0
  out = tok(changed["continuous"], changed["categorical"]).numpy()
  diff = np.abs(out - base).sum(axis=(0, 2))
  assert diff[3] > 0 and np.count_nonzero(diff) == 1  # only token of feature 2 (index 3)


def test_encoder_embedding_and_config():
  enc = TabularEncoder(dim=16, num_heads=8, num_layers=2)
  emb = enc.embed(_batch(7), training=False)
  assert emb.shape == (7, 16)
  assert TabularEncoder(**enc.get_config()).get_config() == enc.get_config()
  with pytest.raises(ValueError, match="divisible"):
    TabularEncoder(dim=12, num_heads=8)


def test_pretrainer_learns_to_reconstruct():
  tf.keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  n = 512
  cat = np.stack([rng.integers(0, 4, n), rng.integers(0, 40, n)], axis=1).astype(np.int32)
  # Continuous features are functions of the categoricals: masked values are predictable.
  cont = np.concatenate([np.repeat(cat[:, :1].astype(np.float32), 5, axis=1) - 1.5,
                         np.repeat(cat[:, 1:].astype(np.float32) / 20.0, 5, axis=1) - 1.0],
                        axis=1) + rng.normal(0, 0.05, (n, 10)).astype(np.float32)
  feats = {"continuous": cont, "categorical": cat}
  model = TabularPretrainer(TabularEncoder(dim=16, num_layers=1), projection_dim=16,
                            mask_rate=0.3)
  model.compile(optimizer=tf.keras.optimizers.Adam(3e-3))
  ds = tf.data.Dataset.from_tensor_slices(feats).batch(128)
  first = model.evaluate(ds, verbose=0, return_dict=True)
  hist = model.fit(ds, epochs=15, verbose=0).history
  last = model.evaluate(ds, verbose=0, return_dict=True)
  assert np.isfinite(hist["loss"]).all()
  assert last["mfm_loss"] < 0.7 * first["mfm_loss"]
  assert -1.0 <= last["contrastive_loss"] <= 1.0


def test_classifier_encoder_lr_multiplier_uses_two_optimizers():
  enc = TabularEncoder(dim=8, num_layers=1)
  clf = TabularClassifier(enc, encoder_lr_multiplier=0.1)
  clf.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  assert clf.encoder_optimizer.learning_rate.numpy() == pytest.approx(1e-3)
  b = _batch(64)
  y = (b["categorical"][:, 0] % 7).astype(np.int32)
  clf.fit(b, y, epochs=1, batch_size=32, verbose=0)
  assert clf.encoder_optimizer.iterations.numpy() == 2 and clf.optimizer.iterations.numpy() == 2
