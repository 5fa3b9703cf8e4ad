"""TF-Hub text encoder layer and the encoder factory, on tiny SavedModels made here."""

import shutil

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.encoders.hub import HubHandleError, HubTextEncoder, cached_handle_dir
from tfrs_emb.encoders.registry import build_text_encoder
from tfrs_emb.models.article_tower import ArticleTower

BUCKETS, DIM = 64, 8


class _TinyTextModel(tf.Module):
  """strings [B] → hashed-bucket embedding [B, 8] (or a dict of it, as LaBSE)."""

  def __init__(self, as_dict):
    super().__init__()
    self.table = tf.Variable(
        np.random.default_rng(0).normal(size=[BUCKETS, DIM]).astype(np.float32))
    self.as_dict = as_dict

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def __call__(self, texts):
    vectors = tf.gather(self.table, tf.strings.to_hash_bucket_fast(texts, BUCKETS)) * 3.0
    return {"default": vectors, "pooled_output": -vectors} if self.as_dict else vectors


def expected(model, texts):
  out = model(tf.constant(texts))
  out = out["default"] if isinstance(out, dict) else out
  return tf.math.l2_normalize(out, axis=-1).numpy()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
  paths, models = {}, {}
  for as_dict in (False, True):
    model = _TinyTextModel(as_dict)
    path = tmp_path_factory.mktemp("hub") / ("dict" if as_dict else "tensor")
    tf.saved_model.save(model, str(path))
    paths[as_dict], models[as_dict] = str(path), model
  return paths, models


TEXTS = ["", "hello", "こんにちは", "hello"]


def test_hub_layer_on_local_savedmodel(tiny_models):
  paths, models = tiny_models
  layer = HubTextEncoder(paths[False])
  got = layer(tf.constant(TEXTS)).numpy()
  assert got.shape == (4, DIM)
  np.testing.assert_allclose(got, expected(models[False], TEXTS), atol=1e-6)
  np.testing.assert_allclose(got[1], got[3])
  assert HubTextEncoder.from_config(layer.get_config()).handle == paths[False]


def test_hub_layer_dict_output_needs_key(tiny_models):
  paths, models = tiny_models
  got = HubTextEncoder(paths[True], output_key="default")(tf.constant(TEXTS)).numpy()
  np.testing.assert_allclose(got, expected(models[True], TEXTS), atol=1e-6)
  with pytest.raises(ValueError, match="pooled_output"):
    HubTextEncoder(paths[True])(tf.constant(TEXTS))


def test_factory_and_tower_with_hub(tiny_models):
  paths, models = tiny_models
  tower = ArticleTower(f"hub:{paths[False]}")
  assert tower.output_dim == DIM
  np.testing.assert_allclose(tower.embed(TEXTS, batch_size=3),
                             expected(models[False], TEXTS), atol=1e-6)
  assert isinstance(build_text_encoder(f"hub:file://{paths[False]}"), HubTextEncoder)


def test_cached_url_loads_without_network(tiny_models, tmp_path, monkeypatch):
  paths, models = tiny_models
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
  handle = "https://tfhub.invalid/google/tiny-text/1"
  shutil.copytree(paths[False], cached_handle_dir(handle))
  got = HubTextEncoder(handle)(tf.constant(TEXTS)).numpy()
  np.testing.assert_allclose(got, expected(models[False], TEXTS), atol=1e-6)


def test_unreachable_handles_name_the_handle(tmp_path, monkeypatch):
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
  missing = str(tmp_path / "no_such_model")
  with pytest.raises(HubHandleError, match="no_such_model.*does not exist"):
    HubTextEncoder(missing)
  with pytest.raises(HubHandleError, match="holds no saved_model.pb"):
    HubTextEncoder(str(tmp_path))
  url = "https://tfhub.invalid/google/LaBSE/2"  # .invalid never resolves (RFC 2606)
  with pytest.raises(HubHandleError, match="tfhub.invalid/google/LaBSE/2.*unreachable"):
    build_text_encoder(f"hub:{url}")


def test_unknown_encoder_name():
  with pytest.raises(ValueError, match="unknown text encoder 'bert'"):
    build_text_encoder("bert")
  with pytest.raises(ValueError, match="unknown text encoder 'hub:'"):
    build_text_encoder("hub:")


def test_hub_layer_rejects_non_strings(tiny_models):
  paths, _ = tiny_models
  with pytest.raises(TypeError, match="UTF-8 strings"):
    HubTextEncoder(paths[False])(tf.constant([1, 2]))
