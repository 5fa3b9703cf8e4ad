"""Piecewise-linear numeric embedding (PLE): quantile edges and the encoding against a
numpy reference, missing values, and an encoder that trains with it."""

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models import tabular


def _reference(x, edges):
  """Gorishniy et al. 2022 PLE of one value over one feature's edges, bin by bin."""
  out = []
  for t in range(len(edges) - 1):
    lo, hi = edges[t], edges[t + 1]
    if t > 0 and x < lo:
      out.append(0.0)
    elif t < len(edges) - 2 and x >= hi:
      out.append(1.0)
    else:
      out.append((x - lo) / (hi - lo))
  return out


def test_quantile_edges_are_distinct_quantiles_of_present_values():
  col = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, np.nan], [3.0, 5.0], [4.0, 5.0]])
  edges = tabular.quantile_bin_edges(col, num_bins=4)
  np.testing.assert_allclose(edges[0], [0.0, 1.0, 2.0, 3.0, 4.0])
  assert edges[1] == [5.0, 6.0]   # one distinct value: one bin


def test_piecewise_linear_matches_numpy_reference():
  rng = np.random.default_rng(0)
  edges = [[-1.0, 0.0, 0.5, 2.0], [0.0, 3.0], [-2.0, -1.0, 0.0, 1.0, 2.0]]
  arrays = tabular.piecewise_linear_arrays(edges)
  x = rng.uniform(-4, 4, size=(64, 3)).astype(np.float32)
  x[:3] = [[-1.0, 0.0, -2.0], [2.0, 3.0, 2.0], [0.25, 1.5, 0.5]]   # edges and inside
  got = tabular.piecewise_linear(tf.constant(x), **{k: tf.constant(v)
                                                    for k, v in arrays.items()}).numpy()
  assert got.shape == (64, 3, 4)
  for i in range(len(x)):
    for c, e in enumerate(edges):
      ref = _reference(float(x[i, c]), e)
      np.testing.assert_allclose(got[i, c, :len(ref)], ref, rtol=1e-5, atol=1e-6)
      np.testing.assert_array_equal(got[i, c, len(ref):], 0.0)   # padded bins


def test_ple_encoder_embeds_missing_values_and_learns():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(256, 2)).astype(np.float32)
  x[::7, 1] = np.nan
  y = (np.nan_to_num(x[:, 0]) > 0.3).astype(np.int32)
  enc = tabular.TabularEncoder(dim=8, num_continuous=2, cardinalities=(), num_heads=2,
                               num_layers=1, numeric_embedding="ple",
                               bin_edges=tabular.quantile_bin_edges(x, 8))
  feats = {"continuous": x, "categorical": np.zeros((256, 0), np.int32)}
  emb = enc.embed(feats).numpy()
  assert emb.shape == (256, 8) and np.isfinite(emb).all()
  model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
  opt = tf.keras.optimizers.Adam(0.01)
  loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  losses = []
  for _ in range(60):
    with tf.GradientTape() as tape:
      loss = loss_fn(y, model(enc.embed(feats, training=True)))
    variables = enc.trainable_variables + model.trainable_variables
    opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0]
  assert not any("ple_" in v.name for v in enc.trainable_variables)
