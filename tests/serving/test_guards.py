"""The serving checks fail where a model server would: missing op library, Python op,
a signature output TF Serving cannot fetch by name."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import cc_runner, op_audit
from tests.serving.exports import export_function


def test_scann_export_needs_the_scann_library(exports, runner):
  if "jader_scann" not in exports:
    pytest.skip("no ScaNN export here")
  export = exports["jader_scann"]
  audit = op_audit.audit(export.path, ("tensorflow_text",))  # a stock server's op set
  assert audit.unknown_ops and all(op.startswith("Scann>") for op in audit.unknown_ops)
  assert audit.problems
  with pytest.raises(RuntimeError, match="Scann"):
    cc_runner.run_saved_model(runner, export.path, export.sample_inputs())


def test_python_op_fails_in_the_cc_runner(tmp_path, runner):
  path = export_function(
      tmp_path, lambda x: {"y": tf.numpy_function(lambda v: v * 2, [x], tf.float32)},
      "python_op")
  assert op_audit.audit(path).python_ops == {"PyFunc"}
  with pytest.raises(RuntimeError, match="PyFunc"):
    cc_runner.run_saved_model(runner, path, {"x": np.ones(2, np.float32)})


def test_ragged_output_fails_in_the_cc_runner(tmp_path, runner):
  path = export_function(
      tmp_path, lambda x: {"y": tf.RaggedTensor.from_row_lengths(x, [1, 1])}, "ragged_output")
  assert not op_audit.audit(path).problems  # its ops are fine; its signature is not
  with pytest.raises(RuntimeError, match="not a plain tensor"):
    cc_runner.run_saved_model(runner, path, {"x": np.ones(2, np.float32)})
