"""BruteForce / ScaNN indexes: query model in front, SavedModel export, reload."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.retrieval import ScannConfig
from tfrs_emb.retrieval import build_brute_force
from tfrs_emb.retrieval import build_scann
from tfrs_emb.core.linalg import exact_top_k
from tfrs_emb.retrieval import export_index
from tfrs_emb.retrieval import load_serving_fn

N, D, K = 3000, 16, 5
TEXTS = tf.constant(["alpha beta", "gamma", "delta epsilon zeta", "alpha"])


@pytest.fixture(scope="session")
def data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(N, D)).astype(np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  return x, [f"case-{i}" for i in range(N)]


@pytest.fixture(scope="session")
def text_tower():
  """Functional tower: tf.string [B] → float32 [B, D] (hashed words, mean embedding)."""
  text = tf.keras.Input(shape=(), dtype=tf.string, name="text")
  words = tf.keras.layers.Lambda(lambda s: tf.strings.split(s).to_tensor(""))(text)
  ids = tf.keras.layers.Hashing(num_bins=97)(words)
  vec = tf.keras.layers.Embedding(97, D)(ids)
  out = tf.keras.layers.Lambda(lambda v: tf.reduce_mean(v, axis=1))(vec)
  return tf.keras.Model(text, out)


def _builders():
  return [("brute_force", build_brute_force, {}),
          ("scann", build_scann, dict(config=ScannConfig(
              num_leaves=30, num_leaves_to_search=10, num_reordering_candidates=50,
              anisotropic_quantization_threshold=0.2))),
          ("scann_spherical_int8", build_scann, dict(config=ScannConfig(
              num_leaves=30, num_leaves_to_search=10, num_reordering_candidates=50,
              spherical=True, quantize_centroids=True)))]


@pytest.mark.parametrize("name,builder,kwargs", _builders())
def test_text_query_model_export_reload_identical(tmp_path, data, text_tower, name, builder,
                                                  kwargs):
  x, ids = data
  index = builder(x, ids, query_model=text_tower, k=K, **kwargs)
  scores, top = index(TEXTS)
  assert top.shape == (4, K) and top.dtype == tf.string
  path = export_index(index, tmp_path / name)           # signature from the functional tower
  assert path == tmp_path / name / "1" and (path / "saved_model.pb").exists()
  out = load_serving_fn(path)(text=TEXTS)
  assert set(out) == {"ids", "scores"}
  np.testing.assert_array_equal(out["ids"].numpy(), top.numpy())
  np.testing.assert_allclose(out["scores"].numpy(), scores.numpy(), rtol=1e-6)
  if name == "brute_force":   # exact: equals exact_top_k on the tower's embeddings
    ref_s, ref_i = exact_top_k(text_tower(TEXTS).numpy(), x, K)
    np.testing.assert_array_equal(out["ids"].numpy().astype(str),
                                  np.asarray(ids)[ref_i])
    np.testing.assert_allclose(out["scores"].numpy(), ref_s, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,builder,kwargs", _builders())
def test_embedding_queries_export_reload_identical(tmp_path, data, name, builder, kwargs):
  x, ids = data
  index = builder(x, ids, k=K, **kwargs)
  q = x[:50] + 0.01
  scores, top = index(tf.constant(q))
  path = export_index(index, tmp_path / name, version=None)   # next free version: 1
  out = load_serving_fn(path)(query_embedding=tf.constant(q))
  np.testing.assert_array_equal(out["ids"].numpy(), top.numpy())
  np.testing.assert_allclose(out["scores"].numpy(), scores.numpy(), rtol=1e-6)
  # Each row's nearest item is itself (queries are slightly moved database rows).
  assert (out["ids"].numpy()[:, 0].astype(str) == np.asarray(ids)[:50]).mean() >= 0.96


def test_dict_input_signature(tmp_path, data):
  x, ids = data
  a = tf.keras.Input(shape=(D // 2,), name="left")
  b = tf.keras.Input(shape=(D // 2,), name="right")
  tower = tf.keras.Model({"left": a, "right": b}, tf.keras.layers.Concatenate()([a, b]))
  index = build_brute_force(x, ids, query_model=tower, k=3)
  spec = {"left": tf.TensorSpec([None, D // 2], tf.float32),
          "right": tf.TensorSpec([None, D // 2], tf.float32)}
  path = export_index(index, tmp_path / "two_inputs", input_signature=spec)
  out = load_serving_fn(path)(left=tf.constant(x[:4, :D // 2]), right=tf.constant(x[:4, D // 2:]))
  np.testing.assert_array_equal(out["ids"].numpy()[:, 0].astype(str), np.asarray(ids)[:4])


def test_bad_inputs_raise_clear_errors(data):
  x, ids = data
  with pytest.raises(ValueError, match="one string id per row"):
    build_brute_force(x, ids[:-1])
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    build_scann(x[0], ids[:1])
