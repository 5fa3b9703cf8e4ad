"""Raw-column SavedModel of a table classifier: reload parity, labels, OOV, missing, inf,
any legal header (sanitised, mapped input names), a bad field named."""

import dataclasses
import json

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import rest
from tfrs_emb.data import table as tbl
from tfrs_emb.models import tabular_training as training
from tfrs_emb.models.tabular import TabularClassifier
from tfrs_emb.models.tabular_serving import (SIGNATURE_INPUTS, NeighborIndex,
                                             TableServingModule, export_classifier,
                                             serving_fields, signature_keys)
from tfrs_emb.models.tabular_ensemble import TabularEnsembleClassifier
from tfrs_emb.models.tabular_metric import NeighborMetricEncoder
from tfrs_emb.retrieval.neighbors import (cosine_neighbors, l2_neighbors,
                                          neighbor_label_distribution)

CSV = """amount, colour, g1, g2, g3, label
120, red, 1, 0, 0, good
, blue, 0, 1, 0, bad
3000, red, 0, 0, 1, good
45, green, 1, 0, 0, bad
980, red, 0, 0, 0, good
17, blue, 0, 1, 0, bad
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  path = tmp_path_factory.mktemp("serving") / "t.csv"
  path.write_text(CSV)
  table = tbl.read_table(path)
  classes = tbl.label_classes(table, "label")
  schema = tbl.infer_schema(table, "label", classes, np.arange(6), onehot_groups=("g",))
  raw = tbl.encode_features(table, schema)
  scaler = tbl.Scaler.fit(raw["continuous"], tbl.log1p_mask(schema, ["amount"]))
  feats = {"continuous": scaler.transform(raw["continuous"]),
           "categorical": raw["categorical"]}
  tf.keras.utils.set_random_seed(0)
  enc = training.build_encoder(1, schema.cardinalities, dim=8, num_heads=2, num_layers=1,
                               numeric_embedding="periodic", num_frequencies=2)
  clf = TabularClassifier(enc, num_classes=2)
  clf(feats)  # builds the head
  return table, schema, scaler, feats, clf


def _serve(path, fields):
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in fields.items()}).items()}


def test_export_reload_matches_in_process(setup, tmp_path):
  table, schema, scaler, feats, clf = setup
  path = export_classifier(clf, schema, scaler, tmp_path / "m", version=1)
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  assert set(fn.structured_input_signature[1]) == {"amount", "colour", "g1", "g2", "g3"}
  assert fn.structured_input_signature[1]["colour"].dtype == tf.string
  out = _serve(path, serving_fields(table, schema))
  emb, logits = clf.embed_and_logits(feats)
  np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(logits).numpy(), atol=1e-5)
  np.testing.assert_allclose(out["embedding"], emb.numpy(), atol=1e-5)
  assert set(out["label"].astype(str)) <= {"bad", "good"}
  np.testing.assert_array_equal(out["label"].astype(str),
                                np.array(schema.classes)[out["class_id"]])
  assert not out["nonfinite_input"].any()


def test_unseen_category_missing_and_inf_at_serving(setup, tmp_path):
  table, schema, scaler, feats, clf = setup
  path = export_classifier(clf, schema, scaler, tmp_path / "m", version=1)
  fields = {"amount": np.array([120, np.nan, np.inf, 120], np.float32),
            "colour": np.array(["purple", " red ", "red", ""]),
            "g1": np.array([1, 0, 1, 0]), "g2": np.array([0, 0, 0, 0]),
            "g3": np.array([0, 0, 0, 0])}
  out = _serve(path, fields)
  assert np.isfinite(out["probabilities"]).all()
  np.testing.assert_array_equal(out["nonfinite_input"], [False, False, True, False])
  module = TableServingModule(clf, schema, scaler)
  inputs, _ = module.features({k: tf.constant(v) for k, v in fields.items()})
  cat = inputs["categorical"].numpy()
  red = tbl.FIRST_CATEGORY_ID + schema.categorical[0].vocabulary.index("red")
  np.testing.assert_array_equal(cat[:, 0], [tbl.OOV_ID, red, red, tbl.MISSING_ID])
  np.testing.assert_array_equal(cat[:, 1], [2, tbl.MISSING_ID, 2, tbl.MISSING_ID])
  # inf is treated as missing: same output as the explicit NaN row with the same fields.
  assert np.isnan(inputs["continuous"].numpy()[2, 0])


def test_quantile_scaling_in_the_graph_matches_numpy(setup):
  """The serving graph's scaling is ``Scaler.transform``'s on mixed columns (quantile with
  1,000 and with 4 knots, padded to one array; standardised; log1p then quantile): at
  knots, between them, beyond both ends, on a mass point, NaN kept."""
  _, schema, _, _, clf = setup
  rng = np.random.default_rng(1)
  n = 1000
  train = np.stack([np.concatenate([np.zeros(300), np.exp(rng.normal(5, 2, n - 300))]),
                    rng.integers(0, 4, n).astype(float), rng.normal(3, 2, n),
                    np.exp(rng.normal(8, 3, n))], axis=1)
  train[::7, 2] = np.nan
  scaler = tbl.Scaler.fit(train, np.array([False, False, False, True]), scaling="quantile")
  scaler = dataclasses.replace(scaler, quantile=np.array([True, True, False, True]))
  assert scaler.num_knots[1] == 4 and scaler.num_knots.max() > 500
  for j in np.flatnonzero(scaler.quantile):
    assert (np.diff(scaler.knots[j, :scaler.num_knots[j]]) > 0).all()
  probes = np.concatenate([train[:100], scaler.knots[:, :5].T.astype(np.float64),
                           [[np.nan, -7.0, np.nan, -1.0], [1e9, 99.0, 1e6, 1e30],
                            [-1e9, 1.5, -1e6, 0.0]], rng.uniform(-10, 5000, (50, 4))])
  module = TableServingModule(clf, schema, scaler)
  np.testing.assert_allclose(module.scale(tf.constant(probes, tf.float32)).numpy(),
                             scaler.transform(probes.astype(np.float32)), atol=3e-5, rtol=1e-5,
                             equal_nan=True)


def test_retrieval_augmented_export_has_identical_probabilities(setup, tmp_path):
  table, schema, scaler, feats, clf = setup
  rng = np.random.default_rng(0)
  index = NeighborIndex(rng.normal(size=(20, 8)).astype(np.float32),
                        rng.integers(0, 2, 20), k=3, temperature=0.1, weight=0.6)
  path = export_classifier(clf, schema, scaler, tmp_path / "r", version=1, neighbors=[index])
  out = _serve(path, serving_fields(table, schema))
  emb, logits = clf.embed_and_logits(feats)
  sims, idx = cosine_neighbors(emb.numpy(), index.embeddings, 3)
  hist = neighbor_label_distribution(sims, index.labels[idx], 2, 0.1)
  expected = 0.4 * tf.nn.softmax(logits).numpy() + 0.6 * hist
  np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
  plain = _serve(export_classifier(clf, schema, scaler, tmp_path / "p", version=1),
                 serving_fields(table, schema))
  assert np.abs(plain["probabilities"] - out["probabilities"]).max() > 1e-3


def test_metric_retrieval_export_carries_its_index_and_metric(setup, tmp_path):
  table, schema, scaler, feats, clf = setup
  tf.keras.utils.set_random_seed(1)
  metric = NeighborMetricEncoder(1, schema.cardinalities, 4)
  z = metric(feats).numpy()
  rng = np.random.default_rng(1)
  index = NeighborIndex(z + rng.normal(scale=0.1, size=z.shape).astype(np.float32),
                        np.array([0, 1, 0, 1, 0, 1]), k=2, temperature=0.5, weight=0.7,
                        metric=metric)
  path = export_classifier(clf, schema, scaler, tmp_path / "m", version=1, neighbors=[index])
  out = _serve(path, serving_fields(table, schema))
  scores, idx = l2_neighbors(z, index.embeddings, 2)
  hist = neighbor_label_distribution(scores, index.labels[idx], 2, 0.5)
  _, logits = clf.embed_and_logits(feats)
  expected = 0.3 * tf.nn.softmax(logits).numpy() + 0.7 * hist
  np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)


def test_ensemble_export_averages_the_heads_probabilities(setup, tmp_path):
  table, schema, scaler, feats, clf = setup
  tf.keras.utils.set_random_seed(2)
  enc = training.build_encoder(1, schema.cardinalities, dim=8, num_heads=2, num_layers=1,
                               numeric_embedding="periodic", num_frequencies=2)
  other = TabularClassifier(enc, num_classes=2)
  other(feats)
  path = export_classifier(clf, schema, scaler, tmp_path / "e", version=1,
                           extra_heads=[other])
  out = _serve(path, serving_fields(table, schema))
  emb, logits = clf.embed_and_logits(feats)
  expected = 0.5 * (tf.nn.softmax(logits) + tf.nn.softmax(other.embed_and_logits(feats)[1]))
  np.testing.assert_allclose(out["probabilities"], expected.numpy(), atol=1e-5)
  np.testing.assert_allclose(out["embedding"], emb.numpy(), atol=1e-5)


def test_cross_fitted_export_averages_each_folds_neighbours(setup, tmp_path):
  """Two fold classifiers, each with its own index: the cosine one searches the second
  classifier's embedding, the metric one its metric; their histograms are averaged."""
  table, schema, scaler, feats, clf = setup
  tf.keras.utils.set_random_seed(5)
  other = TabularClassifier(training.build_encoder(
      1, schema.cardinalities, dim=8, num_heads=2, num_layers=1), num_classes=2)
  other(feats)
  metric = NeighborMetricEncoder(1, schema.cardinalities, 4)
  z = metric(feats).numpy()
  rng = np.random.default_rng(5)
  cosine = NeighborIndex(rng.normal(size=(12, 8)).astype(np.float32), rng.integers(0, 2, 12),
                         k=3, temperature=0.2, weight=0.5, classifier=1)
  metric_index = NeighborIndex(z[::-1].copy(), np.array([1, 0, 1, 1, 0, 0]), k=3,
                               temperature=0.2, weight=0.5, metric=metric)
  path = export_classifier(clf, schema, scaler, tmp_path / "folds", version=1,
                           neighbors=[cosine, metric_index], extra_heads=[other])
  out = _serve(path, serving_fields(table, schema))
  emb_other, logits_other = other.embed_and_logits(feats)
  sims, idx = cosine_neighbors(emb_other.numpy(), cosine.embeddings, 3)
  first = neighbor_label_distribution(sims, cosine.labels[idx], 2, 0.2)
  scores, idx = l2_neighbors(z, metric_index.embeddings, 3)
  second = neighbor_label_distribution(scores, metric_index.labels[idx], 2, 0.2)
  probs = 0.5 * (tf.nn.softmax(clf.embed_and_logits(feats)[1]) + tf.nn.softmax(logits_other))
  np.testing.assert_allclose(out["probabilities"],
                             0.5 * probs.numpy() + 0.25 * (first + second), atol=1e-5)
  with pytest.raises(ValueError, match="share k, temperature and weight"):
    TableServingModule(clf, schema, scaler, [cosine, NeighborIndex(
        z, metric_index.labels, k=2, temperature=0.2, weight=0.5, metric=metric)])
  with pytest.raises(ValueError, match="searches classifier 1; the export has 1"):
    TableServingModule(clf, schema, scaler, [cosine])


def test_tabm_ensemble_export_serves_the_members_mean(setup, tmp_path):
  table, schema, scaler, feats, _ = setup
  tf.keras.utils.set_random_seed(4)
  enc = training.build_encoder(1, schema.cardinalities, dim=8, num_heads=2, num_layers=1,
                               numeric_embedding="periodic", num_frequencies=2)
  clf = TabularEnsembleClassifier(enc, num_classes=2, ensemble_k=3)
  clf(feats)
  path = export_classifier(clf, schema, scaler, tmp_path / "tabm", version=1)
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  assert set(fn.structured_input_signature[1]) == {"amount", "colour", "g1", "g2", "g3"}
  assert set(fn.structured_outputs) == {"label", "class_id", "probabilities", "embedding",
                                        "nonfinite_input"}
  out = _serve(path, serving_fields(table, schema))
  members = tf.nn.softmax(clf.member_logits(feats), axis=-1).numpy()
  np.testing.assert_allclose(out["probabilities"], members.mean(axis=1), atol=1e-5)
  np.testing.assert_allclose(out["embedding"], clf.embed(feats).numpy(), atol=1e-5)


# Any legal header: spaces, hyphens, non-ASCII, a leading digit, capitals, and a valid
# name that a sanitised one would clash with.
ODD_CSV = """credit amount, e-mail, 日本語, 1st, Rooms, credit_amount, g 1, g 2, label
120, a, x, 1, 3, 5, 1, 0, good
, b, y, 2, 2, 6, 0, 1, bad
3000, a, x, 3, 4, 7, 0, 1, good
45, c, z, 4, 1, 8, 1, 0, bad
"""


def test_any_legal_header_exports_with_sanitised_mapped_inputs(tmp_path):
  path = tmp_path / "odd.csv"
  path.write_text(ODD_CSV, encoding="utf-8")
  table = tbl.read_table(path)
  schema = tbl.infer_schema(table, "label", tbl.label_classes(table, "label"), np.arange(4),
                            categorical=("e-mail",), onehot_groups=("g ",))
  keys = {"credit amount": "credit_amount_2", "1st": "col_1st", "Rooms": "Rooms",
          "credit_amount": "credit_amount", "e-mail": "e_mail", "日本語": "col_5",
          "g 1": "g_1", "g 2": "g_2"}
  assert signature_keys(schema) == keys
  raw = tbl.encode_features(table, schema)
  scaler = tbl.Scaler.fit(raw["continuous"])
  feats = {"continuous": scaler.transform(raw["continuous"]), "categorical": raw["categorical"]}
  tf.keras.utils.set_random_seed(0)
  clf = TabularClassifier(training.build_encoder(
      len(schema.continuous), schema.cardinalities, dim=8, num_heads=2, num_layers=1),
      num_classes=2)
  clf(feats)
  logged = []
  version = export_classifier(clf, schema, scaler, tmp_path / "m", version=1,
                              log=logged.append)
  assert logged == ["serving inputs renamed (column → signature input): 'credit amount' → "
                    "credit_amount_2, '1st' → col_1st, 'e-mail' → e_mail, '日本語' → col_5, "
                    "'g 1' → g_1, 'g 2' → g_2"]
  saved = json.loads((version / "assets" / SIGNATURE_INPUTS).read_text(encoding="utf-8"))
  assert saved == {"inputs": keys}
  fn = tf.saved_model.load(str(version)).signatures["serving_default"]
  assert set(fn.structured_input_signature[1]) == set(keys.values())
  out = fn(**rest.signature_tensors(fn, serving_fields(table, schema)))
  np.testing.assert_allclose(out["probabilities"].numpy(),
                             tf.nn.softmax(clf.embed_and_logits(feats)[1]).numpy(), atol=1e-5)
  fields = serving_fields(table, schema)
  fields["credit_amount_2"] = np.array(["120", "abc", "", "1"])
  with pytest.raises(ValueError, match=r"input 'credit_amount_2': cannot read a float32 "
                                       r"tensor: could not convert string to float"):
    rest.signature_tensors(fn, fields)
