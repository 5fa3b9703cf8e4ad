"""BruteForce vs ScaNN vs faiss on JADER case embeddings (SPEC.md experiment 4).

The database is the case embeddings of a jader_w2v run (``--jader_run``: its release and
its trained element vectors, mean / max per case; ``bench_data``), or clustered random
vectors. Every method is timed on the same queries in one run, in process and, for TFRS
layers, through the exported and reloaded SavedModel (``bench_timing``). Query ids are
database rows, so each query's own row is dropped from its results (rank_dice@k requires
it).

ScaNN's knobs are chosen on validation queries (disjoint from the evaluation queries;
``bench_scann``): an optional build-configuration search and, for the tuned row, the
fastest (leaves_to_search, reorder) reaching ``tuned_target_recall``. The tuned row's
speed-up over BruteForce is a median of interleaved runs on a fixed query subset.

With ``sweep``, the approximate methods (ScaNN, faiss IVF, faiss IVF-PQ FastScan + refine,
faiss HNSW, hnswlib) are compared at equal budgets (``bench_peers``): each searches the
same number of its own build configurations at the same number of search settings on the
validation queries (the run stops before any work when one gets fewer), keeps the build
fastest at ``tuned_target_recall``, and is swept on the evaluation queries; each of
``recall_targets`` gets a verdict, ScaNN's QPS over the best peer's as a median ratio with
min–max. With ``export_dir`` the run's CaseEncoder in front of the BruteForce and tuned
ScaNN indexes is exported (``bench_export``).

Usage::

  from tfrs_emb.experiments import bench_retrieval
  result = bench_retrieval.run(bench_retrieval.Config(jader_run="runs/jader_w2v"), log=print)
  result.rows[0]["qps"], result.sweep_table
"""

import dataclasses
import gc
import pathlib
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.core.linalg import drop_self
from tfrs_emb.experiments import bench_export
from tfrs_emb.experiments import bench_peers
from tfrs_emb.experiments import bench_scann
from tfrs_emb.experiments import common
from tfrs_emb.experiments.bench_data import BenchData
from tfrs_emb.experiments.bench_data import clustered_data
from tfrs_emb.experiments.bench_data import jader_data
from tfrs_emb.experiments.bench_data import split_queries
from tfrs_emb.experiments.bench_timing import Truth
from tfrs_emb.experiments.bench_timing import sweep_table
from tfrs_emb.experiments.bench_timing import thread_counts
from tfrs_emb.experiments.bench_timing import time_row
from tfrs_emb.experiments.bench_timing import timed
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import ann
from tfrs_emb.metrics import comparison
from tfrs_emb.metrics import ranking
from tfrs_emb.models import case_encoder
from tfrs_emb.reporting import machine_conditions
from tfrs_emb.retrieval import index as index_lib
from tfrs_emb.retrieval import methods as methods_lib
from tfrs_emb.retrieval.index import ScannConfig

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
  source: str = field("jader", "jader: the case embeddings of the --jader_run run; "
                      "clustered: random clustered unit vectors (development).",
                      choices=("jader", "clustered"))
  jader_run: str = field("runs/jader_w2v", "A jader_w2v run folder (its --output_dir): the "
                         "bench searches the cases of its release embedded by its element "
                         "vectors (metrics.json + element_vectors.npz).")
  clustered_cases: int = field(692_821, "source=clustered: vectors (the talk's case count).",
                               lower=2)
  clustered_dim: int = field(64, "source=clustered: vector size.", lower=1)
  num_queries: int = field(21_072, "Query cases (the talk's).", lower=1)
  num_validation: int = field(2000, "Validation queries (disjoint from the evaluation "
                              "queries) for every ScaNN choice.", lower=1)
  k: int = field(10, "Results per query (the query itself excluded).", lower=1)
  seed: int = field(0, "Seed for the queries, faiss IVF and the clustered vectors.")
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
                             "its reloaded SavedModel); medians decide and give every ratio "
                             "(the fastest run is an extra column). Ratios need >= 5.",
                             lower=1)
  timing_queries: int = field(2000, "Tuned ScaNN vs BruteForce speed-up: the first N "
                              "evaluation queries, both searched --timing_rounds times "
                              "interleaved (at least 5).", lower=1)
  faiss_ivf_nlist: int = field(2048, "faiss IVF lists.", lower=1)
  faiss_ivf_nprobe: int = field(16, "faiss IVF lists probed (table row).", lower=1)
  faiss_hnsw_m: int = field(32, "faiss HNSW M (table row; the wrapper's default).", lower=2)
  faiss_hnsw_ef_construction: int = field(40, "faiss HNSW efConstruction.", lower=1)
  faiss_hnsw_ef_search: int = field(64, "faiss HNSW efSearch (table row).", lower=1)
  sweep: bool = field(True, "Compare ScaNN, faiss IVF, faiss IVF-PQ FastScan + refine, "
                      "faiss HNSW and hnswlib at equal budgets: every method's builds "
                      "searched at its sweep settings on the validation queries, the build "
                      "fastest at --tuned_target_recall swept on the evaluation queries "
                      "(curves, PNG, verdicts at --recall_targets).")
  sweep_scann: Tuple[str, ...] = field(("10:20", "20:40", "30:60", "50:100", "80:200"),
                                       "ScaNN sweep points leaves_to_search:reorder, "
                                       "leaves_to_search per 1,000 leaves (scaled as "
                                       "--tuned_grid_leaves); its builds are the config "
                                       "search's (--search_*).")
  ivf_nlists: Tuple[int, ...] = field((512, 1024, 2048, 4096, 8192, 16384),
                                      "Sweep: faiss IVF builds (nlist).")
  sweep_ivf_nprobe: Tuple[int, ...] = field((4, 8, 16, 32, 64), "IVF nprobe sweep.")
  ivfpq_nlists: Tuple[int, ...] = field((1024, 2048, 4096), "Sweep: faiss IVF-PQ FastScan "
                                        "+ refine builds, nlist × --ivfpq_m.")
  ivfpq_m: Tuple[int, ...] = field((16, 32), "... PQ sub-quantizers (4-bit codes; each must "
                                   "divide the vector size).")
  sweep_ivfpq: Tuple[str, ...] = field(("4:2", "8:4", "16:4", "32:8", "64:16"),
                                       "IVF-PQ FastScan + refine sweep points "
                                       "nprobe:k_factor (k_factor · k rescored exactly).")
  hnsw_ms: Tuple[int, ...] = field((16, 32, 48), "Sweep: faiss HNSW and hnswlib builds, M "
                                   "× --hnsw_ef_constructions.")
  hnsw_ef_constructions: Tuple[int, ...] = field((40, 100), "... efConstruction.")
  sweep_hnsw_ef: Tuple[int, ...] = field((16, 32, 64, 128, 256), "HNSW efSearch (faiss) / "
                                         "ef (hnswlib) sweep.")
  recall_targets: Tuple[float, ...] = field((0.95, 0.97, 0.99), "Recall@k targets of the "
                                            "sweep table (QPS interpolated on each curve).")
  export_dir: str = field("", "If set (and source=jader): the run's CaseEncoder + BruteForce "
                          "/ tuned ScaNN SavedModels (case elements → case ids) under "
                          "<export_dir>/jader_bruteforce/1 and <export_dir>/jader_scann/1.")
  output_dir: str = field("runs/bench_retrieval", "Where outputs are written.")

  def tuned_scann(self) -> ScannConfig:
    """The tuned ScaNN row's build (the --tuned_* flags)."""
    return ScannConfig(
        num_leaves=self.tuned_leaves, num_leaves_to_search=self.tuned_leaves_to_search,
        num_reordering_candidates=self.tuned_reorder,
        dimensions_per_block=self.tuned_dims_per_block,
        anisotropic_quantization_threshold=self.tuned_aq_threshold,
        training_sample_size=self.tuned_training_sample_size, scoring=self.tuned_scoring,
        spherical=self.tuned_spherical, quantize_centroids=self.tuned_quantize_centroids)

  def aggregations(self) -> List[str]:
    """The case aggregations the rows use (``<method>_<aggregation>``)."""
    return sorted({spec.rpartition("_")[2] for spec in self.methods})


@dataclasses.dataclass
class BenchRetrievalResult:
  """One run: a row per method, the sweeps and the ScaNN choices."""
  config: dict
  data: dict
  num_items: int
  num_queries: int
  k: int
  rows: List[dict]            # one per method key, in config order
  bruteforce_speedup: Optional[dict]  # tuned ScaNN over BruteForce (bench_peers)
  budgets: Dict[str, dict]    # sweep method → builds, settings per build
  peer_search: List[dict]     # every sweep method's builds × settings (validation)
  kept_builds: List[dict]     # method, build, build_seconds: the build each one swept
  sweep: List[dict]           # method, setting, qps, recall (evaluation queries)
  sweep_table: List[dict]     # method, then "qps@<target>" per recall target
  verdicts: List[dict]        # ScaNN vs the best peer per recall target
  tuning: List[dict]          # tuned ScaNN: validation grid
  tuned_choice: Optional[dict]
  tuned_build: dict           # the tuned row's ScannConfig (from the flags or the search)
  config_search: List[dict]   # ScaNN build × search points on the validation queries
  config_front: List[dict]    # their Pareto front
  exports: dict
  conditions_before: dict
  conditions_after: dict
  threads: dict               # thread counts each library searched with
  total_seconds: float
  talk_rows: Sequence[dict] = TALK_ROWS


def _method_table(config: Config,
                  tuned: ScannConfig) -> Dict[str, Tuple[str, Callable[[], methods_lib.Method]]]:
  """Method key → (display label, factory); ``tuned``: the tuned ScaNN row's build."""
  base = ScannConfig(num_leaves=config.scann_leaves,
                     num_leaves_to_search=config.scann_leaves_to_search)

  def scann(build: ScannConfig) -> Callable[[], methods_lib.Method]:
    return lambda: methods_lib.TfrsScaNN(batch_size=config.scann_batch, config=build)

  return {
      "bruteforce": ("bruteforce", lambda: methods_lib.TfrsBruteForce(config.bruteforce_batch)),
      "scann": (f"scann ({config.scann_leaves} leaves, {config.scann_leaves_to_search} "
                "searched)", scann(dataclasses.replace(base, num_reordering_candidates=None))),
      "scann_reorder": (f"scann (reorder={config.scann_reorder})", scann(dataclasses.replace(
          base, num_reordering_candidates=config.scann_reorder))),
      "scann_tuned": (
          f"scann tuned ({tuned.num_leaves} leaves, {bench_scann.describe(tuned)}, "
          f"{tuned.training_sample_size:,d} training rows, search knobs picked on "
          "validation queries)", scann(tuned)),
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
    bench_scann.tree_knobs(tree)


def run_rows(config: Config, data: BenchData, query_ids: np.ndarray,
             validation_ids: np.ndarray, tuned: ScannConfig, log: common.Log = common.no_log):
  """Every method of ``config.methods`` on the same queries; ``tuned``: the tuned ScaNN
  row's build.

  Returns:
    (rows, kept, truths, tuning, tuned_choice): one metrics row per method key, the built
    BruteForce and tuned ScaNN methods by method entry, the exact truth per aggregation,
    and the tuned ScaNN validation grid and choice.
  """
  k = config.k
  table = _method_table(config, tuned)
  truths: Dict[str, Truth] = {}
  rows, kept, tuning, chosen = [], {}, [], None
  for spec in config.methods:
    key, _, agg = spec.rpartition("_")
    label, make = table[key]
    db = data.embeddings[agg]
    queries = db[query_ids]
    if agg not in truths:
      truths[agg] = Truth.compute(db, query_ids, k)
    truth = truths[agg]
    log(f"running {label} ({agg}) on {len(queries):,d} queries × {len(db):,d} items")
    method = make()
    t_index, _ = timed(lambda: method.build(db, k + 1))
    row = {"method": spec, "search": label, "aggregation": agg}
    if key == "scann_tuned":
      t_tune, (tuning, chosen) = timed(lambda: bench_scann.tune_search(
          method, db, Truth.compute(db, validation_ids, k), k,
          bench_scann.scaled_grid([(a, b) for a in config.tuned_grid_leaves
                                   for b in config.tuned_grid_reorder], tuned.num_leaves),
          config.tuned_target_recall, config.timing_rounds))
      row.update(search=f"{label} [{chosen['setting']}]", tune_seconds=t_tune)
      log(f"  tuned ScaNN: chose {chosen['setting']} (validation recall "
          f"{chosen['recall']:.4f}) in {t_tune:.1f} s")
    with tempfile.TemporaryDirectory(dir=config.output_dir) as tmp:
      fields, nn, served = time_row(method, queries, k + 1, config.timing_rounds, tmp)
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
    if key in ("bruteforce", "scann_tuned"):
      kept[spec] = method
    del method
    gc.collect()
  return rows, kept, truths, tuning, chosen


def _scann_settings(config: Config, build: ScannConfig) -> List[bench_peers.Setting]:
  return [(f"leaves={a},reorder={b}", dict(leaves_to_search=a, reorder=b))
          for a, b in bench_scann.scaled_grid(bench_scann.scann_pairs(config.sweep_scann),
                                              build.num_leaves)]


def ann_spaces(config: Config) -> List[bench_peers.AnnSpace]:
  """The equal-budget comparison's methods, each with its own build space (ScaNN: the
  config search's --search_* builds) and sweep settings."""
  scann_builds = bench_scann.search_builds(
      config.tuned_scann(), config.search_leaves, config.search_trees,
      config.search_training_sample_sizes, config.search_scorings,
      config.search_dims_per_block, config.search_aq_thresholds)
  hnsw_builds = [dict(m=m, ef_construction=e) for m in config.hnsw_ms
                 for e in config.hnsw_ef_constructions]
  ivfpq_points = [tuple(int(v) for v in p.split(":")) for p in config.sweep_ivfpq]
  seed = config.seed
  return [
      bench_peers.AnnSpace(
          "scann", tuple(scann_builds),
          lambda b: methods_lib.TfrsScaNN(batch_size=config.scann_batch, config=b),
          lambda b: _scann_settings(config, b),
          lambda b: f"{b.num_leaves} leaves, {bench_scann.describe(b)}"),
      bench_peers.AnnSpace(
          "faiss ivf", tuple(config.ivf_nlists),
          lambda n: methods_lib.FaissIVF(nlist=n, seed=seed),
          lambda n: [(f"nprobe={v}", dict(nprobe=v)) for v in config.sweep_ivf_nprobe],
          lambda n: f"nlist={n}"),
      bench_peers.AnnSpace(
          "faiss ivfpq-fs+refine",
          tuple(dict(nlist=n, m=m) for n in config.ivfpq_nlists for m in config.ivfpq_m),
          lambda b: methods_lib.FaissIVFPQFastScanRefine(seed=seed, **b),
          lambda b: [(f"nprobe={a},k_factor={f}", dict(nprobe=a, k_factor=f))
                     for a, f in ivfpq_points],
          lambda b: f"nlist={b['nlist']}, m={b['m']}"),
      bench_peers.AnnSpace(
          "faiss hnsw", tuple(hnsw_builds),
          lambda b: methods_lib.FaissHNSW(b["m"], b["ef_construction"]),
          lambda b: [(f"efSearch={v}", dict(ef_search=v)) for v in config.sweep_hnsw_ef],
          lambda b: f"M={b['m']}, efConstruction={b['ef_construction']}"),
      bench_peers.AnnSpace(
          "hnswlib", tuple(hnsw_builds),
          lambda b: methods_lib.Hnswlib(b["m"], b["ef_construction"], seed=seed),
          lambda b: [(f"ef={v}", dict(ef=v)) for v in config.sweep_hnsw_ef],
          lambda b: f"M={b['m']}, efConstruction={b['ef_construction']}"),
  ]


def _main_aggregation(data: BenchData) -> str:
  return "mean" if "mean" in data.embeddings else next(iter(data.embeddings))


def run_peers(config: Config, data: BenchData, query_ids: np.ndarray,
              validation_ids: np.ndarray, spaces: Sequence[bench_peers.AnnSpace],
              log: common.Log = common.no_log):
  """The equal-budget comparison on the mean embeddings (or the first aggregation).

  Returns:
    (validation points of every build, kept builds, evaluation sweep points, verdicts).
  """
  db = data.embeddings[_main_aggregation(data)]
  validation = Truth.compute(db, validation_ids, config.k)
  kept = []
  for space in spaces:
    kept.append(bench_peers.choose_build(space, db, validation, config.k,
                                         config.tuned_target_recall, config.timing_rounds,
                                         log))
  points = bench_peers.sweep(kept, db, Truth.compute(db, query_ids, config.k), config.k,
                             max(comparison.MIN_TIMING_ROUNDS, config.timing_rounds))
  searched = [p for k in kept for p in k.searched]
  return searched, kept, points, bench_peers.verdicts(kept, points, config.recall_targets)


def _config_search(config: Config, data: BenchData, validation_ids: np.ndarray,
                   log: common.Log) -> List[dict]:
  """``bench_scann.config_search`` of the --search_* grid on the mean embeddings (or the
  first aggregation), the builds derived from the --tuned_* build."""
  db = data.embeddings[_main_aggregation(data)]
  builds = bench_scann.search_builds(
      config.tuned_scann(), config.search_leaves, config.search_trees,
      config.search_training_sample_sizes, config.search_scorings,
      config.search_dims_per_block, config.search_aq_thresholds)
  return bench_scann.config_search(
      db, Truth.compute(db, validation_ids, config.k), builds,
      [(a, b) for a in config.search_grid_leaves for b in config.search_grid_reorder],
      config.k, config.timing_rounds, config.scann_batch, log)


def _bruteforce_speedup(config: Config, data: BenchData, kept: Dict[str, methods_lib.Method],
                        query_ids: np.ndarray, log: common.Log) -> Optional[dict]:
  """Tuned ScaNN's speed-up over BruteForce on the first --timing_queries evaluation
  queries of an aggregation both rows ran on; None when no aggregation has both."""
  agg = next((a for a in config.aggregations() if f"bruteforce_{a}" in kept
              and f"scann_tuned_{a}" in kept), None)
  if agg is None:
    return None
  queries = data.embeddings[agg][query_ids[:config.timing_queries]]
  out = dict(bench_peers.bruteforce_speedup(kept[f"scann_tuned_{agg}"],
                                            kept[f"bruteforce_{agg}"], queries,
                                            config.k + 1, max(5, config.timing_rounds)),
             aggregation=agg)
  log(f"tuned ScaNN / BruteForce ({agg}, {len(queries):,d} queries): {out['text']}")
  return out


def run(config: Config, log: common.Log = common.no_log) -> BenchRetrievalResult:
  """The whole benchmark (see the module docstring)."""
  common.check_config(config)
  common.check_output_dirs(config, "output_dir", "export_dir")
  _check_methods(config)
  spaces = ann_spaces(config)
  budgets = bench_peers.check_budgets(spaces) if config.sweep else {}
  before = machine_conditions()
  t0 = time.perf_counter()
  pathlib.Path(config.output_dir).mkdir(parents=True, exist_ok=True)
  if config.source == "clustered":
    data = clustered_data(config.clustered_cases, config.clustered_dim, config.seed,
                          config.aggregations())
  else:
    data = jader_data(config.jader_run, config.aggregations(), log)
  query_ids, validation_ids = split_queries(data.sets, config.num_queries,
                                            config.num_validation, config.seed)
  log(f"{len(data.sets):,d} items, {len(query_ids):,d} queries, {len(validation_ids):,d} "
      f"validation queries, k={config.k}; data took {time.perf_counter() - t0:.1f} s")
  tuned = config.tuned_scann()
  config_points, front = [], []
  if config.scann_config_search:
    config_points = _config_search(config, data, validation_ids, log)
    front = ann.pareto_front(config_points)
    if config.tuned_from_search:
      tuned = bench_scann.build_from_search(config_points, config.tuned_target_recall, tuned)
  rows, kept, truths, tuning, chosen = run_rows(config, data, query_ids, validation_ids,
                                                tuned, log)
  speedup = _bruteforce_speedup(config, data, kept, query_ids, log)
  del kept
  gc.collect()
  searched, kept_builds, points, verdicts = [], [], [], []
  if config.sweep:
    searched, peers, points, verdicts = run_peers(config, data, query_ids, validation_ids,
                                                  spaces, log)
    kept_builds = [dict(method=k.space.name, build=k.space.describe(k.build),
                        build_seconds=k.build_seconds) for k in peers]
    del peers
    gc.collect()
  for p in points:
    log(f"sweep {p['method']} {p['setting']}: qps_median={p['qps_median']:,.0f} "
        f"recall={p['recall']:.4f}")
  for v in verdicts:
    log(f"recall {v['target']:g}: {v.get('ratio', v.get('reason'))} → {v['verdict']}")
  exports = {}
  agg = data.run.config["export_aggregation"] if data.run else ""
  if config.export_dir and agg in data.embeddings:
    scann = (tuned.with_search(chosen["leaves_to_search"], chosen["reorder"])
             if f"scann_tuned_{agg}" in config.methods and chosen is not None else None)
    exports = bench_export.export_case_indexes(data, agg, scann, config.k, config.export_dir,
                                               query_ids[:5])
    for name, e in exports.items():
      log(f"exported {name} to {e['path']}")
  return BenchRetrievalResult(
      config=common.config_dict(config), data=data.info, num_items=len(data.sets),
      num_queries=int(len(query_ids)), k=config.k, rows=rows, bruteforce_speedup=speedup,
      budgets=budgets, peer_search=searched, kept_builds=kept_builds, sweep=points,
      sweep_table=sweep_table(points, config.recall_targets), verdicts=verdicts,
      tuning=tuning,
      tuned_choice=chosen, tuned_build=dataclasses.asdict(tuned),
      config_search=config_points, config_front=front,
      exports=exports, conditions_before=before, conditions_after=machine_conditions(),
      threads=thread_counts(), total_seconds=time.perf_counter() - t0)
