"""Statistics of the comparison protocol (SPEC.md "Comparison protocol"): cell intervals,
paired differences with a verdict, and timing ratios.

Scores come as one float array per repeat, one value per evaluation item (nan: the item
is not scored, e.g. a query with an empty set). The 95 % percentile bootstrap resamples
the repeats (when there are several) and the evaluation items, so both the seed-to-seed
spread and the item sample widen the interval. With ``same_items`` (real data: every
repeat scores the same fixed items) one draw of items serves every repeat of a resample,
so repeats of a deterministic method do not narrow the interval; otherwise (a release per
repeat) each drawn repeat's items are drawn on their own::

  from tfrs_emb.metrics import comparison
  cell = comparison.interval([scores_seed0, scores_seed1])    # Interval(mean, low, high)
  d = comparison.paired_difference(ours_per_repeat, peer_per_repeat)
  d.verdict                                                   # "win" | "tie" | "loss"
  comparison.measure_ratio(lambda: ours.search(q), lambda: peer.search(q)).text()
"""

import dataclasses
from typing import Any, Callable, List, Sequence

import numpy as np

from tfrs_emb.core import timing

BOOTSTRAP_SAMPLES = 2000
MIN_TIMING_ROUNDS = 5
# Items drawn per chunk of resamples (bounds the memory of one bootstrap).
_CHUNK_ITEMS = 4_000_000


@dataclasses.dataclass(frozen=True)
class Interval:
  """A mean and its 95 % percentile bootstrap interval."""
  mean: float
  low: float
  high: float

  def text(self, digits: int = 4) -> str:
    """``0.4123 [0.3900, 0.4301]``."""
    return f"{self.mean:.{digits}f} {self.ci_text(digits)}"

  def ci_text(self, digits: int = 4) -> str:
    """``[0.3900, 0.4301]``."""
    return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"

  def as_dict(self) -> dict:
    return {"mean": self.mean, "ci95": [self.low, self.high]}


@dataclasses.dataclass(frozen=True)
class Difference(Interval):
  """mean d = metric(ours) − metric(peer), its interval, and the verdict it gives."""

  @property
  def verdict(self) -> str:
    """win: interval above 0; loss: below 0; tie otherwise."""
    return verdict(self.low, self.high)

  def text(self, digits: int = 4) -> str:
    """``+0.0123 [+0.0040, +0.0200]``."""
    return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

  def as_dict(self) -> dict:
    return {**super().as_dict(), "verdict": self.verdict}


def verdict(low: float, high: float) -> str:
  """"win" when low > 0, "loss" when high < 0, else "tie"."""
  if low > 0:
    return "win"
  if high < 0:
    return "loss"
  return "tie"


def _per_repeat(scores: Sequence[Any], what: str, same_items: bool) -> List[np.ndarray]:
  """float64 [n_r] arrays with nan items dropped (with ``same_items``: the items nan in
  any repeat, so the arrays stay aligned); raises on no repeats or no items."""
  if isinstance(scores, np.ndarray) and scores.ndim == 1:
    raise ValueError(f"{what}: expected one score array per repeat, got a single 1-D "
                     "array (wrap it in a list for one repeat)")
  arrays = [np.asarray(s, np.float64).reshape(-1) for s in scores]
  if not arrays:
    raise ValueError(f"{what}: no repeats")
  if same_items:
    if len({len(a) for a in arrays}) > 1:
      raise ValueError(f"{what}: same_items, but the repeats score "
                       f"{[len(a) for a in arrays]} items")
    scored = ~np.any([np.isnan(a) for a in arrays], axis=0)
    kept = [a[scored] for a in arrays]
  else:
    kept = [a[~np.isnan(a)] for a in arrays]
  for r, a in enumerate(kept):
    if not len(a):
      raise ValueError(f"{what}: repeat {r} has no scored items (all {len(arrays[r])} nan)")
  return kept


def bootstrap_means(scores: Sequence[np.ndarray], samples: int = BOOTSTRAP_SAMPLES,
                    seed: int = 0, same_items: bool = False) -> np.ndarray:
  """float64 [samples]: the statistic "mean over repeats of the mean over items" of each
  bootstrap resample.

  One resample draws R repeats with replacement (R = ``len(scores)``; one repeat is
  always itself), then items with replacement: one draw shared by every repeat when
  ``same_items``, else a draw per drawn repeat.

  Args:
    scores: R arrays, float [n_r] (no nan; see ``interval`` for nan handling); with
      ``same_items`` of one length n, item i of every repeat being the same item.
  """
  rng = np.random.default_rng(seed)
  repeats = len(scores)
  picks = (rng.integers(0, repeats, size=(samples, repeats)) if repeats > 1
           else np.zeros((samples, 1), np.int64))
  if same_items:
    return _shared_item_means(np.stack(scores), picks, rng)
  total = np.zeros(samples)
  for r, values in enumerate(scores):
    rows = np.nonzero(picks == r)[0]  # one entry per slot that drew repeat r
    chunk = max(1, _CHUNK_ITEMS // len(values))
    for start in range(0, len(rows), chunk):
      part = rows[start:start + chunk]
      drawn = values[rng.integers(0, len(values), size=(len(part), len(values)))]
      np.add.at(total, part, drawn.mean(axis=1))
  return total / repeats


def _shared_item_means(scores: np.ndarray, picks: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
  """bootstrap_means of scores [R, n] whose columns are the same items in every repeat."""
  repeats, n = scores.shape
  out = np.zeros(len(picks))
  chunk = max(1, _CHUNK_ITEMS // n)
  for start in range(0, len(picks), chunk):
    part = picks[start:start + chunk]
    weights = np.stack([np.bincount(p, minlength=repeats) for p in part]) / repeats
    per_item = weights @ scores  # [c, n]: each item's mean over the drawn repeats
    items = rng.integers(0, n, size=(len(part), n))
    out[start:start + len(part)] = np.take_along_axis(per_item, items, axis=1).mean(axis=1)
  return out


def _interval(scores: List[np.ndarray], samples: int, seed: int,
              same_items: bool) -> tuple:
  means = bootstrap_means(scores, samples, seed, same_items)
  observed = float(np.mean([s.mean() for s in scores]))
  return observed, float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def interval(scores: Sequence[Any], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
             same_items: bool = False) -> Interval:
  """Mean over repeats of the per-item mean, with its 95 % bootstrap interval.

  Args:
    scores: one float array [n_r] per repeat; nan items are not scored and dropped.
    same_items: every repeat scores the same items in the same order (``bootstrap_means``).
  """
  return Interval(*_interval(_per_repeat(scores, "interval", same_items), samples, seed,
                             same_items))


def paired_difference(ours: Sequence[Any], peer: Sequence[Any],
                      samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                      same_items: bool = False) -> Difference:
  """d = ours − peer per item of each repeat, its mean and 95 % bootstrap interval.

  The two sides are paired item by item (same evaluation items, same order, same
  repeat); an item nan on either side is dropped from both.

  Args:
    ours, peer: one float array [n_r] per repeat each, of equal shapes.
    same_items: every repeat scores the same items in the same order (``bootstrap_means``).

  Raises:
    ValueError: different numbers of repeats or of items in a repeat.
  """
  if len(ours) != len(peer):
    raise ValueError(f"paired_difference: ours has {len(ours)} repeats, peer {len(peer)}")
  diffs = []
  for r, (a, b) in enumerate(zip(ours, peer)):
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
      raise ValueError(f"paired_difference: repeat {r} scores {len(a)} items for ours and "
                       f"{len(b)} for the peer; pairs need the same evaluation items")
    diffs.append(a - b)
  return Difference(*_interval(_per_repeat(diffs, "paired_difference", same_items), samples,
                               seed, same_items))


@dataclasses.dataclass(frozen=True)
class TimingRatio:
  """median(ours) / median(peer) and the min–max of the per-round ratios."""
  median: float
  low: float
  high: float
  rounds: int

  def text(self) -> str:
    """``0.42× (0.40–0.47, 5 rounds)``."""
    return f"{self.median:.2f}× ({self.low:.2f}–{self.high:.2f}, {self.rounds} rounds)"

  def as_dict(self) -> dict:
    return {"ratio_median": self.median, "ratio_min": self.low, "ratio_max": self.high,
            "rounds": self.rounds}


def timing_ratio(ours: timing.Timing, peer: timing.Timing,
                 min_rounds: int = MIN_TIMING_ROUNDS) -> TimingRatio:
  """The ratio of two interleaved timings (run i of each side from the same round).

  Raises:
    ValueError: unequal run counts, or fewer than ``min_rounds`` runs.
  """
  if len(ours.runs) != len(peer.runs):
    raise ValueError(f"timing_ratio: ours has {len(ours.runs)} runs, peer "
                     f"{len(peer.runs)}; time both sides in the same interleaved rounds")
  if len(ours.runs) < min_rounds:
    raise ValueError(f"timing_ratio: {len(ours.runs)} runs per side; the protocol needs "
                     f">= {min_rounds}")
  per_round = np.array(ours.runs) / np.maximum(np.array(peer.runs), 1e-12)
  return TimingRatio(ours.median / max(peer.median, 1e-12), float(per_round.min()),
                     float(per_round.max()), len(ours.runs))


def measure_ratio(ours: Callable[[], Any], peer: Callable[[], Any],
                  rounds: int = MIN_TIMING_ROUNDS) -> TimingRatio:
  """Times ``ours`` and ``peer`` ``rounds`` times each, interleaved (order alternating
  every round, long calls repeated too), and returns their ``timing_ratio``."""
  (t_ours, _), (t_peer, _) = timing.time_interleaved([ours, peer], rounds=rounds,
                                                      repeat_below=float("inf"))
  return timing_ratio(t_ours, t_peer)
