"""Keras CBOW model (tfrs_emb.models.cbow): gradients, SGD paths, epoch form, config."""

import dataclasses

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import config as config_lib
from tfrs_emb.models import cbow
from tfrs_emb.models import cbow_inputs
from tests.models import cbow_sets


def _dense(slices):
  return tf.convert_to_tensor(slices).numpy()


@pytest.mark.parametrize("matmul_rows,per_set", [(0, False), (16, False), (0, True)])
def test_analytic_gradients_match_autodiff(matmul_rows, per_set):
  rng = np.random.default_rng(0)
  model = cbow.CBOW(12, dim=4, negatives=3, shared_negatives=5,
                    noise_distribution=np.full(12, 1 / 12), matmul_rows=matmul_rows)
  model.output_embeddings.assign(rng.standard_normal((12, 4)).astype(np.float32))
  ids = tf.constant([[0, 3, 5], [2, 2, 7], [4, 1, 11]], tf.int32)
  neg = tf.constant([1, 6, 6, 11, 3], tf.int32)
  if per_set:   # each set its own noise draws
    neg = tf.constant([[1, 6, 6, 11, 3], [0, 2, 9, 9, 5], [4, 4, 8, 1, 10]], tf.int32)
  with tf.GradientTape() as tape:
    loss_ref, _ = model.loss_terms(ids, neg)
  ref = tape.gradient(loss_ref, [model.input_embeddings, model.output_embeddings])
  g_in, (g_u, g_un), pos, negl = model.gradients(ids, neg, scale=0.5)
  assert pos.shape == (9,) and negl.shape == (9, 5)
  np.testing.assert_allclose(model._loss(pos, negl).numpy(), loss_ref.numpy(), rtol=1e-5)
  np.testing.assert_allclose(_dense(g_in), 0.5 * _dense(ref[0]), atol=1e-5)
  np.testing.assert_allclose(_dense(g_u) + _dense(g_un), 0.5 * _dense(ref[1]), atol=1e-5)


def test_model_arguments_are_checked_by_the_config_fields():
  with pytest.raises(ValueError, match=r"input_update='mean' is not one of exact, word2vec"):
    cbow.CBOW(10, dim=4, input_update="mean")
  with pytest.raises(ValueError, match=r"dim=0 must be >= 1"):
    cbow.CBOW(10, dim=0)
  with pytest.raises(ValueError, match=r"shared_negatives=0 must be >= 1"):
    cbow.CBOW(10, dim=4, shared_negatives=0)


def test_train_step_rejects_padded_batches():
  model = cbow.CBOW(12, dim=4)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.01))
  with pytest.raises(tf.errors.InvalidArgumentError, match="padding-free"):
    model.train_step(tf.constant([[0, 3, -1], [2, 4, 7]], tf.int32))


def test_direct_sgd_step_equals_keras_optimizer_step():
  rng = np.random.default_rng(1)
  ids = tf.constant(rng.integers(0, 12, (5, 4)), tf.int32)
  out = []
  for direct in (True, False):
    schedule = tf.keras.optimizers.schedules.PolynomialDecay(0.5, 10, 0.1)
    model = cbow.CBOW(12, dim=4, shared_negatives=6, matmul_rows=32,
                      sgd_schedule=schedule if direct else None)
    model.output_embeddings.assign(rng.standard_normal((12, 4)).astype(np.float32)
                                   if not out else out[0][2])
    model.compile(optimizer=tf.keras.optimizers.SGD(schedule))
    start = model.output_embeddings.numpy()
    for _ in range(3):
      model.train_step(ids)
    out.append((model.input_embeddings.numpy(), model.output_embeddings.numpy(), start))
  assert int(model.optimizer.iterations.numpy()) == 3
  np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, atol=1e-6)
  assert not np.allclose(out[0][1], out[0][2])


def test_config_round_trip():
  schedule = tf.keras.optimizers.schedules.PolynomialDecay(0.5, 10, 0.1)
  model = cbow.CBOW(12, dim=4, shared_negatives=6, matmul_rows=32, noise_per_set=True,
                    sgd_schedule=schedule)
  again = cbow.CBOW.from_config(model.get_config())
  assert again.get_config() == model.get_config()
  assert float(again.sgd_schedule(10)) == float(schedule(10))


def test_noise_table_matches_the_slot_by_slot_definition():
  rng = np.random.default_rng(0)
  p = rng.random(50) ** 3
  p[[3, 17]] = 0.0   # elements never drawn
  size = 4096
  cum = np.cumsum(p)
  slots = (np.arange(size) + 0.5) / size * cum[-1]
  expected = np.minimum(np.searchsorted(cum, slots), len(p) - 1)
  table = cbow.noise_table(p, size)
  assert table.dtype == np.int32
  np.testing.assert_array_equal(table, expected)
  assert not np.isin([3, 17], table).any()


def test_epoch_form_of_train_step_equals_its_batches_one_by_one():
  indptr, indices, _ = cbow_sets.grouped_sets(num_sets=80)
  batches = cbow_inputs.SetBatches(indptr, indices, epochs=1, tokens_per_batch=24, max_len=8)
  flat, shapes = batches.plan(0)
  assert shapes.shape == (batches.steps_per_epoch, 2) and flat.size == shapes.prod(1).sum()
  out = []
  for whole in (True, False):
    schedule = tf.keras.optimizers.schedules.PolynomialDecay(0.5, 100, 0.1)
    model = cbow.CBOW(40, dim=4, shared_negatives=3, noise_per_set=True,
                      sgd_schedule=schedule)
    model.compile(optimizer=tf.keras.optimizers.SGD(schedule))
    if whole:
      model.train_step((tf.constant(flat), tf.constant(shapes)))
    else:
      for b in batches.epoch(0):
        model.train_step(tf.constant(b))
    assert int(model.optimizer.iterations.numpy()) == len(shapes)
    out.append((model.input_embeddings.numpy(), model.output_embeddings.numpy()))
  np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_set", [False, True])
def test_word2vec_input_update_is_the_exact_one_times_the_context_size(per_set):
  ids = tf.constant([[0, 3, 5, 8], [2, 2, 7, 1]], tf.int32)   # L = 4: factor L - 1 = 3
  neg = tf.constant([[1, 6, 11], [0, 9, 4]] if per_set else [1, 6, 11], tf.int32)
  grads = []
  for update in ("exact", "word2vec"):
    model = cbow.CBOW(12, dim=4, negatives=3, shared_negatives=3, input_update=update)
    model.output_embeddings.assign(
        np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32))
    g_in, (g_u, g_un), _, _ = model.gradients(ids, neg, scale=0.5)
    grads.append((_dense(g_in), _dense(g_u) + _dense(g_un)))
  np.testing.assert_allclose(grads[1][0], 3 * grads[0][0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-6)   # output side unchanged
  with pytest.raises(ValueError, match="input_update"):
    cbow.CBOW(12, input_update="mean")


def test_config_declares_each_setting_once_with_bounds_and_fused_replacements():
  config = cbow.CbowConfig()
  config_lib.check_config(config)
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.dim = 3   # type: ignore[misc]
  with pytest.raises(ValueError, match="tokens_per_batch=1 must be >= 2"):
    config_lib.check_config(cbow.CbowConfig(tokens_per_batch=1))
  with pytest.raises(ValueError, match="kernel='gpu' is not one of auto, fused, tf"):
    config_lib.check_config(cbow.CbowConfig(kernel="gpu"))
  assert config.fused() == config   # nothing to replace
  tuned = cbow.CbowConfig(learning_rate=0.07, fused_learning_rate=0.05,
                          fused_input_update="word2vec", fused_tokens_per_batch=128)
  fused = tuned.fused()
  assert (fused.learning_rate, fused.input_update, fused.tokens_per_batch) == (
      0.05, "word2vec", 128)
  assert dataclasses.replace(fused, learning_rate=0.07, input_update="exact",
                             tokens_per_batch=8192) == tuned
