"""CaseEncoder on unknown or empty input: zero vector plus an explicit known_elements
count, in process and in the exported signature (issue #13)."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models import case_encoder

VOCAB = ["drug:A", "drug:B", "reac:C"]
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_export_returns_known_elements_for_unknown_and_empty_cases(tmp_path, aggregation):
  enc = case_encoder.CaseEncoder(VOCAB, VECTORS, aggregation=aggregation)
  batch = tf.constant([["drug:A", "drug:B", "drug:A"],   # duplicates counted
                       ["drug:未知", "", ""],            # nothing known
                       ["", "", ""],                     # nothing at all
                       ["reac:C", "reac:未知", ""]])
  embedding, known = enc.encode(batch)
  assert known.numpy().tolist() == [3, 0, 0, 1]
  assert np.all(embedding.numpy()[1:3] == 0.0)
  np.testing.assert_allclose(embedding.numpy()[3], VECTORS[2] / np.sqrt(2), atol=1e-6)
  fn = tf.saved_model.load(str(case_encoder.export_case_encoder(
      enc, tmp_path, version=1))).signatures["serving_default"]
  out = fn(elements=batch)
  assert out["known_elements"].dtype == tf.int32
  assert out["known_elements"].numpy().tolist() == [3, 0, 0, 1]
  np.testing.assert_allclose(out["embedding"].numpy(), embedding.numpy(), atol=1e-6)
  empty = fn(elements=tf.zeros([2, 0], tf.string))   # cases with no element column
  assert empty["known_elements"].numpy().tolist() == [0, 0]
  assert empty["embedding"].shape == (2, 2) and np.all(empty["embedding"].numpy() == 0.0)
  assert fn(elements=tf.zeros([0, 3], tf.string))["embedding"].shape == (0, 2)


def test_reexport_refused_without_overwrite(tmp_path):
  enc = case_encoder.CaseEncoder(VOCAB, VECTORS)
  case_encoder.export_case_encoder(enc, tmp_path, version=1)
  with pytest.raises(FileExistsError, match=r"1 already exists; pick another version"):
    case_encoder.export_case_encoder(enc, tmp_path, version=1, overwrite=False)
