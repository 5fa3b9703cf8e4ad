"""Synthetic JADER generator: deterministic in its seed, its output pinned per generator
version; the cache keyed by cases, seed and generator version, refusing other versions'
releases."""

import hashlib
import pathlib

import numpy as np
import pytest

from tfrs_emb.data import synthetic_jader
from tfrs_emb.data import synthetic_jader_sampler as sampler_lib
from tfrs_emb.data import synthetic_jader_tables


# sha256 of a 200-case release (seed 0, chunks of 64) per GENERATOR_VERSION: a change that
# alters the files written must bump the version (and add its digest here).
RELEASE_DIGESTS = {1: "f629877aa924c32f13d7c5138568acd561531945e28d1cea21bfed1da55ce165"}


def _digests(folder: pathlib.Path) -> dict:
  return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.iterdir()) if p.is_file()}


def test_release_is_a_function_of_seed_and_sizes(tmp_path):
  a = synthetic_jader.write_release(tmp_path / "a", 300, seed=5)
  b = synthetic_jader.write_release(tmp_path / "b", 300, seed=5)
  c = synthetic_jader.write_release(tmp_path / "c", 300, seed=6)
  assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
  assert _digests(tmp_path / "a")["drug202401.csv"] != (
      _digests(tmp_path / "c")["drug202401.csv"])
  assert a["rows"] == b["rows"] and a["rows"]["demo"] >= 300


def test_a_changed_release_needs_a_new_generator_version(tmp_path):
  synthetic_jader.write_release(tmp_path, 200, seed=0, chunk_cases=64)
  h = hashlib.sha256()
  for p in sorted(tmp_path.iterdir()):
    h.update(p.name.encode())
    h.update(p.read_bytes())
  assert h.hexdigest() == RELEASE_DIGESTS.get(synthetic_jader.GENERATOR_VERSION), (
      "the generator writes other files than its version did: bump GENERATOR_VERSION in "
      "tfrs_emb/data/synthetic_jader.py and record the new digest in RELEASE_DIGESTS")


def test_chunk_rows_classes_and_roles():
  vocab = sampler_lib.build_vocabulary(0)
  assert vocab.class_names == list(synthetic_jader_tables.class_names())
  rows = sampler_lib.chunk_rows(sampler_lib.Sampler(vocab), np.random.default_rng(0), 500)
  cls = rows.classes
  assert cls.primary.shape == (500,) and not (cls.extra_mask
                                              & (cls.extra == cls.primary[:, None])).any()
  d_case, d_name, d_role = rows.drug
  # Every case has a suspected drug of its primary class.
  drug_class = dict(zip(vocab.drugs, vocab.drug_class))
  suspected = {(c, drug_class[n]) for c, n, r in zip(d_case, d_name, d_role) if r == 0}
  assert all((c, p) in suspected for c, p in enumerate(cls.primary))
  for case, _ in (rows.reac, rows.hist):
    assert case.min() >= 0 and case.max() < 500
  assert set(np.unique(rows.reac[0])) == set(range(500))  # 1-3 typical events per case
  assert cls.describe()[0].split(";")[0] == str(cls.primary[0])


def test_cached_release_is_keyed_by_generator_version(tmp_path, monkeypatch):
  logs = []
  first = synthetic_jader.cached_release(tmp_path, 50, seed=1, log=logs.append)
  assert first.name == f"synthetic_50_s1_g{synthetic_jader.GENERATOR_VERSION}"
  assert (first / ".complete").read_text() == (
      f"generator_version={synthetic_jader.GENERATOR_VERSION}\n")
  assert synthetic_jader.cached_release(tmp_path, 50, seed=1, log=logs.append) == first
  assert "reusing" in logs[-1]
  # A changed generator gets a folder of its own and never reuses the old release.
  monkeypatch.setattr(synthetic_jader, "GENERATOR_VERSION",
                      synthetic_jader.GENERATOR_VERSION + 1)
  second = synthetic_jader.cached_release(tmp_path, 50, seed=1, log=logs.append)
  assert second != first and logs[-2].startswith("generating")
  # A folder whose marker names another version (or an old plain "ok") is generated again.
  (second / ".complete").write_text("ok\n")
  (second / "drug202401.csv").write_text("stale\n")
  synthetic_jader.cached_release(tmp_path, 50, seed=1, log=logs.append)
  assert "names another generator version" in logs[-3]
  assert (second / "drug202401.csv").read_text(encoding="cp932").startswith("識別番号")


def test_sizes_below_one_are_refused(tmp_path):
  with pytest.raises(ValueError, match="num_cases must be an integer >= 1"):
    synthetic_jader.write_release(tmp_path, 0)
  with pytest.raises(ValueError, match="chunk_cases must be an integer >= 1"):
    synthetic_jader.write_release(tmp_path, 10, chunk_cases=0)
  assert not list(tmp_path.iterdir())
