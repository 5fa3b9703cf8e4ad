"""SavedModel versions are replaced only once the new one is complete (issue #13)."""

import logging
import os

import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import serving


def _module(value: float) -> tf.Module:
  module = tf.Module()
  module.v = tf.Variable(value)
  module.serve = tf.function(lambda x: {"y": x * module.v},
                             input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
  return module


def _export(export_dir, value, **kwargs):
  module = _module(value)
  return serving.save_for_serving(
      module, export_dir, {"serving_default": module.serve.get_concrete_function()},
      **kwargs)


def _served(path) -> float:
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]
  return float(fn(x=tf.constant([1.0]))["y"][0])


def test_failed_export_leaves_the_previous_version_and_no_temp_folder(tmp_path, monkeypatch):
  path = _export(tmp_path, 1.0, version=1)
  real_save = tf.saved_model.save

  def save_half_then_fail(obj, export_dir, **kwargs):
    real_save(obj, export_dir, **kwargs)                 # a complete SavedModel ...
    os.remove(os.path.join(export_dir, "saved_model.pb"))  # ... then half of it gone
    raise OSError("disk full (simulated)")

  monkeypatch.setattr(tf.saved_model, "save", save_half_then_fail)
  with pytest.raises(OSError, match=r"disk full \(simulated\)"):
    _export(tmp_path, 2.0, version=1)
  with pytest.raises(OSError, match=r"disk full \(simulated\)"):
    _export(tmp_path, 3.0, version=2)                    # no previous version
  assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]
  assert _served(path) == 1.0


def test_reexport_replaces_the_version_and_cleans_up(tmp_path):
  _export(tmp_path, 1.0, version=1)
  path = _export(tmp_path, 2.0, version=1)
  assert _served(path) == 2.0
  assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]
  assert _export(tmp_path, 3.0, version=None).name == "2"  # next free version


def test_overwrite_false_refuses_an_existing_version(tmp_path):
  _export(tmp_path, 1.0, version=1)
  with pytest.raises(FileExistsError, match=r"1 already exists; pick another version or "
                                            r"pass overwrite=True"):
    _export(tmp_path, 2.0, version=1, overwrite=False)
  assert _served(tmp_path / "1") == 1.0


def test_save_time_log_lines_are_held_back_whatever_the_levels(tmp_path):
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  loggers = [logging.getLogger("tensorflow"), logging.getLogger("absl")]
  before = [lg.level for lg in loggers]
  records = []
  handler = logging.Handler(logging.DEBUG)
  handler.emit = records.append
  for lg in loggers:
    lg.addHandler(handler)
  try:
    with serving.quiet_tensorflow_logs():
      logging.getLogger("absl").setLevel(logging.INFO)  # as a writer may do meanwhile
      tf.get_logger().warning("Skipping full serialization of a layer")
      absl_logging.warning("Found untraced functions")
      tf.get_logger().error("a real error")
    tf.get_logger().warning("after the block")
  finally:
    for lg, level in zip(loggers, before):
      lg.removeHandler(handler)
      lg.setLevel(level)
  assert [r.getMessage() for r in records] == ["a real error", "after the block"]
  assert _served(_export(tmp_path / "m", 2.0)) == 2.0
  assert not any(lg.filters for lg in loggers)
