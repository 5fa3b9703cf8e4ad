"""Atomic writes: the old file stays whole until the new one is complete."""

import json
import os
import re
import types

import numpy as np
import pytest

from tfrs_emb.core import files


def test_write_json_is_atomic_and_knows_numpy(tmp_path):
  path = files.write_json(tmp_path / "a" / "metrics.json", {"x": np.float32(0.5),
                                                            "v": np.arange(2)})
  assert json.loads(path.read_text(encoding="utf-8")) == {"x": 0.5, "v": [0, 1]}

  class Unserialisable:
    pass

  with pytest.raises(TypeError):
    files.write_json(path, {"bad": Unserialisable()})
  assert json.loads(path.read_text(encoding="utf-8"))["x"] == 0.5  # old content intact
  assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp left


def test_staged_dir_restores_the_old_folder_when_the_swap_fails(tmp_path, monkeypatch):
  target = tmp_path / "out"
  target.mkdir()
  (target / "a.txt").write_text("old")
  real_rename = os.rename
  calls = []

  def rename_fails_second_time(src, dst):
    calls.append(dst)
    if len(calls) == 2:
      raise OSError("rename failed (simulated)")
    real_rename(src, dst)

  monkeypatch.setattr(os, "rename", rename_fails_second_time)
  with pytest.raises(OSError, match="rename failed"):
    with files.staged_dir(target) as staging:
      (staging / "a.txt").write_text("new")
  assert (target / "a.txt").read_text() == "old"
  assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_check_output_dirs_names_the_flag_of_a_file_where_a_folder_is_expected(tmp_path):
  (tmp_path / "taken").write_text("a file")
  ok = types.SimpleNamespace(output_dir=str(tmp_path / "new" / "deeper"), export_dir="")
  files.check_output_dirs(ok, "output_dir", "export_dir")   # creatable, empty skipped
  assert not (tmp_path / "new").exists()                    # nothing created
  for value in (tmp_path / "taken", tmp_path / "taken" / "sub"):
    bad = types.SimpleNamespace(output_dir="", export_dir=str(value))
    with pytest.raises(files.OutputPathError,
                       match=re.escape(f"--export_dir={value}: {tmp_path / 'taken'} is a "
                                       "file, expected a folder")):
      files.check_output_dirs(bad, "output_dir", "export_dir")
