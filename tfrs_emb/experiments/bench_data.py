"""The retrieval bench's database: the case embeddings of a jader_w2v run (its release and
its trained element vectors, ``jader_run``) or clustered random vectors, and the split of
its rows into evaluation and validation queries.

The bench trains nothing: ``jader_data`` reads the run's files, and ``train_or_reuse``
runs ``jader_w2v.run`` (the main job's path) only when asked to, reusing a run folder
whose files match the config exactly.
"""

import dataclasses
import json
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.data import clustered
from tfrs_emb.data import jader
from tfrs_emb.experiments import common
from tfrs_emb.experiments import jader_run
from tfrs_emb.experiments import jader_w2v
from tfrs_emb.experiments.bench_timing import timed
from tfrs_emb.models import case_encoder


@dataclasses.dataclass
class BenchData:
  """Case embeddings and what the metrics and exports need."""
  embeddings: Dict[str, np.ndarray]  # aggregation → float32 [N, D] unit rows
  sets: List[frozenset]              # element set of every row
  info: dict                         # JSON-ready provenance and timings
  cases: Optional[jader.JaderCases] = None
  run: Optional[jader_run.JaderRun] = None  # the vectors' run (jader source)


def jader_data(run_dir: str, aggregations: Sequence[str],
               log: common.Log = common.no_log) -> BenchData:
  """The cases of the run in ``run_dir``, embedded by its element vectors (the vectors
  its CaseEncoder holds) with each of ``aggregations``; RunFilesError when the folder
  lacks the run's files (``jader_run.load``)."""
  run = jader_run.load(run_dir)
  info = {"source": "jader", "run": str(run.run_dir), "release": str(run.release),
          "run_digest": run.digest}
  info["load_seconds"], cases = timed(lambda: jader.load_cases(
      run.release, suspected_only=run.config["suspected_only"]))
  log(f"{run.run_dir}: {cases.summary()}; {len(run.vocab):,d} element vectors")
  info.update(vocab=len(run.vocab), dim=int(run.vectors.shape[1]), num_cases=len(cases))
  case_rows = case_encoder.map_elements(cases.vocab, run.vocab)[cases.indices]
  embeddings = {a: case_encoder.case_embeddings(cases.indptr, case_rows, run.vectors, a)
                for a in aggregations}
  return BenchData(embeddings, cases.element_sets(), info, cases, run)


def clustered_data(num_cases: int, dim: int, seed: int,
                   aggregations: Sequence[str]) -> BenchData:
  """Clustered random unit vectors [num_cases, dim], the same for every aggregation."""
  x, sets = clustered.clustered_embeddings(num_cases, dim, seed=seed)
  return BenchData({a: x for a in aggregations}, sets,
                   {"source": "clustered", "num_items": len(x)})


def train_or_reuse(config: jader_w2v.Config, log: common.Log = common.no_log) -> str:
  """The run folder of ``config`` (its output_dir): reused when it holds a run of exactly
  this config and release (``jader_run.load``: digest of both), otherwise trained by
  ``jader_w2v.run``."""
  record = json.loads(json.dumps(common.config_dict(config)))
  try:
    existing = jader_run.load(config.output_dir)
  except jader_run.RunFilesError as e:
    log(f"training the jader_w2v run into {config.output_dir}: no run to reuse there "
        f"({str(e).partition(';')[0]})")
  else:
    if existing.config == record:
      log(f"reusing the jader_w2v run in {config.output_dir} (digest {existing.digest})")
      return config.output_dir
    changed = sorted(k for k in set(record) | set(existing.config)
                     if record.get(k) != existing.config.get(k))
    log(f"retraining the jader_w2v run in {config.output_dir}: its config differs in "
        f"{', '.join(changed)}")
  result = jader_w2v.run(config, log)
  log(result.table)
  return config.output_dir


def split_queries(sets: Sequence[frozenset], num_queries: int, num_validation: int,
                  seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """Sorted evaluation and validation rows, disjoint, among rows with a non-empty set."""
  rng = np.random.default_rng(seed)
  candidates = np.nonzero([len(s) > 0 for s in sets])[0]   # rank_dice skips empty sets
  query_ids = np.sort(rng.choice(candidates, min(num_queries, len(candidates)),
                                 replace=False))
  rest = np.setdiff1d(candidates, query_ids)
  validation_ids = np.sort(rng.choice(rest, min(num_validation, len(rest)), replace=False))
  return query_ids, validation_ids
