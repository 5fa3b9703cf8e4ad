"""Embedding Projector files (tfrs_emb.reporting.projector)."""

import numpy as np

from tfrs_emb.reporting import projector


def test_projector_files_hold_one_row_per_element(tmp_path):
  vocab = ["drug:A", "reac:B\tC", "plain"]
  vectors = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
  out = projector.write_projector(vocab, vectors, tmp_path / "p", np.array([5, 3, 1]))
  np.testing.assert_allclose(np.loadtxt(out / "vectors.tsv", delimiter="\t"), vectors,
                             atol=1e-5)
  meta = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
  assert meta == ["element\tkind\tcount", "drug:A\tdrug\t5", "reac:B C\treac\t3",
                  "plain\t\t1"]
  bare = projector.write_projector(vocab[:1], vectors[:1], tmp_path / "q")
  assert (bare / "metadata.tsv").read_text(encoding="utf-8").splitlines()[1] == "drug:A\tdrug\t"
