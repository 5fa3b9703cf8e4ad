"""Tabular Transformer: tokenizer shapes and masking, pretraining losses, KNN, export/reload."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import covertype as ct
from tfrs_emb.retrieval.neighbors import knn_vote
from tfrs_emb.models.tabular import (FeatureTokenizer, TabularClassifier, TabularEncoder,
                                     TabularPretrainer)
from tfrs_emb.models.tabular_serving import CovertypeServingModule, export_classifier

ROOT = pathlib.Path(__file__).resolve().parents[2]


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


def test_knn_predict_votes_with_nearest_tiebreak():
  train = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
  labels = np.array([0, 1, 2, 2])
  queries = np.array([[1, 0.01], [0.05, 1]], np.float32)
  # Query 0: neighbours labelled 0 (nearest) and 1 → tie → 0; query 1: both 2.
  np.testing.assert_array_equal(knn_vote(train, labels, queries, 3, k=2), [0, 2])


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


def _csv_data(n=40):
  rng = np.random.default_rng(1)
  cont = np.abs(rng.normal(1000, 500, (n, 10))).astype(np.float32)
  cat = np.stack([rng.integers(0, 4, n), rng.integers(0, 40, n)], axis=1).astype(np.int32)
  return ct.CovertypeData(cont, cat, rng.integers(0, 7, n).astype(np.int32), "kaggle")


def test_export_reload_matches_in_process(tmp_path):
  data = _csv_data()
  st = ct.Standardizer.fit(data.continuous, log1p_columns=(3, 5))
  enc = TabularEncoder(dim=16, num_layers=1, numeric_embedding="periodic", num_frequencies=4)
  clf = TabularClassifier(enc)
  feats = {"continuous": st.transform(data.continuous), "categorical": data.categorical}
  emb, logits = clf.embed_and_logits(feats)
  path = export_classifier(clf, st, tmp_path / "covertype_classifier", version=1)
  assert path == tmp_path / "covertype_classifier" / "1"
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  assert set(fn.structured_input_signature[1]) == set(ct.FEATURE_COLUMNS)
  out = fn(**{k: tf.constant(v) for k, v in data.as_csv_fields().items()})
  np.testing.assert_allclose(out["probabilities"].numpy(), tf.nn.softmax(logits).numpy(),
                             atol=1e-5)
  np.testing.assert_allclose(out["embedding"].numpy(), emb.numpy(), atol=1e-5)
  assert out["probabilities"].shape == (40, 7)
  # Statistics are baked in: the module standardises raw values itself.
  module = CovertypeServingModule(clf, st)
  np.testing.assert_allclose(module.features(data.as_csv_fields())["continuous"].numpy(),
                             feats["continuous"], atol=1e-5)


@pytest.fixture(scope="session")
def small_run(shared_data, tmp_path_factory):
  """The small flagfile end to end (pretrain, fine-tune, scratch, LightGBM, KNN, export)."""
  out = tmp_path_factory.mktemp("covertype_small")
  cmd = [sys.executable, "-m", "trainers.tabular_contrastive",
         "--flagfile=configs/covertype_small.flags",
         f"--data={shared_data / 'covertype' / 'train.csv'}",
         f"--output_dir={out}", f"--export_dir={out / 'exported' / 'covertype_classifier'}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out


def test_small_flagfile_end_to_end(small_run):
  metrics = json.loads((small_run / "metrics.json").read_text())
  rows = metrics["rows"]
  assert {(r["model"], r["label_fraction"]) for r in rows} == {
      (m, f) for m in ("knn_k2", "finetune", "scratch", "lightgbm") for f in (0.1, 1.0)}
  for r in rows:
    assert 0.0 <= r["macro_f1"] <= 1.0 and r["seconds"] >= 0.0
    assert 1 / 7 * 0.5 < r["accuracy"] <= 1.0, r  # LightGBM and KNN are far above chance
  lgbm = next(r for r in rows if r["model"] == "lightgbm" and r["label_fraction"] == 1.0)
  assert lgbm["accuracy"] > 0.5
  report = (small_run / "report.md").read_text()
  assert "0.75030" in report or "0.7503" in report


def test_small_run_export_serves_csv_fields(small_run, shared_data):
  fn = tf.saved_model.load(str(small_run / "exported" / "covertype_classifier" / "1")
                           ).signatures["serving_default"]
  data = ct.load_covertype(shared_data / "covertype" / "train.csv").subset(np.arange(10))
  out = fn(**{k: tf.constant(v) for k, v in data.as_csv_fields().items()})
  np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
  assert out["embedding"].shape[0] == 10
