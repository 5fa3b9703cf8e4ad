"""NCA metric embedding of table rows: encoder (missing values, config), leave-self-out
loss, training separating the classes."""

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models.tabular_metric import (NeighborMetricEncoder, embed_rows,
                                            fit_neighbor_metric, nca_loss)


def _encoder(dim=4):
  enc = NeighborMetricEncoder(2, [3], dim)
  enc({"continuous": tf.zeros([1, 2]), "categorical": tf.zeros([1, 1], tf.int32)})
  return enc


def test_encoder_is_additive_and_uses_the_missing_vector():
  enc = _encoder()
  enc.missing.assign(np.ones((2, 4), np.float32))
  x = {"continuous": np.array([[1.0, np.nan]], np.float32),
       "categorical": np.array([[2]], np.int32)}
  expected = (enc.cont_kernel.numpy()[0] + 1.0
              + enc.embeddings[0].embeddings.numpy()[2])
  np.testing.assert_allclose(embed_rows(enc, x)[0], expected, rtol=1e-6)
  clone = NeighborMetricEncoder.from_config(enc.get_config())
  assert (clone.num_continuous, clone.cardinalities, clone.dim) == (2, (3,), 4)


def test_nca_loss_excludes_self_and_counts_only_same_class_mass():
  z = tf.constant([[0.0], [1.0], [3.0]])
  y = tf.constant([0, 0, 1])
  # Query row 0: others at squared distance 1 (class 0) and 9 (class 1).
  loss = nca_loss(z[:1], z, tf.constant([0]), y)
  np.testing.assert_allclose(loss.numpy(), -np.log(np.exp(-1) / (np.exp(-1) + np.exp(-9))),
                             rtol=1e-3)
  # Row 2 has no other row of its class: it adds nothing (not an infinite loss).
  both = nca_loss(tf.gather(z, [0, 2]), z, tf.constant([0, 2]), y)
  np.testing.assert_allclose(both.numpy(), loss.numpy(), rtol=1e-5)


def test_fit_separates_classes_that_one_feature_predicts():
  rng = np.random.default_rng(0)
  n = 200
  y = rng.integers(0, 2, n)
  feats = {"continuous": np.stack([y + 0.1 * rng.normal(size=n), 3 * rng.normal(size=n)],
                                  axis=1).astype(np.float32),
           "categorical": rng.integers(0, 3, (n, 1)).astype(np.int32)}
  tf.keras.utils.set_random_seed(0)
  enc = _encoder()
  history = fit_neighbor_metric(enc, feats, y, epochs=15, batch_size=64, lr=1e-2, seed=0)
  assert history[-1] < history[0]
  z = embed_rows(enc, feats)
  d = ((z[:, None] - z[None]) ** 2).sum(-1) + np.diag(np.full(n, np.inf))
  assert np.mean(y[d.argmin(axis=1)] == y) > 0.95
