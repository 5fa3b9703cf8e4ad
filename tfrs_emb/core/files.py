"""Atomic file writing: a reader never sees a half-written metrics.json or report."""

import json
import os
import pathlib
import tempfile
from typing import Any, Mapping


def write_text(path: "str | pathlib.Path", text: str) -> pathlib.Path:
  """Writes ``text`` (UTF-8) to ``path`` through a temporary file and an atomic rename."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise
  return path


def write_json(path: "str | pathlib.Path", payload: Mapping[str, Any]) -> pathlib.Path:
  """Writes ``payload`` as indented UTF-8 JSON, atomically, creating parent folders."""
  return write_text(path, json.dumps(payload, indent=2, ensure_ascii=False,
                                     default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
  """numpy scalars and arrays, paths and other objects JSON does not know."""
  if hasattr(value, "tolist"):
    return value.tolist()
  if isinstance(value, pathlib.PurePath):
    return str(value)
  return float(value)
