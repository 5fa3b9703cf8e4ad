"""TensorBoard Embedding Projector files: vectors.tsv and metadata.tsv of element vectors.

Usage::

  from tfrs_emb.reporting import projector
  projector.write_projector(result.vocab, result.vectors, "runs/x/projector", result.counts)
"""

import pathlib
from typing import Optional, Sequence

import numpy as np


def write_projector(vocab: Sequence[str], vectors: np.ndarray, out_dir: "str | pathlib.Path",
                    counts: Optional[np.ndarray] = None) -> pathlib.Path:
  """Writes vectors.tsv (float [len(vocab), dim], 5 decimals) and metadata.tsv into
  ``out_dir`` and returns it.

  metadata.tsv has a header row (element, kind, count) and one row per element: kind is
  the text before the first ":" of the element (e.g. "drug" in "drug:X"), count its
  entry of ``counts`` (empty without counts); tabs inside element names become spaces.
  """
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  np.savetxt(out / "vectors.tsv", np.asarray(vectors, np.float32), delimiter="\t", fmt="%.5f")
  with open(out / "metadata.tsv", "w", encoding="utf-8") as f:
    f.write("element\tkind\tcount\n")
    for i, v in enumerate(vocab):
      kind = v.split(":", 1)[0] if ":" in v else ""
      c = int(counts[i]) if counts is not None else ""
      f.write(f"{v.replace(chr(9), ' ')}\t{kind}\t{c}\n")
  return out
