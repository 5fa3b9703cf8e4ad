"""Trainer flags checked at start-up: a bad value exits non-zero naming the flag and the
allowed range before any work (issue #13)."""

import pathlib
import subprocess
import sys

import pytest

from tfrs_emb.data import synthetic_jader

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module,flag,message", [
    ("trainers.make_synthetic_jader", "--cases=-5", r"--cases must be in [1, inf]"),
    ("trainers.make_synthetic_jader", "--cases=0", r"--cases must be in [1, inf]"),
    ("trainers.make_synthetic_jader", "--chunk_cases=0", r"--chunk_cases must be in [1, inf]"),
    ("trainers.make_synthetic_jader", "--seed=-1", r"--seed must be in [0, inf]"),
    ("trainers.make_synthetic_jader", "--out= ", "--out must be an output folder (got an "
                                                 "empty value)"),
    ("trainers.make_synthetic_sessions", "--sets=0", r"--sets must be in [1, inf]"),
    ("trainers.make_synthetic_sessions", "--noise=1", r"--noise must be in [0.0, 0.99]"),
    ("trainers.export_article_tower", "--encoder=usel",
     '--encoder must be "use" or "hub:HANDLE"'),
    ("trainers.export_article_tower", "--encoder=hub:", '--encoder must be "use" or '
                                                       '"hub:HANDLE"'),
    ("trainers.export_article_tower", "--version=0", "--version must be in [1, inf]"),
    ("trainers.export_article_tower", "--max_abs_diff=nan",
     "--max_abs_diff must be a finite number > 0"),
    ("trainers.export_article_tower", "--export_dir=", "--export_dir must be a model base "
                                                      "path (got an empty value)"),
])
def test_bad_flag_exits_naming_flag_and_range(tmp_path, module, flag, message):
  out = [f"--out={tmp_path / 'out'}"] if module.endswith("jader") else []
  proc = _run(module, *out, flag)  # the later --out wins
  assert proc.returncode != 0
  assert message in proc.stderr, proc.stderr[-2000:]
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("num_cases,chunk_cases,name,value", [(-5, 10, "num_cases", -5),
                                                               (0, 10, "num_cases", 0),
                                                               (10, 0, "chunk_cases", 0),
                                                               (2.5, 10, "num_cases", 2.5)])
def test_write_release_rejects_no_cases(tmp_path, num_cases, chunk_cases, name, value):
  with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1 \(a release needs "
                                       rf"at least one case\), got {value!r}"):
    synthetic_jader.write_release(tmp_path / "r", num_cases, chunk_cases=chunk_cases)
  assert not (tmp_path / "r").exists()
