"""Read back the vectors an embedding run wrote (Parquet shards or Vertex import files).

Usage::

  ids, embeddings = read_vectors("runs/vectors")                  # vectors/*.parquet
  ids, embeddings = read_vectors("runs/vectors", source="vertex")  # vertex/*.json
  # ids: str array [N] (sorted), embeddings: float32 [N, D]

Only a complete output folder (with its ``_SUCCESS`` manifest) is read. Rows come back
sorted by id, so both sources give the same arrays. A duplicate id, a vector of another
width than the manifest's or a Vertex line that is not ``{"id", "embedding"}`` raises
``VectorFormatError`` naming the file (and line).
"""

import json
import pathlib
from typing import Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from tfrs_emb.pipelines import embed

SOURCES = ("parquet", "vertex")


class VectorFormatError(ValueError):
  """Vector files that do not match their manifest (names the file and what was expected)."""


def _parquet(folder: str, names, dim: int) -> Tuple[list, list]:
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  ids, rows = [], []
  for name in names:
    path = FileSystems.join(folder, embed.VECTORS_DIR, name)
    with FileSystems.open(path) as f:
      table = pq.read_table(f, columns=["id", "embedding"])
    ids.extend(table.column("id").to_pylist())
    flat = table.column("embedding").combine_chunks().flatten().to_numpy()
    rows.append(np.asarray(flat, np.float32).reshape(table.num_rows, -1 if table.num_rows else dim))
  return ids, rows


def _vertex(folder: str, names, dim: int) -> Tuple[list, list]:
  ids, rows = [], []
  for name in names:
    path = FileSystems.join(folder, embed.VERTEX_DIR, name)
    with FileSystems.open(path) as f:
      lines = f.read().decode("utf-8").splitlines()
    vecs = []
    for line_no, line in enumerate(lines, 1):
      try:
        obj = json.loads(line)
        ids.append(str(obj["id"]))
        vecs.append(obj["embedding"])
      except (json.JSONDecodeError, KeyError, TypeError):
        raise VectorFormatError(f"{path}:{line_no}: expected a JSON object with 'id' and "
                                "'embedding'") from None
    rows.append(np.asarray(vecs, np.float32).reshape(len(vecs), -1 if vecs else dim))
  return ids, rows


def read_vectors(folder: "str | pathlib.Path",
                 source: str = "parquet") -> Tuple[np.ndarray, np.ndarray]:
  """(ids str [N], embeddings float32 [N, D]) of a complete output folder, sorted by id.

  Raises:
    FileNotFoundError: no ``_SUCCESS`` manifest.
    VectorFormatError: see the module docstring.
  """
  if source not in SOURCES:
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
  folder = str(folder)
  manifest = embed.read_manifest(folder)
  names = manifest["vector_files"] if source == "parquet" else manifest["vertex_files"]
  dim = manifest["dim"]
  ids, rows = (_parquet if source == "parquet" else _vertex)(folder, names, dim)
  for name, block in zip(names, rows):
    if block.shape[1] != dim:
      raise VectorFormatError(f"{folder}/{name}: vectors of width {block.shape[1]}, the "
                              f"manifest says {dim}")
  ids = np.asarray(ids, object)
  embeddings = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
  if len(ids) != manifest["written"]:
    raise VectorFormatError(f"{folder}: {len(ids):,d} {source} vectors, the manifest says "
                            f"{manifest['written']:,d}")
  order = np.argsort(ids, kind="stable")
  ids, embeddings = ids[order], embeddings[order]
  dup = np.flatnonzero(ids[1:] == ids[:-1])
  if len(dup):
    raise VectorFormatError(f"{folder}: id {ids[dup[0]]!r} appears more than once in the "
                            f"{source} files")
  return ids, embeddings
