"""Every export served outside Python (C++ LoadSavedModel), op audit, REST bodies.

For each SavedModel the package exports (tests/serving/exports.py):
- the C++ runner (TF Serving's loader, core TensorFlow + only the op libraries the
  audit names) answers the same as ``tf.saved_model.load`` in Python;
- its ops are core TensorFlow, tf.text (and ScaNN for ScaNN exports), never Python;
- TF Serving's row and columnar REST bodies, built from the signature, read back to
  tensors that give the direct call's outputs.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfrs_emb.core import cc_runner, op_audit, rest
from tests.serving.exports import EXPORT_NAMES

PER_EXPORT = pytest.mark.parametrize("export", EXPORT_NAMES, indirect=True)


def assert_same_outputs(got, want, atol):
  """Equal keys, dtypes and shapes; strings equal, numbers within atol. Returns max diff."""
  assert set(got) == set(want)
  worst = 0.0
  for name, w in want.items():
    g = np.asarray(got[name])
    w = np.asarray(w.numpy() if tf.is_tensor(w) else w)
    assert g.shape == w.shape, (name, g.shape, w.shape)
    if w.dtype == object:
      assert g.tolist() == w.tolist(), name
      continue
    assert g.dtype == w.dtype, (name, g.dtype, w.dtype)
    diff = float(np.max(np.abs(g.astype(np.float64) - w), initial=0.0))
    assert diff <= atol, (name, diff)
    worst = max(worst, diff)
  return worst


@PER_EXPORT
def test_cc_loader_answers_like_python(export, runner, record_property):
  audit = op_audit.audit(export.path, export.packages)
  inputs = export.sample_inputs()
  got = cc_runner.run_saved_model(runner, export.path, inputs, op_libraries=audit.libraries)
  want = export.signature(**{k: tf.constant(v) for k, v in inputs.items()})
  diff = assert_same_outputs(got, want, atol=1e-5)
  record_property("cc_vs_python_max_abs_diff", diff)
  print(f"\n{export.name}: C++ vs Python max abs diff {diff:.3g}; op libraries "
        f"{[lib.rsplit('/', 1)[-1] for lib in audit.libraries]}")


@PER_EXPORT
def test_ops_are_servable(export):
  audit = op_audit.audit(export.path, export.packages)
  assert audit.ops, "no ops read from saved_model.pb"
  assert not audit.problems, audit.problems
  print(f"\n{export.name}: {len(audit.ops)} op types; beyond core TensorFlow: "
        f"{sorted(audit.extra_ops)}")


@PER_EXPORT
def test_rest_bodies_give_the_direct_outputs(export):
  fn = export.signature
  inputs = export.sample_inputs(seed=1)
  direct = fn(**{k: tf.constant(v) for k, v in inputs.items()})
  names = sorted(direct)
  for form, body in rest.request_bodies(fn, inputs).items():
    sent = json.loads(json.dumps(body))  # what goes over the wire
    out = fn(**rest.tensors_from_request(sent, fn))
    assert_same_outputs(out, direct, atol=1e-6)
    response = json.loads(json.dumps(rest.response_body(out, row=form == "row")))
    back = rest.outputs_from_response(response, names)
    for name in names:
      want = direct[name].numpy()
      got = np.array(back[name], dtype=object if want.dtype == object else want.dtype)
      if want.dtype == object:
        got = np.vectorize(lambda s: s.encode() if isinstance(s, str) else s,
                           otypes=[object])(got)
      assert_same_outputs({name: got}, {name: want}, atol=1e-6)


@pytest.mark.parametrize("export", ["embedding_bruteforce", "embedding_scann"], indirect=True)
def test_embedding_queries_without_an_answer_outside_python(export, runner):
  """All-zero and non-finite query embeddings get ids "" and scores -inf in the C++ loader
  and through REST bodies (NaN / Infinity travel as TF Serving writes them); a query of
  the wrong size fails there naming the input and the expected size."""
  audit = op_audit.audit(export.path, export.packages)
  queries = export.sample_inputs()["query_embedding"]
  queries[1] = 0.0
  queries[2, 0] = np.nan
  queries[3, 1] = -np.inf
  got = cc_runner.run_saved_model(runner, export.path, {"query_embedding": queries},
                                  op_libraries=audit.libraries)
  assert got["valid_query"].tolist() == [True, False, False, False]
  assert (np.asarray(got["ids"])[1:] == b"").all() and np.isneginf(got["scores"][1:]).all()
  assert np.isfinite(got["scores"][0]).all() and (np.asarray(got["ids"])[0] != b"").all()
  fn = export.signature
  for body in rest.request_bodies(fn, {"query_embedding": queries}).values():
    out = fn(**rest.tensors_from_request(json.loads(json.dumps(body)), fn))
    assert out["ids"].numpy().tolist() == np.asarray(got["ids"]).tolist()
    np.testing.assert_allclose(out["scores"].numpy(), got["scores"], atol=1e-5)  # -inf == -inf
    back = rest.outputs_from_response(
        json.loads(json.dumps(rest.response_body(out, row="instances" in body))), list(out))
    assert np.isneginf(np.array(back["scores"], np.float32)[1:]).all()
  with pytest.raises(RuntimeError, match=r"input query_embedding: expected \[batch, 8\] "
                                         r"float32 query embeddings, got shape"):
    cc_runner.run_saved_model(runner, export.path, {"query_embedding": queries[:, :5]},
                              op_libraries=audit.libraries)


@pytest.mark.parametrize("export", ["covertype_classifier"], indirect=True)
def test_text_in_a_numeric_table_field_fails_naming_the_field(export, runner):
  """The table classifier's header "credit amount" is served as credit_amount; text sent
  for it fails naming that input in the C++ loader, a REST body and a direct call."""
  inputs = export.sample_inputs()
  assert inputs["credit_amount"].dtype == np.float32
  inputs["credit_amount"] = np.array([b"abc"] * len(inputs["credit_amount"]), object)
  with pytest.raises(RuntimeError, match="input credit_amount is string, the signature wants "
                                         "float"):
    cc_runner.run_saved_model(runner, export.path, inputs)
  fn = export.signature
  body = {"inputs": {k: (v.astype(str) if v.dtype == object else v).tolist()
                     for k, v in inputs.items()}}
  with pytest.raises(ValueError, match="input 'credit_amount': cannot read a float32 tensor"):
    rest.tensors_from_request(json.loads(json.dumps(body)), fn)
  with pytest.raises(ValueError, match="input 'credit_amount': cannot read a float32 tensor"):
    rest.signature_tensors(fn, inputs)
