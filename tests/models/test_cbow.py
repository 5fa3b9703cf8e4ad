"""Keras CBOW (tfrs_emb.models.cbow): gradients, batching, SGD paths, divergence, resume."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow


def _corpus(num_sets=600, vocab=40, seed=0):
  """Sets drawn from 4 groups of 10 elements (so there is structure to learn)."""
  rng = np.random.default_rng(seed)
  sets = []
  for _ in range(num_sets):
    group = rng.integers(4)
    size = rng.integers(2, 8)
    sets.append(np.sort(rng.choice(np.arange(10) + 10 * group, size, replace=False)))
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  return indptr, np.concatenate(sets), [f"e{i}" for i in range(vocab)]


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


def test_unknown_input_update_is_refused_with_the_choices():
  with pytest.raises(ValueError, match=r"input_update must be one of \('exact', 'word2vec'\), "
                                       r"got 'mean'"):
    cbow.CBOW(10, dim=4, input_update="mean")


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


def test_set_batches_are_padding_free_and_cover_every_set():
  lengths = np.array([0, 1, 2, 3, 3, 5, 9, 2, 3])
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  indices = np.arange(indptr[-1])   # element ids = positions: each set is identifiable
  batches = cbow.SetBatches(indptr, indices, epochs=2, tokens_per_batch=6, max_len=6, seed=1)
  for e in range(2):   # two epochs: same coverage, fresh order
    seen = []
    plan = batches.epoch(e)
    assert len(plan) == batches.steps_per_epoch
    for b in plan:
      assert b.dtype == np.int32 and b.ndim == 2 and b.shape[1] >= 2 and (b >= 0).all()
      assert b.shape[0] * b.shape[1] <= 6 or b.shape[0] == 1
      seen.extend(tuple(sorted(r)) for r in b)
    sets = {tuple(range(indptr[i], indptr[i + 1])) for i in range(len(lengths))
            if 2 <= lengths[i] <= 6}
    assert set(seen) - {s for s in seen if len(s) == 6} == sets and len(seen) == len(sets) + 1
    long = [s for s in seen if len(s) == 6]   # the 9-element set: a random 6 of its own
    assert len(long) == 1 and set(long[0]) <= set(range(indptr[6], indptr[7]))
  # Subsampling drops occurrences afresh each epoch, yet every epoch has the same number
  # of steps; replicas need row counts divisible by row_multiple.
  sub = cbow.SetBatches(indptr, indices, keep_probability=np.full(len(indices), 0.5),
                        epochs=4, tokens_per_batch=6, max_len=6, seed=2, row_multiple=2)
  plans = [sub.epoch(e) for e in range(4)]
  assert {len(p) for p in plans} == {sub.steps_per_epoch}
  assert all(len(b) % 2 == 0 for p in plans for b in p)
  assert len({tuple(np.concatenate([b.ravel() for b in p]).tolist()) for p in plans}) > 1
  # A resumed run's dataset starts at its first unfinished epoch.
  late = [b.numpy() for b in sub.dataset(first_epoch=3)]
  assert len(late) == sub.steps_per_epoch
  assert all(np.array_equal(a, b) for a, b in zip(late, plans[3]))


def test_train_cbow_reports_divergence():
  indptr, indices, vocab = _corpus()
  with pytest.raises(FloatingPointError, match="diverged.*learning_rate"):
    cbow.train_cbow(indptr, indices, vocab, dim=8, epochs=2, min_count=1,
                    learning_rate=1e4, min_learning_rate=1e4)


@pytest.mark.parametrize("exponent", [0.75, 0.0])
def test_noise_exponent_sets_the_noise_distribution(exponent):
  indptr, indices, vocab = _corpus()
  result = cbow.train_cbow(indptr, indices, vocab, dim=4, epochs=1, min_count=1,
                           kernel="tf", noise_exponent=exponent)
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
  indptr, indices, vocab = _corpus()
  # One fused thread: Hogwild threads would make two runs differ in the last digits.
  kw = dict(dim=8, epochs=4, min_count=1, tokens_per_batch=64, optimizer=optimizer,
            learning_rate=lr, min_learning_rate=lr / 10, seed=3, noise_per_set=per_set,
            shared_negatives=5 if per_set else 32, kernel=kernel, threads=1)
  full = cbow.train_cbow(indptr, indices, vocab, checkpoint_dir=str(tmp_path / "a"), **kw)
  with pytest.raises(KeyboardInterrupt):
    cbow.train_cbow(indptr, indices, vocab, checkpoint_dir=str(tmp_path / "b"),
                    callbacks=[_Interrupt()], **kw)
  messages = []
  resumed = cbow.train_cbow(indptr, indices, vocab, checkpoint_dir=str(tmp_path / "b"),
                            log=messages.append, **kw)
  assert any("resumed" in m and "epoch 2" in m for m in messages)
  assert len(resumed.history["loss"]) == 2 and resumed.tokens == len(indices) * 2
  np.testing.assert_allclose(resumed.vectors, full.vectors, atol=1e-5)
  np.testing.assert_allclose(resumed.output_vectors, full.output_vectors, atol=1e-5)
  # Same-group elements end up closer than other-group ones (it did learn).
  v = full.vectors / np.linalg.norm(full.vectors, axis=1, keepdims=True)
  group = np.array([int(w[1:]) // 10 for w in full.vocab])
  same = group[:, None] == group[None, :]
  assert (v @ v.T)[same & ~np.eye(len(v), dtype=bool)].mean() > (v @ v.T)[~same].mean()
  with pytest.raises(ValueError, match="other settings"):
    cbow.train_cbow(indptr, indices, vocab, checkpoint_dir=str(tmp_path / "b"),
                    **dict(kw, learning_rate=lr * 2))


def test_config_round_trip():
  schedule = tf.keras.optimizers.schedules.PolynomialDecay(0.5, 10, 0.1)
  model = cbow.CBOW(12, dim=4, shared_negatives=6, matmul_rows=32, noise_per_set=True,
                    sgd_schedule=schedule)
  again = cbow.CBOW.from_config(model.get_config())
  assert again.get_config() == model.get_config()
  assert float(again.sgd_schedule(10)) == float(schedule(10))


# ---- learning on a synthetic release (class structure, case search, projector)

@pytest.fixture(scope="module")
def small_cases(tmp_path_factory):
  out = tmp_path_factory.mktemp("jader_small")
  synthetic_jader.write_release(out, num_cases=3000, seed=3, chunk_cases=1000)
  return jader.load_cases(out)


@pytest.fixture(scope="module")
def trained(small_cases):
  return cbow.train_cbow(small_cases.indptr, small_cases.indices, small_cases.vocab,
                         dim=16, epochs=8, min_count=3, tokens_per_batch=2048, verbose=0,
                         seed=0, optimizer="adagrad", learning_rate=1.0,
                         min_learning_rate=0.01)


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


def test_projector_files(tmp_path, trained):
  out = cbow.write_projector(trained.vocab, trained.vectors, tmp_path / "p", trained.counts)
  vec = np.loadtxt(out / "vectors.tsv", delimiter="\t")
  meta = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
  assert vec.shape == trained.vectors.shape
  assert meta[0] == "element\tkind\tcount" and len(meta) == len(trained.vocab) + 1


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
  indptr, indices, _ = _corpus(num_sets=80)
  batches = cbow.SetBatches(indptr, indices, epochs=1, tokens_per_batch=24, max_len=8)
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
