"""Op audit: ops read from saved_model.pb, Python-only ops flagged, core measured."""

import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import op_audit
from tests.serving.exports import export_function


def test_core_model_needs_nothing_beyond_core(tmp_path):
  path = export_function(tmp_path, lambda x: {"y": tf.sort(x) * 2.0}, "plain")
  audit = op_audit.audit(path)
  assert {"Mul", "TopKV2"} <= audit.ops
  assert audit.problems == [] and audit.libraries == [] and not audit.extra_ops
  assert op_audit.op_registry().core >= audit.ops


@pytest.mark.parametrize("wrap", [
    lambda f: (lambda x: {"y": tf.numpy_function(f, [x], tf.float32)}),
    lambda f: (lambda x: {"y": tf.py_function(f, [x], tf.float32)}),
])
def test_python_ops_are_problems(tmp_path, wrap):
  path = export_function(tmp_path, wrap(lambda v: v * 2), "python")
  audit = op_audit.audit(path)
  assert audit.python_ops and audit.python_ops <= op_audit.PYTHON_OPS
  assert any("Python-only" in p for p in audit.problems)


def test_registry_is_measured_in_a_fresh_interpreter():
  registry = op_audit.op_registry()
  assert len(registry.core) > 1000 and "MatMul" in registry.core
  libraries = op_audit.op_libraries()
  if "tensorflow_text" in libraries:
    sp = [f for f in libraries["tensorflow_text"] if f.endswith("/_sentencepiece_tokenizer.so")]
    assert registry.provider("SentencepieceOp") == sp[0]
    assert "SentencepieceOp" not in registry.core
  with pytest.raises(ValueError, match="unknown op-library"):
    op_audit.audit(".", allowed_packages=("faiss",))
