"""What a jader_w2v run leaves for the steps after it (retrieval bench, index exports).

A run folder (``jader_w2v`` ``output_dir``) holds ``metrics.json`` (the whole config and
the release folder) and ``element_vectors.npz``: the trained Keras CBOW element vectors,
the ones its CaseEncoder export holds, with a digest of the whole run config and the
release's files. ``load`` refuses a folder without them, or whose vectors were written
for another config or release than metrics.json and the release folder now hold::

  jader_w2v.run(config)                          # → DIR/metrics.json, DIR/element_vectors.npz
  run = jader_run.load(DIR)                      # JaderRun: release, config, vocab, vectors
  cases = jader.load_cases(run.release, suspected_only=run.config["suspected_only"])
"""

import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Any, Dict, Sequence

import numpy as np

VECTORS_FILE = "element_vectors.npz"
METRICS_FILE = "metrics.json"
REMEDY = ("python -m trainers.jader_w2v --flagfile=configs/jader_w2v.flags "
          "--output_dir={run_dir}  (configs/jader_w2v_full.flags for the talk's scale)")


class RunFilesError(ValueError):
  """A run folder lacks a file the later steps need, or its files disagree."""


def release_digest(release: "str | os.PathLike") -> str:
  """sha1 of a release folder: every file's relative path and bytes (dot files skipped)."""
  root = pathlib.Path(release)
  paths = sorted(p for p in root.rglob("*") if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(root).parts))
  if not paths:
    raise RunFilesError(f"release folder {root} holds no files")
  h = hashlib.sha1()
  for path in paths:
    h.update(str(path.relative_to(root)).encode() + b"\0")
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 22), b""):
        h.update(block)
  return h.hexdigest()


def run_digest(config: Dict[str, Any], release: "str | os.PathLike") -> str:
  """sha1 of the whole config (JSON record, as in metrics.json) and the release's files."""
  text = json.dumps(json.loads(json.dumps(config)), sort_keys=True)
  return hashlib.sha1((text + release_digest(release)).encode()).hexdigest()


def write_vectors(out_dir: "str | os.PathLike", vocab: Sequence[str], vectors: np.ndarray,
                  counts: np.ndarray, config: Dict[str, Any],
                  release: "str | os.PathLike") -> pathlib.Path:
  """Writes ``out_dir/element_vectors.npz`` (vocab str [V], vectors float32 [V, D], counts
  int64 [V], digest) whole or not at all; returns its path."""
  path = pathlib.Path(out_dir) / VECTORS_FILE
  staged = path.with_name("." + VECTORS_FILE + ".partial")
  with open(staged, "wb") as f:
    np.savez(f, vocab=np.asarray(vocab, str), vectors=np.asarray(vectors, np.float32),
             counts=np.asarray(counts, np.int64), digest=run_digest(config, release))
  os.replace(staged, path)
  return path


@dataclasses.dataclass
class JaderRun:
  """A finished jader_w2v run's release, config and element vectors."""
  run_dir: pathlib.Path
  release: pathlib.Path
  config: Dict[str, Any]   # the run's whole config (metrics.json "config")
  vocab: np.ndarray        # str [V]
  vectors: np.ndarray      # float32 [V, D]
  counts: np.ndarray       # int64 [V] training counts
  digest: str


def load(run_dir: "str | os.PathLike") -> JaderRun:
  """The run in ``run_dir``; RunFilesError naming the file and the command that makes it
  when metrics.json or element_vectors.npz is missing or they disagree."""
  run_dir = pathlib.Path(run_dir)
  remedy = REMEDY.format(run_dir=run_dir)
  metrics_path, vectors_path = run_dir / METRICS_FILE, run_dir / VECTORS_FILE
  if not metrics_path.exists():
    raise RunFilesError(f"{metrics_path} not found: {run_dir} is not a jader_w2v run "
                        f"folder; make one with {remedy}")
  metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
  if not vectors_path.exists() or "release" not in metrics:
    raise RunFilesError(f"{vectors_path} not found: the run in {run_dir} predates the "
                        f"element vectors file (or its writing failed); rerun it with {remedy}")
  release = pathlib.Path(metrics["release"])
  if not release.is_dir():
    raise RunFilesError(f"{metrics_path}: release folder {release} not found; rerun the run "
                        f"with {remedy}")
  with np.load(vectors_path) as saved:
    vocab, vectors, counts, digest = (saved[k] for k in ("vocab", "vectors", "counts",
                                                         "digest"))
  expected = run_digest(metrics["config"], release)
  if str(digest) != expected:
    raise RunFilesError(
        f"{vectors_path} was written for another config or release (digest {digest}) than "
        f"{metrics_path}'s config and the files of {release} now give ({expected}); refusing "
        f"to reuse it: rerun the run with {remedy}")
  return JaderRun(run_dir, release, metrics["config"], vocab, vectors, counts, expected)
