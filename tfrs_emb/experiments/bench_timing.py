"""Timing harness of the retrieval bench: exact truth of the query rows, search settings
timed interleaved, a table row timed in process and through its reloaded SavedModel, and
QPS-at-recall tables of the sweeps.

Query ids are database rows, so each query's own row is dropped from its results.
"""

import dataclasses
import os
import pathlib
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import timing
from tfrs_emb.core.linalg import drop_self
from tfrs_emb.core.linalg import exact_top_k
from tfrs_emb.metrics import ann
from tfrs_emb.metrics import ranking
from tfrs_emb.retrieval import index as index_lib
from tfrs_emb.retrieval import methods as methods_lib


def timed(fn: Callable):
  """(wall seconds, result) of ``fn()``."""
  t0 = time.perf_counter()
  out = fn()
  return time.perf_counter() - t0, out


@dataclasses.dataclass
class Truth:
  """Exact top-k of some database rows used as queries, the query itself dropped."""
  query_ids: np.ndarray   # int64 [Q]
  neighbors: np.ndarray   # int64 [Q, k]
  kth_scores: np.ndarray  # float32 [Q]

  @classmethod
  def compute(cls, db: np.ndarray, query_ids: np.ndarray, k: int) -> "Truth":
    scores, nn = exact_top_k(db[query_ids], db, k + 1)
    top, top_scores = drop_self(nn, query_ids, k, scores=scores)
    return cls(np.asarray(query_ids, np.int64), top, top_scores[:, -1])

  def recall(self, neighbors: np.ndarray) -> float:
    """recall@k vs exact of [Q, k+1] results that may contain the query."""
    k = self.neighbors.shape[1]
    return ranking.recall_vs_exact(drop_self(neighbors, self.query_ids, k), self.neighbors, k)

  def recall_ties(self, neighbors: np.ndarray, db: np.ndarray) -> float:
    """Tie-aware recall@k (``metrics.ann.tie_aware_recall``) of [Q, k+1] results."""
    top = drop_self(neighbors, self.query_ids, self.neighbors.shape[1])
    return ann.tie_aware_recall(top, self.kth_scores, db, db[self.query_ids])


def search_call(method: methods_lib.Method, params: Optional[dict], queries: np.ndarray,
                k: int) -> Callable[[], np.ndarray]:
  """A call that sets ``params`` (search-time knobs; None = leave) and searches."""
  def call():
    if params:
      method.set_search_params(**params)
    return method.search(queries, k)
  return call


def measure_settings(cases: Sequence[Tuple[methods_lib.Method, Optional[dict]]],
                     db: np.ndarray, truth: Truth, k: int, rounds: int,
                     repeat_below: float = 5.0) -> List[dict]:
  """QPS and recalls of each (method, search params) on ``truth``'s queries.

  The searches are timed interleaved (``core.timing.time_interleaved``: every setting once
  per round, ``rounds`` rounds; a search taking ``repeat_below`` seconds or more runs
  once), so load bursts on the shared machine do not decide which setting looks fastest.

  Returns:
    One dict per case: qps (fastest run), qps_median, spread (slowest / fastest run),
    seconds, seconds_median, runs, run_seconds (every run, in round order), recall,
    recall_ties.
  """
  queries = db[truth.query_ids]
  measured = timing.time_interleaved(
      [search_call(method, params, queries, k + 1) for method, params in cases],
      rounds=rounds, repeat_below=repeat_below)
  return [dict(t.summary(len(queries)), run_seconds=list(t.runs), recall=truth.recall(nn),
               recall_ties=truth.recall_ties(nn, db)) for t, nn in measured]


def _export_reloaded(method: methods_lib.Method, k: int, queries: np.ndarray,
                     batch_size: int, tmp_dir: str) -> Tuple[methods_lib.Reloaded, float]:
  """The method's TFRS layer exported, reloaded and called once; (reloaded, load seconds)."""
  path = index_lib.export_index(method.layer, pathlib.Path(tmp_dir) / "model", k=k,
                                version=None)
  reloaded = methods_lib.Reloaded(str(path), batch_size)
  # Load + one query: the first call of a loaded function builds its kernels.
  load_seconds, _ = timed(lambda: (reloaded.build(None, k), reloaded.search(queries[:1], k)))
  return reloaded, load_seconds


def _timing_fields(t: timing.Timing, count: int) -> dict:
  """A table row's timing columns: ``Timing.summary`` with the fastest run as query_seconds."""
  summary = t.summary(count)
  return {"query_seconds": summary["seconds"],
          **{c: summary[c] for c in ("qps", "qps_median", "spread", "runs")}}


def time_row(method: methods_lib.Method, queries: np.ndarray, k: int, rounds: int,
             tmp_dir: str) -> Tuple[dict, np.ndarray, Optional[np.ndarray]]:
  """Times the row's search in process and, for a TFRS layer, through its reloaded
  SavedModel (written under ``tmp_dir``) called in the same batches, the two interleaved
  (same load for both); a search under 5 s runs ``rounds`` times.

  Returns:
    (timing fields, in-process results [Q, k], reloaded results or None).
  """
  if method.layer is None:
    t, nn = timing.time_call(search_call(method, None, queries, k), repeats=rounds)
    return _timing_fields(t, len(queries)), nn, None
  reloaded, load_seconds = _export_reloaded(method, k, queries, method.batch_size, tmp_dir)
  (t, nn), (t_served, served) = timing.time_interleaved(
      [search_call(m, None, queries, k) for m in (method, reloaded)], rounds=rounds)
  fields = _timing_fields(t, len(queries))
  fields.update({"serving_" + c: v for c, v in _timing_fields(t_served, len(queries)).items()})
  fields["serving_load_seconds"] = load_seconds
  return fields, nn, served


def sweep_table(points: Sequence[dict], targets: Sequence[float]) -> List[dict]:
  """Median QPS of each swept method at each recall target, interpolated on its curve,
  for strict recall (``measure`` "recall") and tie-aware recall ("recall_ties")."""
  out = []
  for measure in ("recall", "recall_ties"):
    for name in dict.fromkeys(p["method"] for p in points):
      curve = [p for p in points if p["method"] == name]
      out.append(dict(method=name, measure=measure, **{
          f"qps@{t:g}": ann.qps_at_recall(curve, t, recall=measure, qps="qps_median")
          for t in targets}))
  return out


def thread_counts() -> dict:
  """Threads each library searches with (0 = TensorFlow's default: all usable CPUs)."""
  import faiss  # pylint: disable=g-import-not-at-top
  return {"faiss_omp": faiss.omp_get_max_threads(),
          "exact_top_k": len(os.sched_getaffinity(0)),
          "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
          "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
