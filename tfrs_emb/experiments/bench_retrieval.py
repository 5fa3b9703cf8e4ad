"""BruteForce vs ScaNN vs faiss on JADER case embeddings (SPEC.md experiment 4).

Builds case embeddings (synthetic JADER → CBOW → mean / max case embeddings, or clustered
random vectors), then times every method on the same queries in one run, in process and,
for TFRS layers, through the exported and reloaded SavedModel. Query ids are database
rows, so each query's own row is dropped from its results (rank_dice@k requires it).

ScaNN's knobs are chosen on validation queries (disjoint from the evaluation queries):
an optional build-configuration search (``scann_config_search``) and, for the tuned row,
the fastest (leaves_to_search, reorder) reaching ``tuned_target_recall``. Search-time
sweeps of the built ScaNN / faiss IVF / faiss HNSW indexes give recall-vs-QPS curves and
the QPS at each of ``recall_targets``.

Usage::

  from tfrs_emb.experiments import bench_retrieval
  result = bench_retrieval.run(bench_retrieval.Config(num_cases=10_000), log=print)
  result.rows[0]["qps"], result.sweep_table
"""

import dataclasses
import gc
import hashlib
import os
import pathlib
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import timing
from tfrs_emb.core.linalg import drop_self
from tfrs_emb.core.linalg import exact_top_k
from tfrs_emb.data import clustered
from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.experiments import common
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import ann
from tfrs_emb.metrics import ranking
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow
from tfrs_emb.reporting import machine_conditions
from tfrs_emb.retrieval import index as index_lib
from tfrs_emb.retrieval import methods as methods_lib

# The talk's published table (SPEC.md experiment 4): seconds and rank_dice@10.
TALK_ROWS = (
    dict(search="BruteForce", aggregation="mean", index_seconds=0.0692, query_seconds=111.0,
         score=0.525),
    dict(search="BruteForce", aggregation="max", index_seconds=0.0459, query_seconds=104.0,
         score=0.512),
    dict(search="ScaNN", aggregation="mean", index_seconds=14.5, query_seconds=3.14,
         score=0.490),
    dict(search="ScaNN (reorder=100)", aggregation="mean", index_seconds=14.2,
         query_seconds=3.80, score=0.522),
)

METHOD_KEYS = ("bruteforce", "scann", "scann_reorder", "scann_tuned", "exact", "faiss_flat",
               "faiss_ivf", "faiss_hnsw")


@dataclasses.dataclass
class Config:
  """Flags of ``trainers.bench_retrieval`` (same names)."""
  source: str = field("jader", "jader: synthetic (or --jader_dir) JADER → CBOW → case "
                      "embeddings; clustered: random clustered unit vectors (development).",
                      choices=("jader", "clustered"))
  jader_dir: str = field("", "Existing JADER release folder (real or synthetic); empty = "
                         "the synthetic release of --num_cases in --cache_dir.")
  num_cases: int = field(692_821, "Cases of the synthetic release (the talk's).", lower=2)
  num_queries: int = field(21_072, "Query cases (the talk's).", lower=1)
  num_validation: int = field(2000, "Validation queries (disjoint from the evaluation "
                              "queries) for every ScaNN choice.", lower=1)
  k: int = field(10, "Results per query (the query itself excluded).", lower=1)
  seed: int = field(0, "Seed for data, queries and training.")
  dim: int = field(64, "Embedding size.", lower=1)
  cbow_epochs: int = field(5, "CBOW epochs.", lower=1)
  cbow_min_count: int = field(5, "CBOW min_count.", lower=1)
  cbow_learning_rate: float = field(0.07, "CBOW initial learning rate (0.07 diverges at "
                                    "~700k cases; 0.025 there).", lower=0)
  methods: Tuple[str, ...] = field(
      ("bruteforce_mean", "bruteforce_max", "scann_mean", "scann_reorder_mean",
       "scann_tuned_mean", "exact_mean", "faiss_flat_mean", "faiss_ivf_mean",
       "faiss_hnsw_mean"),
      "Rows to run, in order: <method>_<mean|max>, method in " + ", ".join(METHOD_KEYS) + ".")
  bruteforce_batch: int = field(1024, "Queries per TFRS BruteForce call (in process and "
                                "through its reloaded SavedModel).", lower=1)
  scann_batch: int = field(1024, "Queries per TFRS ScaNN call (batched-parallel search; in "
                           "process and through its reloaded SavedModel).",
                           lower=1)
  scann_leaves: int = field(1000, "ScaNN / ScaNN reorder rows: num_leaves.", lower=1)
  scann_leaves_to_search: int = field(50, "... num_leaves_to_search.", lower=1)
  scann_reorder: int = field(100, "ScaNN (reorder) row: num_reordering_candidates.", lower=1)
  tuned_leaves: int = field(2000, "Tuned ScaNN: num_leaves.", lower=1)
  tuned_leaves_to_search: int = field(30, "Tuned ScaNN: num_leaves_to_search (build "
                                      "default; the grid choice overrides it).", lower=1)
  tuned_reorder: int = field(60, "Tuned ScaNN: num_reordering_candidates.", lower=1)
  tuned_dims_per_block: int = field(2, "Tuned ScaNN: dimensions_per_block.", lower=1)
  tuned_aq_threshold: float = field(0.2, "Tuned ScaNN: anisotropic_quantization_threshold "
                                    "(nan = plain product quantization).")
  tuned_scoring: str = field("ah", "Tuned ScaNN: scoring within the searched leaves "
                             "(ah, or float32 brute force).", choices=index_lib.SCORINGS)
  tuned_training_sample_size: int = field(100_000, "Tuned ScaNN: rows sampled to train the "
                                          "tree and the codebooks.", lower=1)
  tuned_spherical: bool = field(False, "Tuned ScaNN: spherical k-means tree (unit rows).")
  tuned_quantize_centroids: bool = field(False, "Tuned ScaNN: int8 centroids for leaf "
                                         "selection.")
  tuned_grid_leaves: Tuple[int, ...] = field(
      (10, 15, 20, 30, 40, 60, 80), "Tuned ScaNN: leaves_to_search values per 1,000 leaves "
      "(scaled by the tuned build's num_leaves / 1000) tried on the validation queries.")
  tuned_grid_reorder: Tuple[int, ...] = field(
      (40, 60, 100, 150, 250), "Tuned ScaNN: reorder values tried on the validation queries.")
  tuned_target_recall: float = field(0.96, "Tuned ScaNN: fastest grid setting whose "
                                     "validation recall@k reaches this.", lower=0, upper=1)
  scann_config_search: bool = field(False, "Search ScaNN build configurations on the "
                                    "validation queries and report their Pareto front.")
  tuned_from_search: bool = field(False, "With --scann_config_search: the tuned ScaNN build "
                                  "(leaves, scoring, AH knobs, training rows) is the searched "
                                  "build fastest at --tuned_target_recall on the validation "
                                  "queries, replacing the --tuned_* build flags.")
  search_leaves: Tuple[int, ...] = field((1000, 2000, 4000), "Config search: num_leaves.")
  search_dims_per_block: Tuple[int, ...] = field((2, 4), "Config search: "
                                                 "dimensions_per_block.")
  search_aq_thresholds: Tuple[float, ...] = field((0.2,), "Config search: anisotropic "
                                                  "quantization thresholds.")
  search_training_sample_sizes: Tuple[int, ...] = field((100_000,), "Config search: "
                                                        "training sample sizes.")
  search_trees: Tuple[str, ...] = field(("generic",), "Config search: tree variants, "
                                        "generic or spherical k-means, each optionally "
                                        "with +int8 centroids (e.g. spherical+int8).")
  search_scorings: Tuple[str, ...] = field(("ah",), "Config search: scorings (ah, float32; the "
                                           "AH knobs only vary for ah).")
  search_grid_leaves: Tuple[int, ...] = field(
      (5, 10, 20, 40, 80), "Config search: leaves_to_search per 1,000 leaves tried on each "
      "build (scaled by num_leaves / 1000).")
  search_grid_reorder: Tuple[int, ...] = field(
      (20, 40, 80, 160, 320), "Config search: reorder values tried on each build.")
  timing_rounds: int = field(5, "Runs of every search shorter than 5 s, interleaved across "
                             "the settings compared (grid, config search, sweep; a row with "
                             "its reloaded SavedModel); the fastest run is kept, the median "
                             "and the spread (slowest / fastest) reported.", lower=1)
  faiss_ivf_nlist: int = field(2048, "faiss IVF lists.", lower=1)
  faiss_ivf_nprobe: int = field(16, "faiss IVF lists probed (table row).", lower=1)
  faiss_hnsw_m: int = field(16, "faiss HNSW M.", lower=2)
  faiss_hnsw_ef_construction: int = field(40, "faiss HNSW efConstruction.", lower=1)
  faiss_hnsw_ef_search: int = field(64, "faiss HNSW efSearch (table row).", lower=1)
  sweep: bool = field(True, "Sweep search-time knobs of the built indexes (curves, PNG).")
  sweep_scann: Tuple[str, ...] = field(("10:20", "20:40", "30:60", "50:100", "80:200"),
                                       "Tuned-ScaNN sweep points leaves_to_search:reorder, "
                                       "leaves_to_search per 1,000 leaves (scaled as "
                                       "--tuned_grid_leaves).")
  sweep_ivf_nprobe: Tuple[int, ...] = field((4, 8, 16, 32, 64), "IVF nprobe sweep.")
  sweep_hnsw_ef: Tuple[int, ...] = field((16, 32, 64, 128, 256), "HNSW efSearch sweep.")
  recall_targets: Tuple[float, ...] = field((0.95, 0.97, 0.99), "Recall@k targets of the "
                                            "sweep table (QPS interpolated on each curve).")
  export_dir: str = field("", "If set (and source=jader): CaseEncoder + BruteForce / tuned "
                          "ScaNN SavedModels (case elements → case ids) under "
                          "<export_dir>/jader_bruteforce/1 and <export_dir>/jader_scann/1.")
  output_dir: str = field("runs/bench_retrieval", "Where outputs are written.")
  cache_dir: str = field("", "Synthetic releases and trained CBOW vectors, reused across "
                         "runs with the same settings; empty = <output_dir>/cache.")


@dataclasses.dataclass
class BenchData:
  """Case embeddings and what the metrics and exports need."""
  embeddings: Dict[str, np.ndarray]  # aggregation → float32 [N, D] unit rows
  sets: List[frozenset]              # element set of every row
  info: dict                         # JSON-ready provenance and timings
  cases: Optional[jader.JaderCases] = None
  cbow_vocab: Optional[np.ndarray] = None    # str [V]
  cbow_vectors: Optional[np.ndarray] = None  # float32 [V, D]


@dataclasses.dataclass
class BenchRetrievalResult:
  """One run: a row per method, the sweeps and the ScaNN choices."""
  config: dict
  data: dict
  num_items: int
  num_queries: int
  k: int
  rows: List[dict]            # one per method key, in config order
  sweep: List[dict]           # method, setting, qps, recall (evaluation queries)
  sweep_table: List[dict]     # method, then "qps@<target>" per recall target
  tuning: List[dict]          # tuned ScaNN: validation grid
  tuned_choice: Optional[dict]
  tuned_build: dict           # the tuned row's build knobs (from the flags or the search)
  config_search: List[dict]   # ScaNN build × search points on the validation queries
  config_front: List[dict]    # their Pareto front
  exports: dict
  conditions_before: dict
  conditions_after: dict
  threads: dict               # thread counts each library searched with
  total_seconds: float
  talk_rows: Sequence[dict] = TALK_ROWS


def _timed(fn: Callable):
  t0 = time.perf_counter()
  out = fn()
  return time.perf_counter() - t0, out


def _cbow_cache_path(config: Config, cache_dir: pathlib.Path, release: pathlib.Path):
  key = hashlib.sha1(repr((str(release.resolve()), config.dim, config.cbow_epochs,
                           config.cbow_min_count, config.seed,
                           config.cbow_learning_rate)).encode()).hexdigest()[:12]
  return cache_dir / f"cbow_{key}.npz"


def jader_data(config: Config, log: common.Log = common.no_log) -> BenchData:
  """JADER cases → CBOW element vectors (cached) → unit case embeddings per aggregation."""
  cache_dir = pathlib.Path(config.cache_dir or pathlib.Path(config.output_dir) / "cache")
  t0 = time.perf_counter()
  if config.jader_dir:
    release = pathlib.Path(config.jader_dir)
    info = {"source": "jader", "release": str(release)}
  else:
    release = synthetic_jader.cached_release(cache_dir, config.num_cases, seed=config.seed,
                                             log=log)
    info = {"source": "jader",
            "release": f"synthetic, {config.num_cases} cases, seed {config.seed}"}
  info["generate_seconds"] = time.perf_counter() - t0
  info["load_seconds"], cases = _timed(lambda: jader.load_cases(release))
  log(cases.summary())
  cache = _cbow_cache_path(config, cache_dir, release)
  if cache.exists():
    saved = np.load(cache)
    vocab, vectors = saved["vocab"], saved["vectors"]
    info.update(cbow_seconds=float(saved["train_seconds"]), cbow_cached=str(cache))
    log(f"reusing CBOW vectors from {cache}")
  else:
    result = cbow.train_cbow(cases.indptr, cases.indices, cases.vocab, dim=config.dim,
                             epochs=config.cbow_epochs, min_count=config.cbow_min_count,
                             learning_rate=config.cbow_learning_rate, seed=config.seed,
                             verbose=0)
    vocab, vectors = np.asarray(result.vocab, str), result.vectors
    log(f"CBOW: {len(vocab):,d} elements, {result.train_seconds:.1f} s, "
        f"{result.tokens_per_s:,.0f} tokens/s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vocab=vocab, vectors=vectors, train_seconds=result.train_seconds)
    info.update(cbow_seconds=result.train_seconds)
  info.update(cbow_vocab=len(vocab), num_cases=len(cases))
  case_rows = case_encoder.map_elements(cases.vocab, vocab)[cases.indices]
  aggregations = sorted({spec.rpartition("_")[2] for spec in config.methods})
  embeddings = {a: case_encoder.case_embeddings(cases.indptr, case_rows, vectors, a)
                for a in aggregations}
  return BenchData(embeddings, cases.element_sets(), info, cases, vocab, vectors)


def clustered_data(config: Config) -> BenchData:
  """Clustered random unit vectors, the same matrix for every aggregation."""
  x, sets = clustered.clustered_embeddings(config.num_cases, config.dim, seed=config.seed)
  aggregations = sorted({spec.rpartition("_")[2] for spec in config.methods})
  return BenchData({a: x for a in aggregations}, sets,
                   {"source": "clustered", "num_items": len(x)})


def _scann_pairs(specs: Sequence[str]) -> List[Tuple[int, int]]:
  return [tuple(int(v) for v in s.split(":")) for s in specs]


def _per_1000_leaves(searched: int, num_leaves: int) -> int:
  """leaves_to_search given per 1,000 leaves → for a build of ``num_leaves`` (>= 1)."""
  return max(1, round(searched * num_leaves / 1000))


def _scaled_grid(pairs: Sequence[Tuple[int, int]], num_leaves: int) -> List[Tuple[int, int]]:
  """(leaves_to_search per 1,000 leaves, reorder) pairs scaled to ``num_leaves``, without
  the duplicates rounding makes."""
  return list(dict.fromkeys((_per_1000_leaves(a, num_leaves), b) for a, b in pairs))


def _tuned_build_kwargs(config: Config) -> dict:
  return dict(num_leaves=config.tuned_leaves, num_leaves_to_search=config.tuned_leaves_to_search,
              num_reordering_candidates=config.tuned_reorder,
              dimensions_per_block=config.tuned_dims_per_block,
              anisotropic_quantization_threshold=config.tuned_aq_threshold,
              training_sample_size=config.tuned_training_sample_size,
              scoring=config.tuned_scoring, spherical=config.tuned_spherical,
              quantize_centroids=config.tuned_quantize_centroids)


# Choices compare the median of each point's interleaved runs: the fastest run lets one
# quiet moment on a shared machine pick a setting far above the target recall.
CHOICE_QPS = "qps_median"


def build_from_search(config: Config, points: Sequence[dict]) -> Config:
  """``config`` with the tuned build knobs of the config-search point that is fastest
  (``CHOICE_QPS``) among those reaching ``tuned_target_recall`` (unchanged when none
  reaches it)."""
  best = ann.fastest_at_recall(points, config.tuned_target_recall, qps=CHOICE_QPS)
  if best is None:
    return config
  return dataclasses.replace(
      config, tuned_leaves=best["num_leaves"], tuned_scoring=best["scoring"],
      tuned_training_sample_size=best["training_sample_size"],
      tuned_dims_per_block=best.get("dimensions_per_block", config.tuned_dims_per_block),
      tuned_aq_threshold=best.get("anisotropic_quantization_threshold",
                                  config.tuned_aq_threshold),
      tuned_spherical=best.get("spherical", config.tuned_spherical),
      tuned_quantize_centroids=best.get("quantize_centroids",
                                        config.tuned_quantize_centroids))


def _scoring_label(config: Config) -> str:
  tree = ("spherical" if config.tuned_spherical else "generic") + " tree" + (
      ", int8 centroids" if config.tuned_quantize_centroids else "")
  if config.tuned_scoring == "ah":
    return (f"{tree}, AH {config.tuned_dims_per_block} dims/block "
            f"t={config.tuned_aq_threshold}")
  return f"{tree}, {config.tuned_scoring} scoring"


def _method_table(config: Config) -> Dict[str, Tuple[str, Callable[[], methods_lib.Method]]]:
  """Method key → (display label, factory)."""
  base = dict(num_leaves=config.scann_leaves, num_leaves_to_search=config.scann_leaves_to_search)
  return {
      "bruteforce": ("bruteforce", lambda: methods_lib.TfrsBruteForce(config.bruteforce_batch)),
      "scann": (f"scann ({config.scann_leaves} leaves, {config.scann_leaves_to_search} "
                "searched)", lambda: methods_lib.TfrsScaNN(
                    batch_size=config.scann_batch, num_reordering_candidates=None, **base)),
      "scann_reorder": (f"scann (reorder={config.scann_reorder})", lambda: methods_lib.TfrsScaNN(
          batch_size=config.scann_batch, num_reordering_candidates=config.scann_reorder,
          **base)),
      "scann_tuned": (
          f"scann tuned ({config.tuned_leaves} leaves, {_scoring_label(config)}, "
          f"{config.tuned_training_sample_size:,d} training rows, search knobs picked on "
          "validation queries)", lambda: methods_lib.TfrsScaNN(batch_size=config.scann_batch,
                                                    **_tuned_build_kwargs(config))),
      "exact": ("bruteforce exact_top_k (tfrs_emb)", methods_lib.Exact),
      "faiss_flat": ("faiss IndexFlatIP", methods_lib.FaissFlat),
      "faiss_ivf": (f"faiss IVF (nlist={config.faiss_ivf_nlist}, nprobe="
                    f"{config.faiss_ivf_nprobe})", lambda: methods_lib.FaissIVF(
                        config.faiss_ivf_nlist, config.faiss_ivf_nprobe, seed=config.seed)),
      "faiss_hnsw": (f"faiss HNSW (M={config.faiss_hnsw_m}, efSearch="
                     f"{config.faiss_hnsw_ef_search})", lambda: methods_lib.FaissHNSW(
                         config.faiss_hnsw_m, config.faiss_hnsw_ef_construction,
                         config.faiss_hnsw_ef_search)),
  }


def _check_methods(config: Config):
  for spec in config.methods:
    key, _, agg = spec.rpartition("_")
    if key not in METHOD_KEYS or agg not in case_encoder.AGGREGATIONS:
      raise ValueError(f"methods entry {spec!r}: expected <method>_<mean|max> with method "
                       f"in {', '.join(METHOD_KEYS)}")
  for tree in config.search_trees:
    tree_knobs(tree)


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


@dataclasses.dataclass
class _Truth:
  """Exact top-k of some database rows used as queries, the query itself dropped."""
  query_ids: np.ndarray   # int64 [Q]
  neighbors: np.ndarray   # int64 [Q, k]
  kth_scores: np.ndarray  # float32 [Q]

  @classmethod
  def compute(cls, db: np.ndarray, query_ids: np.ndarray, k: int) -> "_Truth":
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


def _search_call(method: methods_lib.Method, params: Optional[dict], queries: np.ndarray,
                 k: int) -> Callable[[], np.ndarray]:
  def call():
    if params:
      method.set_search_params(**params)
    return method.search(queries, k)
  return call


def _timed_search(method: methods_lib.Method, queries: np.ndarray, k: int,
                  rounds: int) -> Tuple[timing.Timing, np.ndarray]:
  """(timing, results) of ``method.search``: a search under 5 s runs ``rounds`` times."""
  return timing.time_call(_search_call(method, None, queries, k), repeats=rounds)


def measure_settings(cases: Sequence[Tuple[methods_lib.Method, Optional[dict]]],
                     db: np.ndarray, truth: _Truth, k: int, rounds: int) -> List[dict]:
  """QPS and recalls of each (method, search params) on ``truth``'s queries.

  The searches are timed interleaved (``core.timing.time_interleaved``: every setting once
  per round, ``rounds`` rounds, the fastest run kept), so load bursts on the shared
  machine do not decide which setting looks fastest.

  Returns:
    One dict per case: qps (fastest run), qps_median, spread (slowest / fastest run),
    seconds, seconds_median, runs, recall, recall_ties.
  """
  queries = db[truth.query_ids]
  timed = timing.time_interleaved(
      [_search_call(method, params, queries, k + 1) for method, params in cases],
      rounds=rounds)
  return [dict(t.summary(len(queries)), recall=truth.recall(nn),
               recall_ties=truth.recall_ties(nn, db)) for t, nn in timed]


def tune_search(method: methods_lib.TfrsScaNN, db: np.ndarray, truth: _Truth, k: int,
                grid: Sequence[Tuple[int, int]], target: float,
                rounds: int = 5) -> Tuple[List[dict], dict]:
  """Fastest (``CHOICE_QPS``) (leaves_to_search, reorder) of ``grid`` reaching ``target``
  on ``truth``'s queries (the most accurate setting if none does); leaves ``method`` set
  to it."""
  measured = measure_settings(
      [(method, dict(leaves_to_search=a, reorder=b)) for a, b in grid], db, truth, k, rounds)
  table = [dict(setting=f"leaves={a},reorder={b}", leaves_to_search=a, reorder=b, **m)
           for (a, b), m in zip(grid, measured)]
  best = (ann.fastest_at_recall(table, target, qps=CHOICE_QPS)
          or max(table, key=lambda r: r["recall"]))
  method.set_search_params(best["leaves_to_search"], best["reorder"])
  return table, best


def tree_knobs(tree: str) -> dict:
  """``search_trees`` entry (generic | spherical, optionally +int8) → ScaNN tree knobs."""
  kind, _, centroids = tree.partition("+")
  if kind not in ("generic", "spherical") or centroids not in ("", "int8"):
    raise ValueError(f"search_trees entry {tree!r}: expected generic or spherical, "
                     "optionally followed by +int8")
  return dict(spherical=kind == "spherical", quantize_centroids=centroids == "int8")


def _search_builds(config: Config) -> List[dict]:
  """The config search's build grid (see ``scann_config_search``)."""
  scoring_knobs = [dict(scoring="ah", dimensions_per_block=dpb,
                        anisotropic_quantization_threshold=aq)
                   for dpb in config.search_dims_per_block
                   for aq in config.search_aq_thresholds] * ("ah" in config.search_scorings)
  scoring_knobs += [dict(scoring=s) for s in config.search_scorings if s != "ah"]
  return [dict(num_leaves=leaves, training_sample_size=sample, **tree_knobs(tree), **knobs)
          for leaves in config.search_leaves
          for tree in config.search_trees
          for sample in config.search_training_sample_sizes
          for knobs in scoring_knobs]


def scann_config_search(db: np.ndarray, truth: _Truth, config: Config,
                        log: common.Log = common.no_log) -> List[dict]:
  """Validation recall/QPS of every ScaNN build configuration × search setting.

  Build grid: search_leaves × search_trees × search_training_sample_sizes ×
  (search_dims_per_block × search_aq_thresholds for "ah" scoring, once for each other of
  search_scorings). Each build is searched at every search_grid_leaves ×
  search_grid_reorder pair, with leaves_to_search scaled by num_leaves / 1000 (the share
  of the database scanned stays comparable across leaf counts). All builds are kept until every point of every build
  has been timed interleaved (``measure_settings``), so builds are compared under the
  same load.
  """
  cases, points, methods = [], [], []
  for build in _search_builds(config):
    method = methods_lib.TfrsScaNN(batch_size=config.scann_batch, **build)
    seconds, _ = _timed(lambda: method.build(db, config.k + 1))
    methods.append(method)
    log(f"config search {build}: built in {seconds:.1f} s")
    for searched, reorder in _scaled_grid([(a, b) for a in config.search_grid_leaves
                                           for b in config.search_grid_reorder],
                                          build["num_leaves"]):
      cases.append((method, dict(leaves_to_search=searched, reorder=reorder)))
      points.append(dict(build, build_seconds=seconds, leaves_to_search=searched,
                         reorder=reorder))
  for p, m in zip(points, measure_settings(cases, db, truth, config.k, config.timing_rounds)):
    p.update(m)
  front = ann.pareto_front(points)
  log("config search front: " + ", ".join(
      f"{p['num_leaves']} leaves {p['leaves_to_search']}:{p['reorder']} "
      f"{p['recall']:.3f}@{p['qps']:,.0f}" for p in front))
  del methods, cases
  gc.collect()
  return points


def _sweep_settings(config: Config, key: str) -> List[Tuple[str, dict]]:
  if key == "scann_tuned":
    return [(f"leaves={a},reorder={b}", dict(leaves_to_search=a, reorder=b))
            for a, b in _scaled_grid(_scann_pairs(config.sweep_scann), config.tuned_leaves)]
  if key == "faiss_ivf":
    return [(f"nprobe={v}", dict(nprobe=v)) for v in config.sweep_ivf_nprobe]
  if key == "faiss_hnsw":
    return [(f"efSearch={v}", dict(ef_search=v)) for v in config.sweep_hnsw_ef]
  return []


SWEEP_NAMES = {"scann_tuned": "scann", "faiss_ivf": "faiss ivf", "faiss_hnsw": "faiss hnsw"}


def _export_reloaded(method: methods_lib.Method, k: int, queries: np.ndarray,
                     batch_size: int, tmp_dir: str) -> Tuple[methods_lib.Reloaded, float]:
  """The method's TFRS layer exported, reloaded and called once; (reloaded, load seconds)."""
  path = index_lib.export_index(method.layer, pathlib.Path(tmp_dir) / "model", k=k,
                                version=None)
  reloaded = methods_lib.Reloaded(str(path), batch_size)
  # Load + one query: the first call of a loaded function builds its kernels.
  load_seconds, _ = _timed(lambda: (reloaded.build(None, k), reloaded.search(queries[:1], k)))
  return reloaded, load_seconds


def _time_row(method: methods_lib.Method, queries: np.ndarray, k: int, config: Config,
              tmp_dir: str) -> Tuple[dict, np.ndarray, Optional[np.ndarray]]:
  """Times the row's search in process and, for a TFRS layer, through its reloaded
  SavedModel called in the same batches, the two interleaved (same load for both).

  Returns:
    (timing fields, in-process results [Q, k], reloaded results or None).
  """
  if method.layer is None:
    t, nn = _timed_search(method, queries, k, config.timing_rounds)
    return _timing_fields(t, len(queries)), nn, None
  reloaded, load_seconds = _export_reloaded(method, k, queries, method.batch_size, tmp_dir)
  (t, nn), (t_served, served) = timing.time_interleaved(
      [_search_call(m, None, queries, k) for m in (method, reloaded)],
      rounds=config.timing_rounds)
  fields = _timing_fields(t, len(queries))
  fields.update({"serving_" + c: v for c, v in _timing_fields(t_served, len(queries)).items()})
  fields["serving_load_seconds"] = load_seconds
  return fields, nn, served


def _timing_fields(t: timing.Timing, count: int) -> dict:
  """A table row's timing columns: ``Timing.summary`` with the fastest run as query_seconds."""
  summary = t.summary(count)
  return {"query_seconds": summary["seconds"],
          **{c: summary[c] for c in ("qps", "qps_median", "spread", "runs")}}


def run_rows(config: Config, data: BenchData, query_ids: np.ndarray,
             validation_ids: np.ndarray, log: common.Log = common.no_log):
  """Every method of ``config.methods`` on the same queries.

  Returns:
    (rows, built, truths, tuning, tuned_choice): one metrics row per method key, the built
    methods by key (for the sweeps), the exact truth per aggregation, and the tuned ScaNN
    validation grid and choice.
  """
  k = config.k
  table = _method_table(config)
  truths: Dict[str, _Truth] = {}
  rows, built, tuning, chosen = [], {}, [], None
  for spec in config.methods:
    key, _, agg = spec.rpartition("_")
    label, make = table[key]
    db = data.embeddings[agg]
    queries = db[query_ids]
    if agg not in truths:
      truths[agg] = _Truth.compute(db, query_ids, k)
    truth = truths[agg]
    log(f"running {label} ({agg}) on {len(queries):,d} queries × {len(db):,d} items")
    method = make()
    t_index, _ = _timed(lambda: method.build(db, k + 1))
    row = {"method": spec, "search": label, "aggregation": agg}
    if key == "scann_tuned":
      t_tune, (tuning, chosen) = _timed(lambda: tune_search(
          method, db, _Truth.compute(db, validation_ids, k), k,
          _scaled_grid([(a, b) for a in config.tuned_grid_leaves
                        for b in config.tuned_grid_reorder], config.tuned_leaves),
          config.tuned_target_recall, config.timing_rounds))
      row.update(search=f"{label} [{chosen['setting']}]", tune_seconds=t_tune)
      log(f"  tuned ScaNN: chose {chosen['setting']} (validation recall "
          f"{chosen['recall']:.4f}) in {t_tune:.1f} s")
    with tempfile.TemporaryDirectory(dir=config.output_dir) as tmp:
      fields, nn, served = _time_row(method, queries, k + 1, config, tmp)
    top = drop_self(nn, query_ids, k)
    row.update(index_seconds=t_index, **fields)
    row.update({
        "rank_dice@10": ranking.rank_dice_at_k(nn, data.sets, k, query_ids=query_ids),
        "recall@10": ranking.recall_vs_exact(top, truth.neighbors, k),
        "recall@10_ties": ann.tie_aware_recall(top, truth.kth_scores, db, queries),
    })
    if served is not None:
      row.update({"serving_recall@10": truth.recall(served),
                  "serving_same_ids": float(np.mean(served == nn))})
    log("  " + ", ".join(f"{c}={v:.4g}" if isinstance(v, float) else f"{c}={v}"
                         for c, v in row.items()))
    rows.append(row)
    if _sweep_settings(config, key) or (key == "scann_tuned" and config.export_dir):
      built[spec] = method
    del method
    gc.collect()
  return rows, built, truths, tuning, chosen


def run_sweeps(config: Config, data: BenchData, built: Dict[str, methods_lib.Method],
               truths: Dict[str, _Truth]) -> List[dict]:
  """Recall/QPS of each built ScaNN / faiss IVF / HNSW index at its sweep settings; the
  points of all methods on one aggregation are timed interleaved (``measure_settings``)."""
  points = []
  for agg in dict.fromkeys(spec.rpartition("_")[2] for spec in built):
    labels, cases = [], []
    for spec, method in built.items():
      key, _, spec_agg = spec.rpartition("_")
      for setting, params in _sweep_settings(config, key) if spec_agg == agg else ():
        labels.append(dict(method=SWEEP_NAMES[key], aggregation=agg, setting=setting))
        cases.append((method, params))
    points += [dict(label, **m) for label, m in zip(labels, measure_settings(
        cases, data.embeddings[agg], truths[agg], config.k, config.timing_rounds))]
  return points


def sweep_table(points: Sequence[dict], targets: Sequence[float]) -> List[dict]:
  """QPS of each swept method at each recall target, interpolated on its curve, for
  strict recall (``measure`` "recall") and tie-aware recall ("recall_ties")."""
  out = []
  for measure in ("recall", "recall_ties"):
    for name in dict.fromkeys(p["method"] for p in points):
      curve = [p for p in points if p["method"] == name]
      out.append(dict(method=name, measure=measure, **{
          f"qps@{t:g}": ann.qps_at_recall(curve, t, recall=measure) for t in targets}))
  return out


def export_case_indexes(config: Config, data: BenchData, aggregation: str,
                        scann: Optional[methods_lib.TfrsScaNN],
                        probe_rows: Sequence[int]) -> dict:
  """Case elements → top-k case ids SavedModels (CaseEncoder + BruteForce / ScaNN).

  Writes ``export_dir/jader_bruteforce/1`` and, when ``scann`` is given (its build and
  search settings are reused), ``export_dir/jader_scann/1``. Signature input ``elements``
  tf.string [B, max_len] ("" padded, ``kind:name`` strings); outputs ``ids`` (識別番号) and
  ``scores``.

  Returns:
    {name: {"path", "probe_elements", "probe_ids", "probe_scores"}} computed in memory for
    ``probe_rows`` (cases used as queries), to compare with the reloaded models.
  """
  k = config.k
  embeddings, cases = data.embeddings[aggregation], data.cases
  encoder = case_encoder.CaseEncoder(list(data.cbow_vocab), data.cbow_vectors,
                                     aggregation=aggregation)
  spec = tf.TensorSpec([None, None], tf.string, name="elements")
  probes = [cases.elements(int(i)) for i in probe_rows]
  width = max(len(p) for p in probes)
  elements = tf.constant([p + [""] * (width - len(p)) for p in probes])
  indexes = {"jader_bruteforce": index_lib.build_brute_force(
      embeddings, cases.ids, query_model=encoder, k=k)}
  if scann is not None:
    cfg = scann.layer.get_config()
    layer = index_lib.build_scann(embeddings, cases.ids, query_model=encoder, k=k, **{
        key: cfg[key] for key in ("num_leaves", "num_leaves_to_search",
                                  "num_reordering_candidates", "dimensions_per_block",
                                  "anisotropic_quantization_threshold",
                                  "training_iterations", "training_sample_size",
                                  "scoring", "spherical", "quantize_centroids")})
    layer.set_search_params(cfg.get("search_leaves_to_search"), cfg.get("search_reorder"))
    indexes["jader_scann"] = layer
  out = {}
  for name, index in indexes.items():
    scores, ids = index(elements)
    path = index_lib.export_index(index, pathlib.Path(config.export_dir) / name,
                                  input_signature=spec, version=1)
    out[name] = {"path": str(path), "probe_elements": [list(p) for p in probes],
                 "probe_ids": np.asarray(ids.numpy(), bytes).astype(str).tolist(),
                 "probe_scores": scores.numpy().tolist()}
  return out


def thread_counts() -> dict:
  """Threads each library searches with (0 = TensorFlow's default: all usable CPUs)."""
  import faiss  # pylint: disable=g-import-not-at-top
  return {"faiss_omp": faiss.omp_get_max_threads(),
          "exact_top_k": len(os.sched_getaffinity(0)),
          "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
          "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def run(config: Config, log: common.Log = common.no_log) -> BenchRetrievalResult:
  """The whole benchmark (see the module docstring)."""
  common.check_config(config)
  common.check_output_dirs(config, "output_dir", "export_dir", "cache_dir")
  _check_methods(config)
  before = machine_conditions()
  t0 = time.perf_counter()
  pathlib.Path(config.output_dir).mkdir(parents=True, exist_ok=True)
  data = clustered_data(config) if config.source == "clustered" else jader_data(config, log)
  query_ids, validation_ids = split_queries(data.sets, config.num_queries,
                                            config.num_validation, config.seed)
  log(f"{len(data.sets):,d} items, {len(query_ids):,d} queries, {len(validation_ids):,d} "
      f"validation queries, k={config.k}; data took {time.perf_counter() - t0:.1f} s")
  config_points, front = [], []
  if config.scann_config_search:
    agg = "mean" if "mean" in data.embeddings else next(iter(data.embeddings))
    db = data.embeddings[agg]
    config_points = scann_config_search(db, _Truth.compute(db, validation_ids, config.k),
                                        config, log)
    front = ann.pareto_front(config_points)
    if config.tuned_from_search:
      config = build_from_search(config, config_points)
  rows, built, truths, tuning, chosen = run_rows(config, data, query_ids, validation_ids, log)
  points = run_sweeps(config, data, built, truths) if config.sweep else []
  for p in points:
    log(f"sweep {p['method']} {p['setting']}: qps={p['qps']:,.0f} recall={p['recall']:.4f}")
  exports = {}
  if config.export_dir and config.source == "jader" and "mean" in data.embeddings:
    tuned = built.get("scann_tuned_mean")
    if tuned is not None and chosen is not None:
      tuned.set_search_params(chosen["leaves_to_search"], chosen["reorder"])
    exports = export_case_indexes(config, data, "mean", tuned, query_ids[:5])
    for name, e in exports.items():
      log(f"exported {name} to {e['path']}")
  return BenchRetrievalResult(
      config=common.config_dict(config), data=data.info, num_items=len(data.sets),
      num_queries=int(len(query_ids)), k=config.k, rows=rows, sweep=points,
      sweep_table=sweep_table(points, config.recall_targets), tuning=tuning,
      tuned_choice=chosen, tuned_build=_tuned_build_kwargs(config),
      config_search=config_points, config_front=front,
      exports=exports, conditions_before=before, conditions_after=machine_conditions(),
      threads=thread_counts(), total_seconds=time.perf_counter() - t0)
