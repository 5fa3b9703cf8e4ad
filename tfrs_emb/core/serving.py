"""SavedModel export in TF Serving layout (``BASE/NAME/VERSION/``)."""

import pathlib
from typing import Mapping, Optional

import tfrs_emb  # noqa: F401
import tensorflow as tf


def version_dir(export_dir: "str | pathlib.Path", version: Optional[int] = None) -> pathlib.Path:
  """Returns ``export_dir/<version>``; with no version, one past the highest present."""
  export_dir = pathlib.Path(export_dir)
  if version is None:
    present = [int(p.name) for p in export_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    version = max(present, default=0) + 1
  if version < 1:
    raise ValueError(f"model version must be a positive integer, got {version}")
  return export_dir / str(version)


def save_for_serving(obj: tf.Module, export_dir: "str | pathlib.Path",
                     signatures: Mapping[str, tf.types.experimental.ConcreteFunction],
                     version: Optional[int] = 1,
                     namespace_allowlist: Optional[list] = None) -> pathlib.Path:
  """Saves ``obj`` with the given signatures under ``export_dir/<version>``.

  Args:
    obj: the trackable (Keras model or tf.Module) that owns every variable used.
    export_dir: model base path, as TF Serving's ``--model_base_path``.
    signatures: signature name → concrete function (``serving_default`` expected).
    version: integer version folder; None picks the next free one.
    namespace_allowlist: custom-op namespaces to allow (e.g. ``["Scann"]``).

  Returns:
    The version folder written.
  """
  if "serving_default" not in signatures:
    raise ValueError("signatures must include 'serving_default' (TF Serving's default)")
  path = version_dir(export_dir, version)
  options = tf.saved_model.SaveOptions(namespace_whitelist=namespace_allowlist)
  tf.saved_model.save(obj, str(path), signatures=dict(signatures), options=options)
  return path
