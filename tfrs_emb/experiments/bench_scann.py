"""ScaNN choices of the retrieval bench, all made on validation queries: the search knobs
of a built index (``tune_search``) and, optionally, the build itself (``config_search`` →
``build_from_search``).

Grids give leaves_to_search per 1,000 leaves; ``scaled_grid`` scales them to a build's
num_leaves, so the share of the database scanned stays comparable across leaf counts.
"""

import dataclasses
import gc
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.experiments import common
from tfrs_emb.experiments.bench_timing import Truth
from tfrs_emb.experiments.bench_timing import measure_settings
from tfrs_emb.experiments.bench_timing import timed
from tfrs_emb.metrics import ann
from tfrs_emb.retrieval import methods as methods_lib
from tfrs_emb.retrieval.index import ScannConfig

# Choices compare the median of each point's interleaved runs: the fastest run lets one
# quiet moment on a shared machine pick a setting far above the target recall.
CHOICE_QPS = "qps_median"


def scann_pairs(specs: Sequence[str]) -> List[Tuple[int, int]]:
  """``"leaves:reorder"`` strings → (leaves, reorder) pairs."""
  return [tuple(int(v) for v in s.split(":")) for s in specs]


def scaled_grid(pairs: Sequence[Tuple[int, int]], num_leaves: int) -> List[Tuple[int, int]]:
  """(leaves_to_search per 1,000 leaves, reorder) pairs scaled to ``num_leaves`` (>= 1
  leaf searched), without the duplicates rounding makes."""
  return list(dict.fromkeys((max(1, round(a * num_leaves / 1000)), b) for a, b in pairs))


def tree_knobs(tree: str) -> dict:
  """``search_trees`` entry (generic | spherical, optionally +int8) → ScaNN tree knobs."""
  kind, _, centroids = tree.partition("+")
  if kind not in ("generic", "spherical") or centroids not in ("", "int8"):
    raise ValueError(f"search_trees entry {tree!r}: expected generic or spherical, "
                     "optionally followed by +int8")
  return dict(spherical=kind == "spherical", quantize_centroids=centroids == "int8")


def describe(config: ScannConfig) -> str:
  """``generic tree, AH 2 dims/block t=0.2`` / ``spherical tree, float32 scoring``."""
  tree = ("spherical" if config.spherical else "generic") + " tree" + (
      ", int8 centroids" if config.quantize_centroids else "")
  if config.scoring == "ah":
    return (f"{tree}, AH {config.dimensions_per_block} dims/block "
            f"t={config.anisotropic_quantization_threshold}")
  return f"{tree}, {config.scoring} scoring"


def search_builds(base: ScannConfig, leaves: Sequence[int], trees: Sequence[str],
                  sample_sizes: Sequence[int], scorings: Sequence[str],
                  dims_per_block: Sequence[int],
                  aq_thresholds: Sequence[float]) -> List[ScannConfig]:
  """The config search's builds: ``base`` with every leaves × trees × sample_sizes ×
  (dims_per_block × aq_thresholds for "ah", once for each other scoring)."""
  scoring_knobs = [dict(scoring="ah", dimensions_per_block=dpb,
                        anisotropic_quantization_threshold=aq)
                   for dpb in dims_per_block for aq in aq_thresholds] * ("ah" in scorings)
  scoring_knobs += [dict(scoring=s) for s in scorings if s != "ah"]
  return [dataclasses.replace(base, num_leaves=n, training_sample_size=sample,
                              **tree_knobs(tree), **knobs)
          for n in leaves for tree in trees for sample in sample_sizes
          for knobs in scoring_knobs]


def config_search(db: np.ndarray, truth: Truth, builds: Sequence[ScannConfig],
                  grid: Sequence[Tuple[int, int]], k: int, rounds: int, batch_size: int,
                  log: common.Log = common.no_log) -> List[dict]:
  """Validation recall/QPS of every build × search setting.

  Each build is searched at every (leaves_to_search per 1,000 leaves, reorder) of
  ``grid`` (``scaled_grid``). All builds are kept until every point of every build has
  been timed interleaved (``measure_settings``), so builds are compared under the same
  load.

  Returns:
    One point per build × setting: the build's ScannConfig fields, build_seconds,
    leaves_to_search, reorder and the ``measure_settings`` fields.
  """
  cases, points, methods = [], [], []
  for build in builds:
    method = methods_lib.TfrsScaNN(batch_size=batch_size, config=build)
    seconds, _ = timed(lambda: method.build(db, k + 1))
    methods.append(method)
    log(f"config search {build}: built in {seconds:.1f} s")
    for searched, reorder in scaled_grid(grid, build.num_leaves):
      cases.append((method, dict(leaves_to_search=searched, reorder=reorder)))
      points.append(dict(dataclasses.asdict(build), build_seconds=seconds,
                         leaves_to_search=searched, reorder=reorder))
  for p, m in zip(points, measure_settings(cases, db, truth, k, rounds)):
    p.update(m)
  log("config search front: " + ", ".join(
      f"{p['num_leaves']} leaves {p['leaves_to_search']}:{p['reorder']} "
      f"{p['recall']:.3f}@{p['qps']:,.0f}" for p in ann.pareto_front(points)))
  del methods, cases
  gc.collect()
  return points


def build_from_search(points: Sequence[dict], target: float,
                      fallback: ScannConfig) -> ScannConfig:
  """The build of the config-search point fastest (``CHOICE_QPS``) among those reaching
  recall ``target``; ``fallback`` when none reaches it."""
  best = ann.fastest_at_recall(points, target, qps=CHOICE_QPS)
  return fallback if best is None else ScannConfig.from_record(best)


def tune_search(method: methods_lib.TfrsScaNN, db: np.ndarray, truth: Truth, k: int,
                grid: Sequence[Tuple[int, int]], target: float,
                rounds: int = 5) -> Tuple[List[dict], Optional[dict]]:
  """Fastest (``CHOICE_QPS``) (leaves_to_search, reorder) of ``grid`` reaching ``target``
  on ``truth``'s queries (the most accurate setting if none does); leaves ``method`` set
  to it.

  Returns:
    (the grid's points, the chosen one).
  """
  measured = measure_settings(
      [(method, dict(leaves_to_search=a, reorder=b)) for a, b in grid], db, truth, k, rounds)
  table = [dict(setting=f"leaves={a},reorder={b}", leaves_to_search=a, reorder=b, **m)
           for (a, b), m in zip(grid, measured)]
  best = (ann.fastest_at_recall(table, target, qps=CHOICE_QPS)
          or max(table, key=lambda r: r["recall"]))
  method.set_search_params(best["leaves_to_search"], best["reorder"])
  return table, best
