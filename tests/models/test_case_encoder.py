"""CaseEncoder (Keras, servable) agrees with the numpy fast path; export and reload."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.models import case_encoder


@pytest.fixture(scope="module")
def small_cases(tmp_path_factory):
  out = tmp_path_factory.mktemp("jader_small")
  synthetic_jader.write_release(out, num_cases=400, seed=3)
  return jader.load_cases(out)


@pytest.fixture(scope="module")
def element_vectors(small_cases):
  """A trained-like table: two thirds of the elements (the rest unknown), random vectors."""
  rng = np.random.default_rng(0)
  keep = np.sort(rng.choice(len(small_cases.vocab), 2 * len(small_cases.vocab) // 3,
                            replace=False))
  vocab = [small_cases.vocab[i] for i in keep]
  return vocab, rng.standard_normal((len(vocab), 8)).astype(np.float32)


def test_map_elements_marks_unknowns():
  rows = case_encoder.map_elements(["a", "b", "c"], ["c", "a"])
  assert rows.tolist() == [1, -1, 0]


def test_case_encoder_export_reload_unknowns(tmp_path, small_cases, element_vectors):
  vocab, vectors = element_vectors
  batch = [small_cases.elements(i) for i in range(6)] + [["drug:存在しない薬"]]
  rows = case_encoder.map_elements(small_cases.vocab, vocab)[small_cases.indices]
  for agg in ("mean", "max"):
    enc = case_encoder.CaseEncoder(vocab, vectors, aggregation=agg)
    got = enc(tf.ragged.constant(batch)).numpy()
    fast = case_encoder.case_embeddings(small_cases.indptr, rows, vectors, agg)[:6]
    np.testing.assert_allclose(got[:6], fast, atol=1e-5)
    assert np.all(got[6] == 0.0)           # nothing known → zero vector
    with_unknown = enc(tf.ragged.constant([batch[0] + ["reac:未知の事象", ""]])).numpy()
    np.testing.assert_allclose(with_unknown[0], got[0], atol=1e-6)
    path = case_encoder.export_case_encoder(enc, tmp_path / f"enc_{agg}", version=1)
    assert (path / "saved_model.pb").exists() and path.name == "1"
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    width = max(len(b) for b in batch)
    dense = tf.constant([b + [""] * (width - len(b)) for b in batch])
    served = fn(elements=dense)["embedding"].numpy()
    np.testing.assert_allclose(served, got, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(got[:6], axis=1), 1.0, atol=1e-5)
