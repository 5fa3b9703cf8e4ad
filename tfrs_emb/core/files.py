"""Atomic file writing: a reader never sees a half-written metrics.json, report or folder."""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, Iterator, Mapping


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


@contextlib.contextmanager
def staged_dir(path: "str | pathlib.Path") -> Iterator[pathlib.Path]:
  """Yields an empty temporary folder beside ``path`` to write into; on success it
  becomes ``path``.

  An existing ``path`` is renamed aside, the new folder renamed in, and only then the old
  one deleted, so ``path`` is never missing a complete version for longer than between two
  renames. On an error the temporary folder is removed and ``path`` is left as it was.
  The temporary names start with "." (TF Serving loads only numeric version folders).
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial",
                                      dir=path.parent))
  try:
    yield tmp
    if not path.exists():
      os.rename(tmp, path)
      return
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old",
                                        dir=path.parent))
    os.rename(path, old)  # replaces the empty folder just made, keeping the name unique
    try:
      os.rename(tmp, path)
    except BaseException:
      os.rename(old, path)
      raise
    shutil.rmtree(old)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


class OutputPathError(ValueError):
  """An output folder flag that cannot be written (names the flag and the path)."""


def check_output_dirs(config: Any, *names: str) -> None:
  """Checks the output-folder fields ``names`` of ``config`` before any work is done.

  Each non-empty value must be a folder that exists or can be created: the path and
  every existing parent on it are folders (not files), and the nearest existing one is
  writable. Nothing is created.

  Raises:
    OutputPathError: "--NAME=VALUE: P is a file, expected a folder" or "... P is not
      writable".
  """
  for name in names:
    value = getattr(config, name)
    if not value:
      continue
    path = pathlib.Path(value)
    for part in (path, *path.parents):
      if not os.path.lexists(part):
        continue
      if not part.is_dir():
        raise OutputPathError(f"--{name}={value}: {part} is a file, expected a folder")
      if not os.access(part, os.W_OK | os.X_OK):
        raise OutputPathError(f"--{name}={value}: folder {part} is not writable")
      break
