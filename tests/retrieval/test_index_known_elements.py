"""A retrieval export whose query model is the CaseEncoder says when no element is known
instead of returning arbitrary ids (issue #13)."""

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models import case_encoder
from tfrs_emb.retrieval import build_brute_force, export_index, load_serving_fn


def test_unknown_or_empty_cases_get_no_ids_and_minus_inf(tmp_path):
  vocab = ["drug:A", "drug:B", "reac:C"]
  vectors = np.eye(3, dtype=np.float32)
  enc = case_encoder.CaseEncoder(vocab, vectors)
  cases = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
  index = build_brute_force(cases, ["c0", "c1", "c2", "c3"], query_model=enc, k=2)
  path = export_index(index, tmp_path / "similar",
                      input_signature=tf.TensorSpec([None, None], tf.string, name="elements"))
  out = load_serving_fn(path)(elements=tf.constant([["drug:B", ""], ["drug:未知", ""],
                                                    ["", ""]]))
  assert out["known_elements"].numpy().tolist() == [1, 0, 0]
  ids = out["ids"].numpy().astype(str)
  assert ids[0, 0] == "c1" and np.isclose(out["scores"].numpy()[0, 0], 1.0)
  assert (ids[1:] == "").all() and np.isneginf(out["scores"].numpy()[1:]).all()


def test_embedding_queries_keep_the_two_outputs(tmp_path):
  index = build_brute_force(np.eye(3, dtype=np.float32), ["a", "b", "c"], k=1)
  out = load_serving_fn(export_index(index, tmp_path / "plain"))(
      query_embedding=tf.constant([[0.0, 1.0, 0.0]]))
  assert sorted(out) == ["ids", "scores"] and out["ids"].numpy()[0, 0] == b"b"
