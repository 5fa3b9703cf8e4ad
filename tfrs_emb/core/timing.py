"""Wall-clock timing of short calls that stays comparable on a shared, noisy machine.

Other processes only ever slow a call down, so the fastest of several runs is the least
disturbed estimate of its cost, while a sub-second call timed once can come out much
slower than the same call a minute later. ``time_call`` repeats a short call and keeps every
run; ``time_interleaved`` times several calls in rounds (every call once per round, the
order rotated each round), so a burst of load hits all of them instead of the few that
happened to run during it::

  from tfrs_emb.core import timing
  t, rows = timing.time_call(lambda: index.search(queries, 11))
  t.best, t.median, t.spread                     # seconds, seconds, max / min

  settings = [(10, 80), (20, 160)]
  def search_at(leaves, reorder):
    index.set_search_params(leaves, reorder)
    return index.search(queries, 11)
  timed = timing.time_interleaved([lambda s=s: search_at(*s) for s in settings])
  [(t.best, rows.shape) for t, rows in timed]
"""

import dataclasses
import time
from typing import Any, Callable, List, Sequence, Tuple


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds of every run of one call (at least one run)."""
  runs: Tuple[float, ...]

  def __post_init__(self):
    if not self.runs:
      raise ValueError("Timing needs at least one run")

  @property
  def best(self) -> float:
    """Fastest run: the estimate least disturbed by other load."""
    return min(self.runs)

  @property
  def median(self) -> float:
    ordered = sorted(self.runs)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

  @property
  def spread(self) -> float:
    """Slowest / fastest run (1.0 = all runs equal)."""
    return max(self.runs) / max(self.best, 1e-12)

  def summary(self, count: int = 0) -> dict:
    """JSON-ready fields; with ``count`` (items per run) also the rates per second."""
    out = {"seconds": self.best, "seconds_median": self.median, "spread": self.spread,
           "runs": len(self.runs)}
    if count:
      out.update(qps=count / max(self.best, 1e-12),
                 qps_median=count / max(self.median, 1e-12))
    return out


def _once(fn: Callable[[], Any]) -> Tuple[float, Any]:
  t0 = time.perf_counter()
  out = fn()
  return time.perf_counter() - t0, out


def time_call(fn: Callable[[], Any], repeats: int = 5,
              repeat_below: float = 5.0) -> Tuple[Timing, Any]:
  """Runs ``fn``; when that took under ``repeat_below`` seconds, ``repeats`` times in all.

  Returns:
    (timing of every run, the first run's result).
  """
  return time_interleaved([fn], rounds=repeats, repeat_below=repeat_below)[0]


def time_interleaved(calls: Sequence[Callable[[], Any]], rounds: int = 5,
                     repeat_below: float = 5.0) -> List[Tuple[Timing, Any]]:
  """Times ``calls`` in ``rounds`` rounds, each call once per round.

  Round r runs the calls in order starting at call ``r % len(calls)``. A call whose first
  run took ``repeat_below`` seconds or more is not repeated (long runs average the noise
  out themselves).

  Returns:
    [(timing, result of the call's first run)] in the order of ``calls``.
  """
  if rounds < 1:
    raise ValueError(f"rounds must be >= 1, got {rounds}")
  first = [_once(fn) for fn in calls]
  runs = [[seconds] for seconds, _ in first]
  short = [i for i, (seconds, _) in enumerate(first) if seconds < repeat_below]
  for r in range(1, rounds):
    start = r % len(short) if short else 0
    for i in short[start:] + short[:start]:
      runs[i].append(_once(calls[i])[0])
  return [(Timing(tuple(r)), out) for r, (_, out) in zip(runs, first)]
