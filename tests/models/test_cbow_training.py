"""CBOW training (tfrs_emb.models.cbow_training): divergence, noise distribution, resume
and its settings guard, learning on a synthetic release."""

import dataclasses
import json

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow_training
from tfrs_emb.models.cbow_training import CbowConfig
from tests.models import cbow_sets


def test_train_cbow_reports_divergence():
  indptr, indices, vocab = cbow_sets.grouped_sets()
  with pytest.raises(FloatingPointError, match="diverged.*learning_rate"):
    cbow_training.train_cbow(indptr, indices, vocab, CbowConfig(
        dim=8, epochs=2, min_count=1, learning_rate=1e4, min_learning_rate=1e4))


@pytest.mark.parametrize("exponent", [0.75, 0.0])
def test_noise_exponent_sets_the_noise_distribution(exponent):
  indptr, indices, vocab = cbow_sets.grouped_sets()
  result = cbow_training.train_cbow(indptr, indices, vocab, CbowConfig(
      dim=4, epochs=1, min_count=1, kernel="tf", noise_exponent=exponent))
  share = np.bincount(result.model._noise_table.numpy(),  # pylint: disable=protected-access
                      minlength=len(result.vocab)) / result.model._TABLE_SIZE
  expected = result.counts.astype(np.float64) ** exponent
  np.testing.assert_allclose(share, expected / expected.sum(), atol=1e-5)


class _Interrupt(tf.keras.callbacks.Callback):
  def on_epoch_end(self, epoch, logs=None):
    if epoch == 1:
      raise KeyboardInterrupt("simulated interruption after epoch 1")


@pytest.mark.parametrize("optimizer,lr,per_set,kernel", [
    ("sgd", 0.05, True, "tf"), ("adagrad", 0.5, False, "tf"), ("sgd", 0.05, True, "fused")])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, request, optimizer, lr,
                                                            per_set, kernel):
  if kernel == "fused":
    request.getfixturevalue("cbow_ops")
  indptr, indices, vocab = cbow_sets.grouped_sets()
  # One fused thread: Hogwild threads would make two runs differ in the last digits.
  config = CbowConfig(dim=8, epochs=4, min_count=1, tokens_per_batch=64,
                      optimizer=optimizer, learning_rate=lr, min_learning_rate=lr / 10,
                      seed=3, noise_per_set=per_set, shared_negatives=5 if per_set else 32,
                      kernel=kernel, threads=1)
  full = cbow_training.train_cbow(indptr, indices, vocab, config,
                                  checkpoint_dir=str(tmp_path / "a"))
  with pytest.raises(KeyboardInterrupt):
    cbow_training.train_cbow(indptr, indices, vocab, config,
                             checkpoint_dir=str(tmp_path / "b"), callbacks=[_Interrupt()])
  messages = []
  resumed = cbow_training.train_cbow(indptr, indices, vocab, config,
                                     checkpoint_dir=str(tmp_path / "b"), log=messages.append)
  assert any("resumed" in m and "epoch 2" in m for m in messages)
  assert len(resumed.history["loss"]) == 2 and resumed.tokens == len(indices) * 2
  np.testing.assert_allclose(resumed.vectors, full.vectors, atol=1e-5)
  np.testing.assert_allclose(resumed.output_vectors, full.output_vectors, atol=1e-5)
  # Same-group elements end up closer than other-group ones (it did learn).
  v = full.vectors / np.linalg.norm(full.vectors, axis=1, keepdims=True)
  group = np.array([int(w[1:]) // 10 for w in full.vocab])
  same = group[:, None] == group[None, :]
  assert (v @ v.T)[same & ~np.eye(len(v), dtype=bool)].mean() > (v @ v.T)[~same].mean()
  # Any other setting (every field of the config is recorded) is refused by name.
  for other, differing in ((dict(learning_rate=lr * 2), "config.learning_rate"),
                           (dict(steps_per_execution=3), "config.steps_per_execution")):
    with pytest.raises(ValueError, match=rf"other settings \(differing: {differing}\)"):
      cbow_training.train_cbow(indptr, indices, vocab, dataclasses.replace(config, **other),
                               checkpoint_dir=str(tmp_path / "b"))
  record = json.loads((tmp_path / "b" / "settings.json").read_text())
  assert record["config"]["learning_rate"] == lr and record["kernel"] == kernel


# ---- learning on a synthetic release (class structure, case search, projector)

@pytest.fixture(scope="module")
def small_cases(tmp_path_factory):
  out = tmp_path_factory.mktemp("jader_small")
  synthetic_jader.write_release(out, num_cases=3000, seed=3, chunk_cases=1000)
  return jader.load_cases(out)


@pytest.fixture(scope="module")
def trained(small_cases):
  return cbow_training.train_cbow(
      small_cases.indptr, small_cases.indices, small_cases.vocab,
      CbowConfig(dim=16, epochs=8, min_count=3, tokens_per_batch=2048, seed=0,
                 optimizer="adagrad", learning_rate=1.0, min_learning_rate=0.01))


def test_cbow_learns_class_structure(small_cases, trained):
  vocab = synthetic_jader.build_vocabulary(3)
  cls = {f"drug:{d}": c for d, c in zip(vocab.drugs, vocab.drug_class)}
  rows = [i for i, v in enumerate(trained.vocab) if v in cls]
  labels = np.array([cls[trained.vocab[i]] for i in rows])
  v = trained.vectors[rows]
  v = v / np.linalg.norm(v, axis=1, keepdims=True)
  sim = v @ v.T
  same = labels[:, None] == labels[None, :]
  off = ~np.eye(len(rows), dtype=bool)
  # Untrained vectors give a gap of ~0 (±0.005 over these ~25k pairs).
  assert sim[same & off].mean() > sim[~same].mean() + 0.04
  assert trained.history["loss"][-1] < trained.history["loss"][0]
  assert trained.tokens == len(small_cases.indices) * 8


def test_case_search_beats_chance_on_latent_class(small_cases, trained):
  rows = case_encoder.map_elements(small_cases.vocab, trained.vocab)[small_cases.indices]
  emb = case_encoder.case_embeddings(small_cases.indptr, rows, trained.vectors, "mean")
  q = np.arange(0, len(small_cases), 10)
  scores = set_embeddings.evaluate_case_search(emb, small_cases.element_sets(), q,
                                               small_cases.latent_class, k=10)
  chance = np.mean(np.bincount(small_cases.latent_class) ** 2) / len(small_cases) ** 2 * 30
  assert scores["class_agreement@10"] > 0.5 > chance
  assert 0.0 < scores["rank_dice@10"] <= 1.0




def test_pure_tf_step_trains_on_long_sessions():
  """Long ordered sessions (20-300 elements) through the pure-TF step with per-set noise:
  each set draws at least as many noise elements as it has targets, so no noise row takes
  L pushes from one context per step, and the loss falls instead of diverging."""
  from tfrs_emb.data import synthetic_sessions  # pylint: disable=import-outside-toplevel
  s = synthetic_sessions.generate(300, 3000, 30, 20, 300, seed=0)
  vocab = [synthetic_sessions.item_name(i) for i in range(3000)]
  config = CbowConfig(dim=64, epochs=10, min_count=1, kernel="tf", learning_rate=0.05,
                      max_len=64, tokens_per_batch=1024, shared_negatives=5,
                      noise_per_set=True, input_update="word2vec")
  loss = cbow_training.train_cbow(s.indptr, s.items, vocab, config).history["loss"]
  assert np.all(np.isfinite(loss)) and loss[-1] < loss[0] - 1.0, loss
  assert all(b < a + 0.1 for a, b in zip(loss, loss[1:])), loss


@pytest.mark.parametrize("kernel", ["tf", "fused"])
def test_tiny_corpus_trains_with_default_subsampling(request, kernel):
  # 20 sets of 2-4 over 10 elements: sample=1e-3 keeps an element 8-20 % of the time, so
  # most epochs' subsamples hold no set of >= 2 (this crashed the batcher).
  if kernel == "fused":
    request.getfixturevalue("cbow_ops")
  rng = np.random.default_rng(0)
  sets = [rng.choice(10, rng.integers(2, 5), replace=False) for _ in range(20)]
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  result = cbow_training.train_cbow(indptr, np.concatenate(sets), [f"e{i}" for i in range(10)],
                                    CbowConfig(dim=8, epochs=3, kernel=kernel, threads=1))
  assert len(result.history["loss"]) == 3 and np.isfinite(result.vectors).all()
