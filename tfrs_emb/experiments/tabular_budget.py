"""The tabular experiment's time budget: how much work fits in ``--time_budget`` seconds.

The rule (fixed here, never tuned on evaluation numbers):

1. Shares of the budget: ``PRETRAIN_SHARE`` for pretraining (split evenly between the
   numeric embeddings pretrained for the first ``trials`` trials), ``FIT_SHARE`` for the
   Transformer fits (our trials, the other start's shown row, the repeats' refits; our
   trials and refits twice with the other start's ablation row), ``METRIC_SHARE`` for the
   NCA metric fits (each fit ``METRIC_MIN_FIT_SECONDS``, its tracing and a few epochs,
   then the rest in proportion to its rows squared, what an NCA epoch costs: every step
   scores its batch against all rows; 30 epochs take about 2.5 s on 970 Cover Type rows
   and 45 s on 10,300) and ``GBDT_SHARE`` for the GBDT peers' fits (split evenly between
   its fits), every fit stopping when its part is spent (a GBDT fit gets at least
   ``GBDT_MIN_FIT_SECONDS``, so a loaded machine cannot cut a peer to a few trees), the
   rest for loading, the neighbour heads, UMAP and the export.
2. Pretraining runs epochs (at most ``--pretrain_epochs``, at least one) while the next
   epoch, as long as the last one, still ends before its share's deadline.
3. Its measured seconds per row-epoch, times ``FIT_COST_RATIO`` (a classifier step runs
   one view through the encoder; a pretraining step two, plus the reconstruction heads),
   estimate a fine-tuning row-epoch; ``FIXED_COST_RATIO`` times the first pretraining
   epoch's excess over the fastest later one (graph tracing) estimates a fit's fixed cost
   (it traces its train and validation steps, then its predict and embed functions). The
   fits' epoch count is the fit share, less every planned fit's fixed cost, over the
   row-epochs of one epoch of every planned fit (a fit with k TabM-mini members counts k
   times its rows); while it is below ``MIN_FIT_EPOCHS``, the TabM trials go first (every
   trial with one member: ``FitPlan.ensemble`` False), then trials drop (to 1), then
   cross-fitting folds (to 2). ``--finetune_epochs`` caps it. Trials also drop (to 1)
   while the GBDT fits of the trials beyond the first, at ``GBDT_MIN_FIT_SECONDS`` each,
   exceed the GBDT share: a peer's later trial may be its slowest configuration (CatBoost's
   second is depth 10), which runs every fit to its time limit (on Cover Type, 5 folds of
   it took 325 s of a 1,080 s budget). Once trials, members and folds are set, the epochs
   are sized again with the part of the pretraining share that the kept trials leave
   unused added to the fit share (``pretraining_left``: an embedding only a dropped trial
   needed, every further embedding when our fits start from random weights, pretraining
   stopped before its deadline); on the 32k-row development table 84 s
   of 135 s were unused, the planned 6 epochs stopped fits still improving at 100 %
   labels, and the run ended with 161 s of its budget left.
4. Every Transformer fit also stops after the epoch at which its own allowance (twice its
   estimate, fixed cost excluded) runs out, early stopping's best weights kept.
5. Before each label fraction after the first, the fits' epochs are re-planned from what
   the fits so far measured (``FitLedger``: the median steady epoch's seconds per trained
   row-visit, and each fit's seconds beyond its steady epochs as its fixed cost), so that a
   table whose fits cost more than estimated still ends in its budget. The remaining
   fractions' fits get the lesser of (a) the fit share less the fits' measured seconds so
   far, plus the pretraining share less the pretraining measured so far and less the share
   of each embedding the remaining trials still have to pretrain, and (b) the seconds left
   on the clock less, per remaining fraction, the most seconds a fraction so far spent
   outside its Transformer fits (GBDT peers, heads, NCA), and less ``REST_SHARE``. The
   epochs only shrink (at least one): growing them was tried on Cover Type (6 → 23 epochs
   at 100 %) and bought nothing on the validation-chosen row while the GBDT fits at 100 %
   (above their share: the 60 s floor) took the run 115 s past its budget. The exception
   is a starved plan, below ``MIN_FIT_EPOCHS``: it may grow up to that (never above
   ``--finetune_epochs``) when the measured fits leave the time (credit.csv with 5 repeats
   was planned 1 epoch from a fixed cost of 10.9 s per fit, measured 6.8 s, and ended with
   half its budget unspent). Trials and folds stay; the other shares are untouched.
6. Our fits start from random weights instead of the pretrained ones (``--start=auto``,
   ``choose_start``) when the budget stopped pretraining before
   ``min(MIN_PRETRAIN_EPOCHS, --pretrain_epochs)`` epochs. Fixed on the development tables,
   never on evaluation numbers: with 3 pretraining epochs (the four 32k-row tables) the
   random start's validation accuracy led the pretrained start's at 10 % labels on all
   four (by 1.8 to 3.1 points) and at 100 % on three; with 19 (Cover Type) and 30
   (credit.csv) the pretrained start led at 10 % (by 2.6 points, and by 6 and 24 on two
   credit.csv runs).

``Clock`` prefixes every log line with the time left.
"""

import dataclasses
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.experiments import common

PRETRAIN_SHARE = 0.25
FIT_SHARE = 0.45
METRIC_SHARE = 0.1
GBDT_SHARE = 0.1
GBDT_MIN_FIT_SECONDS = 60.0
METRIC_MIN_FIT_SECONDS = 3.0
FIT_COST_RATIO = 0.5
# Cross-fitted folds on the 32k-row table cost 13-16 s beyond their epochs against a
# pretraining excess of 10-17 s (2 cores): the fixed cost is about the excess itself.
FIXED_COST_RATIO = 1.0
REST_SHARE = 1.0 - PRETRAIN_SHARE - FIT_SHARE - METRIC_SHARE - GBDT_SHARE
MIN_FIT_EPOCHS = 5
MIN_PRETRAIN_EPOCHS = 5
FIT_ALLOWANCE_FACTOR = 2.0


class Clock:
  """Seconds left of a budget started at construction (no budget: ``budget`` 0)."""

  def __init__(self, budget: float, now=time.monotonic):
    self.budget, self._now = float(budget), now
    self.start = now()

  def elapsed(self) -> float:
    return self._now() - self.start

  def left(self) -> float:
    """Seconds left (infinite without a budget)."""
    return self.budget - self.elapsed() if self.budget else float("inf")

  def deadline(self, seconds: float) -> float:
    """A ``time.monotonic`` deadline ``seconds`` from now (infinite without a budget)."""
    return self._now() + seconds if self.budget else float("inf")

  def log(self, log: common.Log) -> common.Log:
    """``log`` with "[N s left] " before each line (unchanged without a budget)."""
    if not self.budget:
      return log
    return lambda message: log(f"[{max(0.0, self.left()):.0f} s left] {message}")


@dataclasses.dataclass(frozen=True)
class FractionWork:
  """One label fraction's Transformer fits: ``labelled`` rows, of which ``fit_rows``
  train the holdout model; ``crossfit``: K fold models instead (each trains on
  (K - 1) / K of the labelled rows); ``heads`` classifiers per fold."""
  labelled: int
  fit_rows: int
  crossfit: bool
  heads: int


@dataclasses.dataclass(frozen=True)
class FitPlan:
  """What fits the budget: epochs per fit, trials, cross-fitting folds, the estimated
  seconds of one fit epoch per trained row, the seconds of one NCA metric fit at each
  label fraction (in ``work`` order) and of one GBDT fit, whether trials with several
  TabM members fit (else every trial has one), and the estimated fixed seconds of one
  Transformer fit."""
  finetune_epochs: int
  trials: int
  crossfit_folds: int
  row_epoch_seconds: float
  metric_fit_seconds: Tuple[float, ...]
  gbdt_fit_seconds: float
  ensemble: bool = True
  fit_fixed_seconds: float = 0.0


def fit_time_limit(row_epoch_seconds: float, epochs: int, rows: int) -> float:
  """Seconds one fit of ``epochs`` over ``rows`` row-visits per epoch may run
  (``FIT_ALLOWANCE_FACTOR`` × its estimate; infinite when ``row_epoch_seconds`` is 0)."""
  if not row_epoch_seconds:
    return float("inf")
  return FIT_ALLOWANCE_FACTOR * epochs * rows * row_epoch_seconds


def epoch_rows(trained_rows: int, batch_size: int, min_steps_per_epoch: int) -> int:
  """Rows one classifier epoch visits (``fit_classifier`` repeats small sets)."""
  steps = max(1, trained_rows // batch_size)
  repeats = max(1, -(-min_steps_per_epoch // steps)) if min_steps_per_epoch else 1
  return trained_rows * repeats


def fixed_seconds(pretrain_epoch_seconds: Sequence[float]) -> float:
  """Pretraining's fixed seconds (first epoch over the fastest later one: the traced
  step); 0 with fewer than two epochs."""
  if len(pretrain_epoch_seconds) < 2:
    return 0.0
  return max(0.0, pretrain_epoch_seconds[0] - min(pretrain_epoch_seconds[1:]))


def _fit_units(members: Sequence[int], trials: int, repeats: int,
               no_pretraining_row: bool) -> int:
  """Single-member fits of our first ``trials`` trials (``members`` each, missing: 1),
  the other start's shown row (the first trial's) and the repeats' refits (the most
  members)."""
  m = [members[i] if i < len(members) else 1 for i in range(trials)]
  ours = sum(m) + (repeats - 1) * max(m)
  return ours * (2 if no_pretraining_row else 1) + m[0]


def _models_and_rows(w: FractionWork, folds: int) -> Tuple[int, int]:
  """(models per fit, each one's trained rows) at ``w``: K fold models on (K - 1) / K of
  the labelled rows when cross-fitted, else one on the fit rows."""
  return (folds, w.labelled * (folds - 1) // folds) if w.crossfit else (1, w.fit_rows)


def _fit_load(work: Sequence[FractionWork], units: int, folds: int, batch_size: int,
              min_steps_per_epoch: int) -> Tuple[float, float]:
  """(fits, row-visits of one epoch of every fit) of ``units`` fits per fold and head."""
  rows = fits = 0.0
  for w in work:
    k, trained = _models_and_rows(w, folds)
    n = units * k * w.heads
    fits += n
    rows += n * epoch_rows(trained, batch_size, min_steps_per_epoch)
  return fits, rows


def _epochs_that_fit(seconds: float, fits: float, rows: float, row_s: float,
                     fixed_s: float) -> int:
  return int((seconds - fits * fixed_s) / max(rows * row_s, 1e-12))


def plan_fits(budget: float, pretrain_row_epoch_seconds: float,
              work: Sequence[FractionWork], *, trials: int, repeats: int, max_epochs: int,
              crossfit_folds: int, batch_size: int, min_steps_per_epoch: int,
              members: Sequence[int] = (), no_pretraining_row: bool = False,
              pretrain_fixed_seconds: float = 0.0, spare_seconds: float = 0.0) -> FitPlan:
  """The fit plan of rules 1 and 3 (module docstring).

  Args:
    budget: the whole budget in seconds.
    pretrain_row_epoch_seconds: measured pretraining seconds per row and epoch.
    work: each label fraction's fits.
    trials, repeats, max_epochs, crossfit_folds: the configured values.
    batch_size, min_steps_per_epoch: the classifier's (small sets are repeated).
    members: TabM-mini members of each trial in trial order (missing: 1); the scratch row
      has the first trial's, each repeat's refit the most of the planned trials'.
    no_pretraining_row: the compared table also runs our trials and refits from the
      other encoder start (``--compare_no_pretraining``: twice our fits).
    pretrain_fixed_seconds: pretraining's fixed seconds (``fixed_seconds``).
    spare_seconds: seconds of another share the fits may use besides their own (the
      pretraining share the planned trials leave unused).
  """
  row_s = pretrain_row_epoch_seconds * FIT_COST_RATIO
  fixed_s = pretrain_fixed_seconds * FIXED_COST_RATIO
  planned = list(members)

  def epochs(t: int, k: int) -> int:
    fits, rows = _fit_load(work, _fit_units(planned, t, repeats, no_pretraining_row), k,
                           batch_size, min_steps_per_epoch)
    return _epochs_that_fit(FIT_SHARE * budget + spare_seconds, fits, rows, row_s, fixed_s)

  def gbdt_per_trial(k: int) -> int:
    """GBDT fits of one configuration: two peers × (K folds, or fit and refit)."""
    return 2 * sum(k if w.crossfit else 2 for w in work)

  def gbdt_over(t: int, k: int) -> bool:
    """The GBDT fits of trials 2 … t, at the floor each, exceed their share."""
    return (t - 1) * gbdt_per_trial(k) * GBDT_MIN_FIT_SECONDS > GBDT_SHARE * budget
  t, k = trials, crossfit_folds
  ensemble = True
  if epochs(t, k) < MIN_FIT_EPOCHS and any(m > 1 for m in planned[:t]):
    planned, ensemble = [], False
  while (epochs(t, k) < MIN_FIT_EPOCHS or gbdt_over(t, k)) and t > 1:
    t -= 1
  while epochs(t, k) < MIN_FIT_EPOCHS and k > 2 and any(w.crossfit for w in work):
    k -= 1
  fits = t + repeats - 1           # metric and GBDT fits of one fold structure
  # NCA fits per fraction and each one's trained rows
  metric = [(fits * models * (2 if no_pretraining_row else 1), rows)
            for models, rows in (_models_and_rows(w, k) for w in work)]
  metric_fits = sum(n for n, _ in metric)
  metric_cost = sum(n * float(rows) ** 2 for n, rows in metric)
  floor = min(METRIC_MIN_FIT_SECONDS, METRIC_SHARE * budget / metric_fits)
  rest = METRIC_SHARE * budget - floor * metric_fits
  gbdt_fits = fits * gbdt_per_trial(k)
  return FitPlan(max(1, min(max_epochs, epochs(t, k))), t, k, row_s,
                 tuple(floor + rest * float(rows) ** 2 / max(metric_cost, 1.0)
                       for _, rows in metric),
                 max(GBDT_MIN_FIT_SECONDS, GBDT_SHARE * budget / gbdt_fits), ensemble,
                 fixed_s)


@dataclasses.dataclass
class FitLedger:
  """What the Transformer fits so far measured (rule 5).

  Attributes:
    seconds: wall seconds of every fit so far (building, training, predicting).
    fits: fits so far.
    steady_seconds: the fits' epochs, each counted at its fit's steady epoch length (the
      median of its epochs after the first, which also traces).
    row_epoch_seconds: each fit's steady epoch seconds per trained row-visit (fits of two
      or more epochs).
  """
  seconds: float = 0.0
  fits: int = 0
  steady_seconds: float = 0.0
  row_epoch_seconds: List[float] = dataclasses.field(default_factory=list)

  def record(self, seconds: float, fits: Sequence[Tuple[int, Sequence[float]]]) -> None:
    """Adds ``fits`` that together took ``seconds``: each as (row-visits per epoch, all
    members counted; its epochs' wall seconds)."""
    for row_visits, epochs in fits:
      if len(epochs) > 1:
        steady = float(np.median(epochs[1:]))
        self.row_epoch_seconds.append(steady / max(row_visits, 1))
        self.steady_seconds += steady * len(epochs)
    self.seconds += seconds
    self.fits += len(fits)

  def row_epoch_estimate(self) -> Optional[float]:
    """Median seconds per trained row-visit of a steady epoch (None: no fit measured one)."""
    return float(np.median(self.row_epoch_seconds)) if self.row_epoch_seconds else None

  def fixed_estimate(self) -> float:
    """Mean seconds a fit spent beyond its steady epochs (0 before any fit)."""
    return max(0.0, self.seconds - self.steady_seconds) / self.fits if self.fits else 0.0


def replan_epochs(seconds: float, work: Sequence[FractionWork], *, trials: int, repeats: int,
                  members: Sequence[int], crossfit_folds: int, batch_size: int,
                  min_steps_per_epoch: int, no_pretraining_row: bool, max_epochs: int,
                  row_epoch_seconds: float, fit_fixed_seconds: float) -> int:
  """Rule 5: the epochs (1 … ``max_epochs``, the planned epochs) of every fit of the
  remaining fractions' ``work`` that fit in ``seconds`` at the measured
  ``row_epoch_seconds`` and ``fit_fixed_seconds``; the other arguments as ``plan_fits``
  (``members``: the trials' members after that plan)."""
  fits, rows = _fit_load(work, _fit_units(members, trials, repeats, no_pretraining_row),
                         crossfit_folds, batch_size, min_steps_per_epoch)
  return max(1, min(max_epochs, _epochs_that_fit(seconds, fits, rows, row_epoch_seconds,
                                                 fit_fixed_seconds)))


def replan_cap(planned: int, configured: int) -> int:
  """Rule 5's most epochs: the ``planned`` ones, or from a starved plan (below
  ``MIN_FIT_EPOCHS``) up to that, never above the ``configured`` ``--finetune_epochs``."""
  return max(planned, min(MIN_FIT_EPOCHS, configured))


def replan_seconds(budget: float, ledger: FitLedger, pretrained_seconds: float,
                   embeddings_to_pretrain: int, pretrain_seconds_each: float,
                   seconds_left: float, other_seconds: float) -> float:
  """Rule 5's seconds for the remaining fits: the lesser of the shares' (the fit share
  less ``ledger.seconds``, plus the pretraining share less ``pretrained_seconds`` and less
  ``pretrain_seconds_each`` for each of ``embeddings_to_pretrain``) and the clock's
  (``seconds_left`` less ``other_seconds``, the remaining fractions' work outside their
  fits, less that pretraining and ``REST_SHARE``)."""
  shares = FIT_SHARE * budget - ledger.seconds + pretraining_left(
      budget, pretrained_seconds, embeddings_to_pretrain, pretrain_seconds_each)
  clock = (seconds_left - other_seconds - REST_SHARE * budget
           - embeddings_to_pretrain * pretrain_seconds_each)
  return min(shares, clock)


def pretraining_left(budget: float, pretrained_seconds: float, embeddings_to_pretrain: int,
                     pretrain_seconds_each: float) -> float:
  """The pretraining share less the ``pretrained_seconds`` spent and less
  ``pretrain_seconds_each`` for each of the ``embeddings_to_pretrain`` the planned trials
  still need (negative: pretraining overran its share)."""
  return (PRETRAIN_SHARE * budget - pretrained_seconds
          - embeddings_to_pretrain * pretrain_seconds_each)


def choose_start(start: str, epochs_run: int, configured_epochs: int) -> Tuple[str, str]:
  """Rule 6: the encoder start of our fits ("pretrained" or "random") for ``--start`` and
  the pretraining epochs run out of the ``configured_epochs``, and the reason in words."""
  if start != "auto":
    return start, f"--start={start}"
  enough = min(MIN_PRETRAIN_EPOCHS, configured_epochs)
  if epochs_run < enough:
    return "random", (f"--start=auto: random weights, the time budget stopped pretraining "
                      f"after {epochs_run} of {configured_epochs} epochs (below {enough})")
  return "pretrained", (f"--start=auto: the pretrained weights ({epochs_run} of "
                        f"{configured_epochs} pretraining epochs, at least {enough})")


def describe(plan: FitPlan, pretrain_epochs: List[int], budget: float) -> str:
  """The plan in one line for the report."""
  return (f"--time_budget={budget:g} s: pretraining epochs {pretrain_epochs}, fine-tuning "
          f"epochs {plan.finetune_epochs}, trials {plan.trials}, cross-fitting folds "
          f"{plan.crossfit_folds}{'' if plan.ensemble else ', TabM trials left out'} "
          f"(estimated {plan.row_epoch_seconds * 1e6:.1f} µs per fitted row-epoch, "
          f"{plan.fit_fixed_seconds:.1f} s fixed per fit); at most "
          f"{' / '.join(f'{m:.0f}' for m in plan.metric_fit_seconds)} s per NCA metric fit "
          f"(by label fraction), {plan.gbdt_fit_seconds:.0f} s per GBDT fit")
