"""SavedModel export in TF Serving layout (``BASE/NAME/VERSION/``).

A version folder appears complete or not at all: the SavedModel is written to a
temporary folder beside it and renamed into place (``files.staged_dir``); an export that
fails half-way leaves the previous version as it was and no temporary folder behind.
TensorFlow's save-time log lines (below ERROR) are held back while it is written.
"""

import contextlib
import logging
import pathlib
from typing import Iterator, Mapping, Optional

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import files


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
                     namespace_allowlist: Optional[list] = None,
                     overwrite: bool = True,
                     assets: Optional[Mapping[str, str]] = None) -> pathlib.Path:
  """Saves ``obj`` with the given signatures under ``export_dir/<version>``.

  Args:
    obj: the trackable (Keras model or tf.Module) that owns every variable used.
    export_dir: model base path, as TF Serving's ``--model_base_path``.
    signatures: signature name → concrete function (``serving_default`` expected).
    version: integer version folder; None picks the next free one.
    namespace_allowlist: custom-op namespaces to allow (e.g. ``["Scann"]``).
    overwrite: replace an existing version folder (once the new one is complete);
      False raises instead.
    assets: file name → UTF-8 text written into the version's ``assets/`` folder
      (descriptions for clients, e.g. how signature inputs map to columns).

  Returns:
    The version folder written.

  Raises:
    FileExistsError: the version exists and ``overwrite`` is False.
  """
  if "serving_default" not in signatures:
    raise ValueError("signatures must include 'serving_default' (TF Serving's default)")
  path = version_dir(export_dir, version)
  if path.exists() and not overwrite:
    raise FileExistsError(f"{path} already exists; pick another version or pass "
                          "overwrite=True to replace it")
  options = tf.saved_model.SaveOptions(namespace_whitelist=namespace_allowlist)
  with files.staged_dir(path) as staging, quiet_tensorflow_logs():
    tf.saved_model.save(obj, str(staging), signatures=dict(signatures), options=options)
    for name, text in (assets or {}).items():
      (staging / "assets").mkdir(exist_ok=True)
      (staging / "assets" / name).write_text(text, encoding="utf-8")
  return path


@contextlib.contextmanager
def quiet_tensorflow_logs(level: int = logging.ERROR) -> Iterator[None]:
  """Drops the records below ``level`` of the Python loggers TensorFlow writes through
  (``tensorflow``, which Keras also uses, and ``absl``, which the SavedModel writer uses)
  for the block: a filter on each logger, so a level the writer sets on them meanwhile
  does not let them through.

  While a SavedModel is written they log, per export, INFO and WARNING lines about its own
  choices ("Skipping full serialization of TF-Keras layer …", "Found untraced functions
  …", "Assets written to …", "Writing fingerprint …", renamed signature inputs), none of
  which needs the user's action.
  """
  def keep(record: logging.LogRecord) -> bool:
    return record.levelno >= level

  loggers = [logging.getLogger(name) for name in _TENSORFLOW_LOGGERS]
  for logger in loggers:
    logger.addFilter(keep)
  try:
    yield
  finally:
    for logger in loggers:
      logger.removeFilter(keep)


_TENSORFLOW_LOGGERS = ("tensorflow", "absl")
