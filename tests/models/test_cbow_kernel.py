"""The fused CBOW epoch op (tfrs_emb.models.cbow_kernel): a numpy reference, bad inputs,
the fallback to the pure-TF step, and quality beside that step."""

import dataclasses

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow
from tfrs_emb.models import cbow_kernel
from tfrs_emb.models import cbow_training
from tfrs_emb.models.cbow_training import CbowConfig

_MASK = (1 << 64) - 1


def _mix(z):
  """splitmix64's finaliser on Python ints (the op's counter-based RNG)."""
  z = int(z) & _MASK
  z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
  z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
  return z ^ (z >> 31)


def _reference_epoch(syn0, syn1, ids, shapes, table, rates, key, negatives, shared,
                     word2vec_update):
  """One thread of CbowEpoch written out in numpy, set by set (the op's definition)."""
  syn0, syn1 = syn0.copy(), syn1.copy()
  lengths = np.repeat(shapes[:, 1], shapes[:, 0])
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  base = _mix(_mix(key[0]) ^ key[1])
  weight = negatives / shared if shared else 1.0
  for s, (start, length) in enumerate(zip(starts, lengths)):
    members = ids[start:start + length]
    lr = np.float32(rates[0] + (rates[1] - rates[0]) * start / len(ids))
    set_key = _mix(base ^ _mix(s))   # s: the set's index in the plan

    def draw(counter):
      r = _mix((set_key + counter) & _MASK) >> 32
      return int(table[(r * len(table)) >> 32])

    noise = [draw(k) for k in range(shared)]
    total = syn0[members].sum(0)
    grads = np.zeros((length, syn0.shape[1]), np.float32)
    for j, target in enumerate(members):
      h = (total - syn0[target]) / np.float32(length - 1)
      if not shared:
        noise = [draw((j + 1) * 0x10000 + k) for k in range(negatives)]
      for row, label in [(target, 1.0)] + [(n, 0.0) for n in noise if n != target]:
        f = h @ syn1[row]
        sig = 1.0 / (1.0 + np.exp(-f))
        step = np.float32((1.0 - sig) * lr if label else -weight * sig * lr)
        grads[j] += step * syn1[row]
        syn1[row] += step * h
    scale = 1.0 if word2vec_update else 1.0 / (length - 1)
    syn0[members] += np.float32(scale) * (grads.sum(0) - grads)
  return syn0, syn1


def _case(vocab=30, dim=8, seed=0):
  """Random tables, an epoch plan of 3 batches (set lengths 2, 5 and 3) and a noise table."""
  rng = np.random.default_rng(seed)
  syn0 = (rng.random((vocab, dim), np.float32) - 0.5) / dim
  syn1 = (rng.random((vocab, dim), np.float32) - 0.5) / 4
  shapes = np.array([[4, 2], [3, 5], [5, 3]], np.int32)
  ids = np.concatenate([rng.choice(vocab, length, replace=False)
                        for rows, length in shapes for _ in range(rows)]).astype(np.int32)
  table = cbow.noise_table(rng.random(vocab) + 0.1, 1 << 12)
  return syn0, syn1, ids, shapes, table


@pytest.mark.parametrize("shared,word2vec_update", [(0, True), (0, False), (4, True)])
def test_one_thread_epoch_equals_the_numpy_reference(cbow_ops, shared, word2vec_update):
  syn0, syn1, ids, shapes, table = _case()
  rates = np.array([0.5, 0.1], np.float32)
  key = np.array([7, 123], np.int64)
  new0, new1, loss = cbow_ops.cbow_epoch(
      syn0, syn1, ids, shapes, table, rates, key, negatives=3, shared_negatives=shared,
      word2vec_update=word2vec_update, threads=1)
  ref0, ref1 = _reference_epoch(syn0, syn1, ids, shapes, table, rates, key, 3, shared,
                                word2vec_update)
  assert not np.allclose(ref0, syn0, atol=1e-3) and not np.allclose(ref1, syn1, atol=1e-3)
  np.testing.assert_allclose(new0.numpy(), ref0, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new1.numpy(), ref1, rtol=1e-4, atol=1e-6)
  assert np.isfinite(float(loss)) and float(loss) > 0
  # The inputs are left as they were (the op wrote into copies of shared buffers).
  again = cbow_ops.cbow_epoch(syn0, syn1, ids, shapes, table, rates, key, negatives=3,
                              shared_negatives=shared, word2vec_update=word2vec_update,
                              threads=1)
  np.testing.assert_array_equal(again[0].numpy(), new0.numpy())


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(ids=np.where(c["ids"] == c["ids"][5], 30, c["ids"])),
     r"ids\[\d+\] = 30 is outside the vocabulary \[0, 30\)"),
    (lambda c: c.update(ids=c["ids"][:-1]), "shapes cover 38 ids but ids has 37"),
    (lambda c: c.update(shapes=np.array([[4, 2], [3, 5], [5, 1]], np.int32)),
     r"shapes\[2\] = \(5, 1\).*sets of >= 2"),
    (lambda c: c.update(syn1=c["syn1"][:, :4]), "one shape"),
    (lambda c: c.update(table=np.array([0, 31], np.int32)),
     r"noise_table\[1\] = 31 is outside the vocabulary"),
])
def test_bad_inputs_are_refused_naming_the_field(cbow_ops, change, message):
  c = dict(zip(("syn0", "syn1", "ids", "shapes", "table"), _case()))
  change(c)
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    cbow_ops.cbow_epoch(c["syn0"], c["syn1"], c["ids"], c["shapes"], c["table"],
                        np.array([0.1, 0.1], np.float32), np.array([0, 0], np.int64))


def _sets(num_sets=400, seed=0):
  """Sets drawn from 4 groups of 10 elements (so there is structure to learn)."""
  rng = np.random.default_rng(seed)
  sets = [rng.choice(np.arange(10) + 10 * rng.integers(4), rng.integers(2, 8), replace=False)
          for _ in range(num_sets)]
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  return indptr, np.concatenate(sets), [f"e{i}" for i in range(40)]


def test_missing_library_falls_back_to_the_tf_step_with_one_logged_line(
    tmp_path, monkeypatch):
  monkeypatch.setenv(cbow_kernel.LIBRARY_ENV, str(tmp_path / "absent.so"))
  indptr, indices, vocab = _sets()
  messages = []
  result = cbow_training.train_cbow(indptr, indices, vocab, CbowConfig(
      dim=8, epochs=2, min_count=1, learning_rate=0.05, kernel="auto",
      fused_learning_rate=0.5, fused_input_update="word2vec", tokens_per_batch=512,
      fused_tokens_per_batch=64), log=messages.append)
  assert result.kernel == "tf"
  # The TF step keeps the settings given for it, not the fused op's.
  assert ("CBOW: tf update, learning_rate 0.05, input_update exact, batches of 512 tokens"
          in messages)
  fallback = [m for m in messages if "fused kernel not used" in m]
  assert len(fallback) == 1 and "absent.so not found" in fallback[0]
  with pytest.raises(cbow_kernel.KernelUnavailable, match="absent.so not found"):
    cbow_training.train_cbow(indptr, indices, vocab,
                             CbowConfig(dim=8, epochs=1, min_count=1, kernel="fused"))


def test_settings_the_op_cannot_run_fall_back_or_refuse(cbow_ops):
  indptr, indices, vocab = _sets()
  config = CbowConfig(dim=8, epochs=1, min_count=1, learning_rate=0.5, optimizer="adagrad")
  messages = []
  assert cbow_training.train_cbow(indptr, indices, vocab, config,
                                  log=messages.append).kernel == "tf"
  assert any("fused kernel not used (Adagrad" in m for m in messages)
  with pytest.raises(cbow_kernel.KernelUnavailable, match="cannot run Adagrad"):
    cbow_training.train_cbow(indptr, indices, vocab,
                             dataclasses.replace(config, kernel="fused"))
  with pytest.raises(ValueError, match="kernel='gpu' is not one of auto, fused, tf"):
    cbow_training.train_cbow(indptr, indices, vocab,
                             dataclasses.replace(config, kernel="gpu"))


def test_fused_settings_replace_the_tf_ones_when_the_op_runs(cbow_ops):
  indptr, indices, vocab = _sets()
  messages = []
  result = cbow_training.train_cbow(indptr, indices, vocab, CbowConfig(
      dim=8, epochs=1, min_count=1, learning_rate=0.05, fused_learning_rate=0.02,
      fused_input_update="word2vec", tokens_per_batch=512, fused_tokens_per_batch=64),
                                    log=messages.append)
  assert result.kernel == "fused"
  assert ("CBOW: fused update, learning_rate 0.02, input_update word2vec, batches of 64 "
          "tokens" in messages)


def test_fused_model_config_round_trips(cbow_ops):
  schedule = tf.keras.optimizers.schedules.PolynomialDecay(0.5, 10, 0.1)
  model = cbow.CBOW(12, dim=4, noise_per_set=True, sgd_schedule=schedule,
                    update_kernel="fused", threads=3, noise_per_target=True)
  again = cbow.CBOW.from_config(model.get_config())
  assert again.get_config() == model.get_config() and again.threads == 3
  with pytest.raises(ValueError, match="noise_per_target needs update_kernel='fused'"):
    cbow.CBOW(12, dim=4, noise_per_target=True)


@pytest.fixture(scope="module")
def small_cases(tmp_path_factory):
  out = tmp_path_factory.mktemp("jader_fused")
  synthetic_jader.write_release(out, num_cases=3000, seed=5, chunk_cases=1000)
  return jader.load_cases(out)


def _class_agreement(cases, vectors, vocab):
  rows = case_encoder.map_elements(cases.vocab, vocab)[cases.indices]
  emb = case_encoder.case_embeddings(cases.indptr, rows, vectors, "mean")
  return set_embeddings.evaluate_case_search(
      emb, cases.element_sets(), np.arange(0, len(cases), 10), cases.latent_class,
      k=10)["class_agreement@10"]


def test_fused_and_tf_steps_reach_comparable_quality(cbow_ops, small_cases):
  cases = small_cases
  config = CbowConfig(dim=16, epochs=5, min_count=3, learning_rate=0.05, seed=0,
                      tokens_per_batch=2048)
  tf_run = cbow_training.train_cbow(cases.indptr, cases.indices, cases.vocab,
                                    dataclasses.replace(config, kernel="tf"))
  fused = cbow_training.train_cbow(cases.indptr, cases.indices, cases.vocab,
                                   dataclasses.replace(config, kernel="fused",
                                                       noise_per_target=True, threads=2))
  assert (tf_run.kernel, fused.kernel) == ("tf", "fused")
  untrained = np.random.default_rng(0).random(fused.vectors.shape, np.float32) - 0.5
  a_tf, a_fused, a_untrained = (_class_agreement(cases, v, fused.vocab if v is not
                                                 tf_run.vectors else tf_run.vocab)
                                for v in (tf_run.vectors, fused.vectors, untrained))
  assert a_fused > a_untrained + 0.05, (a_fused, a_untrained)
  assert a_fused > a_tf - 0.03, (a_fused, a_tf)
  assert fused.history["loss"][-1] < fused.history["loss"][0]
