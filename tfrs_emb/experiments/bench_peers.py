"""The retrieval bench's approximate methods compared at equal budgets (SPEC.md "Comparison
protocol"): ScaNN against each peer a user would try (faiss IVF, faiss IVF-PQ FastScan +
refine, faiss HNSW, hnswlib).

Every method is an ``AnnSpace``: its own documented build space and, per build, its
search-knob settings. Every method gets the same number of builds and of settings per
build (``check_budgets`` raises otherwise). On the validation queries each method's builds
are searched at all their settings and the build fastest at the target recall is kept
(``choose_build``); the kept builds are then swept on the evaluation queries, all points
timed interleaved in the same rounds (``sweep``). At each recall target, each method's
setting is the validation point fastest reaching it; ScaNN's QPS over the best peer's (the
peer fastest there on validation) is the median ratio of their interleaved evaluation runs
with the min–max of the per-round ratios (``verdicts``)::

  spaces = [AnnSpace("scann", make_scann, builds, scann_settings), ...]
  budget = check_budgets(spaces)
  kept = [choose_build(s, db, validation_truth, k, 0.96, rounds) for s in spaces]
  points = sweep(kept, db, truth, k, rounds)
  verdicts(kept, points, (0.95, 0.97, 0.99), ours="scann")
"""

import dataclasses
import gc
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.core import timing
from tfrs_emb.experiments import common
from tfrs_emb.experiments.bench_timing import Truth
from tfrs_emb.experiments.bench_timing import measure_settings
from tfrs_emb.experiments.bench_timing import timed
from tfrs_emb.metrics import ann
from tfrs_emb.metrics import comparison
from tfrs_emb.retrieval import methods as methods_lib

# Choices compare the median of each point's interleaved runs.
CHOICE_QPS = "qps_median"
# A setting: (label, search-time params for ``Method.set_search_params``).
Setting = Tuple[str, dict]


@dataclasses.dataclass(frozen=True)
class AnnSpace:
  """One approximate method and its budget.

  Attributes:
    name: the method's name in tables ("scann", "faiss ivf", ...).
    builds: its build configurations (any objects ``make`` takes), in trial order.
    make: build configuration → an unbuilt ``Method``.
    settings: build configuration → its search-knob settings, in sweep order.
    describe: build configuration → a short label.
  """
  name: str
  builds: Tuple[Any, ...]
  make: Callable[[Any], methods_lib.Method]
  settings: Callable[[Any], List[Setting]]
  describe: Callable[[Any], str] = str


@dataclasses.dataclass
class Kept:
  """A method's build kept after the validation search, still built."""
  space: AnnSpace
  build: Any
  method: methods_lib.Method
  build_seconds: float
  validation: List[dict]  # the kept build's validation points, in settings order
  searched: List[dict]    # every build's validation points


def check_budgets(spaces: Sequence[AnnSpace]) -> Dict[str, dict]:
  """Each method's budget: builds, and settings per build (the fewest over its builds).

  Raises:
    ValueError: a method has fewer builds, or fewer settings on one of its builds, than
      another method; the message names each short method and the counts.
  """
  budget = {s.name: {"builds": len(s.builds),
                     "settings": min((len(s.settings(b)) for b in s.builds), default=0)}
            for s in spaces}
  short = []
  for what in ("builds", "settings"):
    most = max((b[what] for b in budget.values()), default=0)
    leaders = ", ".join(f"{n!r} {b[what]}" for n, b in budget.items() if b[what] == most)
    short += [f"method {n!r} has {b[what]} {what}, fewer than the {most} of {leaders}"
              for n, b in budget.items() if b[what] < most]
  if short:
    raise ValueError("unequal ANN budgets: " + "; ".join(short) + " (give every method "
                     "the same number of build configurations and of search settings)")
  return budget


def choose_build(space: AnnSpace, db: np.ndarray, truth: Truth, k: int, target: float,
                 rounds: int, log: common.Log = common.no_log) -> Kept:
  """Builds every configuration of ``space``, times all their settings interleaved on
  ``truth``'s (validation) queries, and keeps the build whose fastest (median QPS) point
  reaches recall ``target`` (the build of the most accurate point when none does)."""
  built, cases, points = [], [], []
  for i, build in enumerate(space.builds):
    method = space.make(build)
    seconds, _ = timed(lambda: method.build(db, k + 1))
    built.append((method, seconds))
    log(f"{space.name} build {space.describe(build)}: {seconds:.1f} s")
    for label, params in space.settings(build):
      cases.append((method, params))
      points.append(dict(method=space.name, build_index=i, build=space.describe(build),
                         build_seconds=seconds, setting=label))
  for p, m in zip(points, measure_settings(cases, db, truth, k, rounds)):
    p.update(m)
  best = (ann.fastest_at_recall(points, target, qps=CHOICE_QPS)
          or max(points, key=lambda p: p["recall"]))
  index = best["build_index"]
  method, seconds = built[index]
  del built, cases
  gc.collect()
  log(f"{space.name}: kept {best['build']} (validation {best['setting']}: recall "
      f"{best['recall']:.4f}, {best[CHOICE_QPS]:,.0f} QPS median)")
  return Kept(space, space.builds[index], method, seconds,
              [p for p in points if p["build_index"] == index], points)


def sweep(kept: Sequence[Kept], db: np.ndarray, truth: Truth, k: int,
          rounds: int) -> List[dict]:
  """Every kept build at every one of its settings on ``truth``'s (evaluation) queries,
  all points of all methods timed interleaved in the same ``rounds`` rounds (each run
  repeated however long, so any two points pair run by run)."""
  labels, cases = [], []
  for kept_one in kept:
    for label, params in kept_one.space.settings(kept_one.build):
      labels.append(dict(method=kept_one.space.name, build=kept_one.space.describe(
          kept_one.build), setting=label))
      cases.append((kept_one.method, params))
  return [dict(label, **m) for label, m in zip(labels, measure_settings(
      cases, db, truth, k, rounds, repeat_below=float("inf")))]


def _pick(kept: Kept, target: float) -> Optional[dict]:
  """The kept build's validation point fastest (median QPS) reaching ``target``."""
  return ann.fastest_at_recall(kept.validation, target, qps=CHOICE_QPS)


def verdicts(kept: Sequence[Kept], points: Sequence[dict], targets: Sequence[float],
             ours: str = "scann") -> List[dict]:
  """ScaNN (``ours``) against the best peer at each recall target.

  Each method's setting at a target is chosen on the validation queries (``_pick``); the
  best peer is the peer whose pick is fastest there. The ratio is ours' QPS over the
  peer's from their interleaved evaluation runs of ``points``
  (``comparison.timing_ratio``: median with the min–max of per-round ratios); win when
  the min–max range lies above 1, loss when below, tie otherwise.

  Returns:
    One dict per target: target, ours / peer setting, evaluation recall and median QPS,
    ratio fields, ratio text and verdict (a reason instead when a side reaches no target).
  """
  by_name = {k.space.name: k for k in kept}
  if ours not in by_name:
    raise ValueError(f"verdicts: no method named {ours!r} among {list(by_name)}")
  evaluation = {(p["method"], p["setting"]): p for p in points}
  out = []
  for target in targets:
    row: Dict[str, Any] = {"target": target}
    mine = _pick(by_name[ours], target)
    picks = [(p[CHOICE_QPS], name, p) for name, k in by_name.items() if name != ours
             for p in [_pick(k, target)] if p is not None]
    if mine is None:
      row.update(verdict="loss", reason=f"{ours} reaches recall {target:g} at no validation "
                 "setting")
    elif not picks:
      row.update(verdict="win", reason=f"no peer reaches recall {target:g} at any "
                 "validation setting")
    else:
      _, peer, peer_point = max(picks, key=lambda t: t[0])
      a, b = evaluation[(ours, mine["setting"])], evaluation[(peer, peer_point["setting"])]
      # QPS ratio ours / peer = seconds ratio peer / ours, run by run.
      ratio = comparison.timing_ratio(timing.Timing(tuple(b["run_seconds"])),
                                      timing.Timing(tuple(a["run_seconds"])))
      row.update(best_peer=peer, ours_setting=mine["setting"], ours_recall=a["recall"],
                 ours_qps=a["qps_median"], peer_setting=peer_point["setting"],
                 peer_recall=b["recall"], peer_qps=b["qps_median"], ratio=ratio.text(),
                 verdict=comparison.verdict(ratio.low - 1, ratio.high - 1),
                 **ratio.as_dict())
    out.append(row)
  return out


def bruteforce_speedup(rival: methods_lib.Method, brute: methods_lib.Method,
                       queries: np.ndarray, k: int, rounds: int) -> dict:
  """``rival``'s speed-up over ``brute`` on ``queries``: median over ``rounds`` interleaved
  runs of each (``comparison.measure_ratio``), with the min–max of per-round ratios."""
  ratio = comparison.measure_ratio(lambda: brute.search(queries, k),
                                   lambda: rival.search(queries, k), rounds=rounds)
  return dict(queries=len(queries), text=ratio.text(), **ratio.as_dict())
