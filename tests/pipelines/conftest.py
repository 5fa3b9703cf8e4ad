"""Small exports for the pipeline tests, and the network closed while they run."""

import socket

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core.serving import save_for_serving
from tfrs_emb.models.case_encoder import CaseEncoder, export_case_encoder
from tfrs_emb.models.set_recommender import SetRecommender, export_set_recommender

ELEMENTS = [f"{kind}:{name}" for kind in ("drug", "reac", "hist") for name in
            ("アムロジピン", "ロサルタン", "頭痛", "悪心", "高血圧", "糖尿病", "x1", "x2")]
DIM = 8
TEXT_BUCKETS = 97

_LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


def _loopback(address) -> bool:
  host = address[0] if isinstance(address, tuple) else str(address)
  return isinstance(host, str) and host.startswith(_LOOPBACK)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
  """Every non-loopback connection from this process fails (as on a machine with no
  network); child processes get proxy variables pointing at a closed port."""
  real_connect = socket.socket.connect

  def connect(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
      raise OSError(f"network closed in tests (connect to {address!r})")
    return real_connect(sock, address)

  monkeypatch.setattr(socket.socket, "connect", connect)
  for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    monkeypatch.setenv(var, "http://127.0.0.1:9")
  for var in ("no_proxy", "NO_PROXY"):
    monkeypatch.setenv(var, "localhost,127.0.0.1,::1")


@pytest.fixture(scope="session")
def case_encoder_path(tmp_path_factory):
  vectors = np.random.default_rng(0).normal(size=(len(ELEMENTS), DIM)).astype(np.float32)
  encoder = CaseEncoder(ELEMENTS, vectors, aggregation="mean")
  return export_case_encoder(encoder, tmp_path_factory.mktemp("exports") / "case_encoder")


@pytest.fixture(scope="session")
def set_recommender_path(tmp_path_factory):
  rng = np.random.default_rng(1)
  inp = rng.normal(size=(len(ELEMENTS), DIM)).astype(np.float32)
  out = rng.normal(size=(len(ELEMENTS), DIM)).astype(np.float32)
  model = SetRecommender(ELEMENTS, inp, out, k=4)
  return export_set_recommender(model, tmp_path_factory.mktemp("exports") / "set2vec")


class _TextModel(tf.Module):
  """Hashed words → mean of a random table, L2-normalised: text [B] → embedding [B, D]."""

  def __init__(self):
    super().__init__()
    self.table = tf.Variable(np.random.default_rng(2).normal(
        size=(TEXT_BUCKETS, DIM)).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve(self, text):
    words = tf.strings.split(text)
    ids = tf.strings.to_hash_bucket_fast(words, TEXT_BUCKETS)
    vecs = tf.ragged.map_flat_values(tf.gather, self.table, ids)
    mean = tf.reduce_sum(vecs, axis=1) / tf.cast(
        tf.maximum(ids.row_lengths(), 1), tf.float32)[:, None]
    return {"embedding": tf.math.l2_normalize(mean, axis=-1)}


@pytest.fixture(scope="session")
def text_model_path(tmp_path_factory):
  module = _TextModel()
  return save_for_serving(module, tmp_path_factory.mktemp("exports") / "text_model",
                          {"serving_default": module.serve.get_concrete_function()})
