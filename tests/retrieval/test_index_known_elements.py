"""Retrieval exports say when a query has no answer instead of returning arbitrary ids:
a CaseEncoder query with no known element (issue #13), and an all-zero or non-finite
query embedding (issue #29); a query embedding of the wrong size names the input."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models import case_encoder
from tfrs_emb.retrieval import ScannConfig, build_brute_force, build_scann, export_index
from tfrs_emb.retrieval import load_serving_fn


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


@pytest.mark.parametrize("builder,kwargs", [
    (build_brute_force, {}),
    (build_scann, {"config": ScannConfig(num_leaves=4, num_leaves_to_search=2,
                                         num_reordering_candidates=8)})])
def test_zero_and_nonfinite_embedding_queries_get_no_answer(tmp_path, builder, kwargs):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 4)).astype(np.float32)
  index = builder(x, [f"r{i}" for i in range(64)], k=2, **kwargs)
  fn = load_serving_fn(export_index(index, tmp_path / "plain"))
  queries = np.stack([x[5], np.zeros(4), [np.nan, 1, 1, 1], [1, -np.inf, 1, 1]]).astype(
      np.float32)
  out = fn(query_embedding=tf.constant(queries))
  assert sorted(out) == ["ids", "scores", "valid_query"]
  assert out["valid_query"].numpy().tolist() == [True, False, False, False]
  ids, scores = out["ids"].numpy().astype(str), out["scores"].numpy()
  assert ids[0, 0] == f"r{np.argmax(x @ x[5])}" and np.isfinite(scores[0]).all()
  assert (ids[1:] == "").all() and np.isneginf(scores[1:]).all()
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"input query_embedding: expected \[batch, 4\] float32 query "
                           r"embeddings, got shape\] \[2 3\]"):
    fn(query_embedding=tf.zeros([2, 3]))
