"""SetRecommender: CBOW next-element scores, input elements excluded, explicit no-answer
for unknown input, export + reload through serving_default."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import sets
from tfrs_emb.models import set_recommender

VOCAB = ["milk", "bread", "jam", "eggs", "tea"]


@pytest.fixture(scope="module")
def tables():
  rng = np.random.default_rng(0)
  return (rng.standard_normal((5, 3)).astype(np.float32),
          rng.standard_normal((5, 3)).astype(np.float32))


def _expected(vin, vout, names, k):
  rows = [VOCAB.index(n) for n in names if n in VOCAB]
  scores = vout @ vin[rows].mean(0)
  scores[rows] = -np.inf
  order = np.argsort(-scores)[:k]
  return [VOCAB[i] for i in order if np.isfinite(scores[i])], scores[order]


def test_recommends_by_cbow_scores_excluding_inputs(tables):
  vin, vout = tables
  model = set_recommender.SetRecommender(VOCAB, vin, vout, k=3)
  out = model(tf.constant([["milk", "bread", ""], ["jam", "ghost", ""], ["ghost", "", ""]]))
  ids = out["ids"].numpy().astype(str)
  assert out["known_elements"].numpy().tolist() == [2, 1, 0]
  for row, names in ((0, ["milk", "bread"]), (1, ["jam"])):
    want, want_scores = _expected(vin, vout, names, 3)
    assert ids[row].tolist() == want
    np.testing.assert_allclose(out["scores"].numpy()[row], want_scores, rtol=1e-5)
  assert ids[2].tolist() == ["", "", ""] and (out["scores"].numpy()[2] == 0).all()
  emb = out["embedding"].numpy()
  np.testing.assert_allclose(emb[0], vin[:2].mean(0) / np.linalg.norm(vin[:2].mean(0)),
                             rtol=1e-5)
  assert (emb[2] == 0).all()


def test_fewer_candidates_than_k_pad_with_empty_ids(tables):
  vin, vout = tables
  model = set_recommender.SetRecommender(VOCAB, vin, vout, k=10)
  assert model.k == 5
  out = model(tf.ragged.constant([["milk", "bread", "jam"]]))
  ids = out["ids"].numpy().astype(str)[0]
  assert sorted(ids[:2]) == ["eggs", "tea"] and ids[2:].tolist() == [""] * 3


def test_config_round_trip_and_export_reload(tmp_path, tables):
  vin, vout = tables
  model = set_recommender.SetRecommender(VOCAB, vin, vout, k=2)
  clone = set_recommender.SetRecommender.from_config(model.get_config())
  assert clone.vocab == VOCAB and clone.k == 2 and clone.dim == 3
  path = set_recommender.export_set_recommender(model, tmp_path / "rec", version=3)
  assert path.name == "3" and (path / "saved_model.pb").exists()
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  batch = tf.constant([["tea", "eggs"], ["", ""]])
  served = fn(elements=batch)
  direct = model(batch)
  assert set(served) == {"ids", "scores", "embedding", "known_elements"}
  for key in served:
    np.testing.assert_array_equal(served[key].numpy(), direct[key].numpy())


def test_log_prior_is_added_to_scores(tables):
  vin, vout = tables
  prior = np.array([0, 0, 0, 0, 100], np.float32)     # tea: a huge prior wins
  model = set_recommender.SetRecommender(VOCAB, vin, vout, k=2, log_prior=prior)
  out = model(tf.constant([["milk", "bread"]]))
  plain, _ = _expected(vin, vout, ["milk", "bread"], 5)
  assert out["ids"].numpy().astype(str)[0].tolist() == ["tea"] + [
      w for w in plain if w != "tea"][:1]
  h = vin[:2].mean(0)
  assert out["scores"].numpy()[0, 0] == pytest.approx(vout[4] @ h + 100, rel=1e-5)


def test_a_repeated_element_answers_like_the_deduplicated_query(tmp_path, tables):
  vin, vout = tables
  model = set_recommender.SetRecommender(VOCAB, vin, vout, k=3)
  path = set_recommender.export_set_recommender(model, tmp_path / "m", version=1)
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  out = fn(elements=tf.constant([["milk"] * 7 + ["bread", "ghost", ""],
                                 ["milk", "bread"] + [""] * 8]))
  for name in ("ids", "scores", "embedding", "known_elements"):
    np.testing.assert_array_equal(out[name].numpy()[0], out[name].numpy()[1], err_msg=name)
  assert out["known_elements"].numpy().tolist() == [2, 2]
  want, _ = _expected(vin, vout, ["milk", "bread"], 3)
  assert out["ids"].numpy().astype(str)[0].tolist() == want


def _fused(tables, w, prior):
  vin, vout = tables
  ids = [0, 2, 3]   # milk, jam, eggs carry EASE weights
  b = np.array([[0, .5, -.2], [.3, 0, .1], [.4, .6, 0]], np.float32)
  model = set_recommender.SetRecommender(VOCAB, vin, vout, k=5, log_prior=prior,
                                         item_ids=ids, item_weights=b, cbow_weight=w)
  return model, ids, b


def test_fused_scores_are_x_b_plus_weighted_cbow(tmp_path, tables):
  vin, vout = tables
  prior = np.array([0.1, -0.3, 0.0, 0.2, -1.0], np.float32)
  model, ids, b = _fused(tables, 0.25, prior)
  out = model(tf.constant([["milk", "eggs", "tea"]]))
  rows = [0, 3, 4]
  want = 0.25 * (vout @ vin[rows].mean(0) + prior)
  x = np.array([1.0, 0.0, 1.0])   # milk, jam, eggs: milk and eggs are in the set
  want[ids] += x @ b
  want[rows] = -np.inf
  order = np.argsort(-want)[:2]
  assert out["ids"].numpy().astype(str)[0, :2].tolist() == [VOCAB[i] for i in order]
  np.testing.assert_allclose(out["scores"].numpy()[0, :2], want[order], rtol=1e-5)
  assert out["ids"].numpy().astype(str)[0, 2:].tolist() == ["", "", ""]
  clone = set_recommender.SetRecommender.from_config(model.get_config())
  assert clone.item_ids == ids and clone.cbow_weight == 0.25
  path = set_recommender.export_set_recommender(model, tmp_path / "fused", version=1)
  served = tf.saved_model.load(str(path)).signatures["serving_default"](
      elements=tf.constant([["milk", "eggs", "tea"], ["jam", "", ""]]))
  direct = model(tf.constant([["milk", "eggs", "tea"], ["jam", "", ""]]))
  for key in served:
    np.testing.assert_array_equal(served[key].numpy(), direct[key].numpy())


def test_zero_cbow_weight_ranks_by_ease_alone(tables):
  model, ids, b = _fused(tables, 0.0, None)
  out = model(tf.constant([["jam"]]))
  scores = dict(zip(out["ids"].numpy().astype(str)[0], out["scores"].numpy()[0]))
  assert scores["milk"] == pytest.approx(b[1, 0]) and scores["eggs"] == pytest.approx(b[1, 2])
  assert scores["bread"] == 0.0 and scores["tea"] == 0.0


@pytest.mark.parametrize("kwargs, words", [
    ({"item_ids": [0, 0]}, "distinct"), ({"item_ids": [7]}, "distinct"),
    ({"item_ids": [0, 1], "item_weights": np.zeros((3, 3))}, r"\[2, 2\]"),
    ({"item_weights": np.zeros((1, 1))}, "needs item_ids")])
def test_bad_item_weights_are_refused(tables, kwargs, words):
  with pytest.raises(ValueError, match=words):
    set_recommender.SetRecommender(VOCAB, *tables, **kwargs)


def test_spellings_of_the_training_file_resolve_after_export_and_reload(tmp_path, tables):
  """Training NFKC-normalises and strips names; the export strips in the graph and maps
  the file's own raw spellings (the loader's aliases) to their elements."""
  data = tmp_path / "jp.csv"
  data.write_text("ﾊﾞﾅﾅ, 牛乳,パン\nバナナ,牛乳\n", encoding="utf-8")
  corpus = sets.load_sets(data)
  assert corpus.vocab == ["バナナ", "牛乳", "パン"]
  assert corpus.aliases == {"ﾊﾞﾅﾅ": "バナナ", " 牛乳": "牛乳"}
  vin, vout = tables
  model = set_recommender.SetRecommender(corpus.vocab, vin[:3], vout[:3], k=2,
                                         aliases=corpus.aliases)
  path = set_recommender.export_set_recommender(model, tmp_path / "rec", version=1)
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  out = fn(elements=tf.constant([["ﾊﾞﾅﾅ", " 牛乳"], ["バナナ", "牛乳\t"], ["ﾊﾞﾅﾅ ", ""],
                                 ["ﾊﾞﾅﾅ", "バナナ"]]))
  assert out["known_elements"].numpy().tolist() == [2, 2, 1, 1]
  np.testing.assert_array_equal(out["ids"].numpy()[0], out["ids"].numpy()[1])
  assert [s.decode() for s in out["ids"].numpy()[0]] == ["パン", ""]
