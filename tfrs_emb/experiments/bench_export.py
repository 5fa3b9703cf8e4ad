"""The retrieval bench's case indexes as SavedModels: case elements → top-k case ids, the
query model being the run's CaseEncoder (its element vectors and aggregation).

Writes ``export_dir/jader_bruteforce/1`` and, with a ScaNN config, ``export_dir/jader_scann/1``.
Signature input ``elements`` tf.string [B, max_len] ("" padded, ``kind:name`` strings);
outputs ``ids`` (識別番号), ``scores`` and ``known_elements``.
"""

import pathlib
from typing import Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.experiments.bench_data import BenchData
from tfrs_emb.models import case_encoder
from tfrs_emb.retrieval import index as index_lib


def export_case_indexes(data: BenchData, aggregation: str, scann: Optional[index_lib.ScannConfig],
                        k: int, export_dir: str, probe_rows: Sequence[int]) -> dict:
  """Exports the BruteForce (and, when ``scann`` is given, ScaNN) index of
  ``data.embeddings[aggregation]`` behind ``CaseEncoder(run vocab, run vectors)``.

  Returns:
    {name: {"path", "probe_elements", "probe_ids", "probe_scores"}} computed in memory for
    ``probe_rows`` (cases used as queries), to compare with the reloaded models.
  """
  embeddings, cases = data.embeddings[aggregation], data.cases
  encoder = case_encoder.CaseEncoder(list(data.run.vocab), data.run.vectors,
                                     aggregation=aggregation)
  spec = tf.TensorSpec([None, None], tf.string, name="elements")
  probes = [cases.elements(int(i)) for i in probe_rows]
  width = max(len(p) for p in probes)
  elements = tf.constant([p + [""] * (width - len(p)) for p in probes])
  indexes = {"jader_bruteforce": index_lib.build_brute_force(
      embeddings, cases.ids, query_model=encoder, k=k)}
  if scann is not None:
    indexes["jader_scann"] = index_lib.build_scann(embeddings, cases.ids, query_model=encoder,
                                                   k=k, config=scann)
  out = {}
  for name, index in indexes.items():
    scores, ids = index(elements)
    path = index_lib.export_index(index, pathlib.Path(export_dir) / name,
                                  input_signature=spec, version=1)
    out[name] = {"path": str(path), "probe_elements": [list(p) for p in probes],
                 "probe_ids": np.asarray(ids.numpy(), bytes).astype(str).tolist(),
                 "probe_scores": scores.numpy().tolist()}
  return out
