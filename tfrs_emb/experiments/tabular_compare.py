"""The tabular experiment's compared table at one label fraction (SPEC.md "Comparison
protocol" through ``experiments.harness``): the embedding model chosen on validation
("ours") against LightGBM and CatBoost tuned with the same number of trials, and
optionally the same protocol from the other encoder start (pretrained or random weights: a
shown row, pretraining's ablation, compared to ours apart).

Items are row indices of the table. Every method's fit runs the whole label protocol on
the labelled rows it is given (``tabular_data.LabelSplit``, the same folds for every
method): cross-fitted below ``crossfit_below`` validation rows (K fold models, choices on
out-of-fold predictions, the fold models bagged for new rows), else early stopping and
choices on the validation holdout, after which our side indexes every labelled row in its
neighbour heads and a GBDT peer is refit on every labelled row (``models.gbdt``).

- Development (what tuning and choosing see): train = the labelled rows of the label split
  drawn with the run's seed, dev = its selection rows (the holdout, or every labelled row
  scored out of fold). A fit's score on the dev rows is its validation / out-of-fold
  prediction, never a prediction by a model trained on that row.
- Evaluation(r): the labelled rows of the label split drawn with seed + r (the repeat's
  label subset and folds) and the evaluation rows, the same in every repeat; repeat r
  refits with training seed + r.

A fit with a given (configuration, seed, repeat) is computed once and reused, so the
evaluation's refit of repeat 0 is the tuning fit of the chosen configuration.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.experiments.tabular_data import LabelSplit
from tfrs_emb.metrics import comparison
from tfrs_emb.models import gbdt

OURS = "embedding (validation-chosen)"
# Our protocol from the other encoder start (keyed by that start): pretraining's ablation,
# shown only.
OTHER_START = {"random": "embedding, no pretraining",
               "pretrained": "embedding, pretrained start"}
PEER_ROWS = {"lightgbm": "LightGBM (tuned)", "catboost": "CatBoost (tuned)"}


@dataclasses.dataclass
class LabelledFit:
  """A method's protocol run on one label split.

  selection_ids: the split's selection rows; selection_pred: int [len(selection_ids)]
  their validation / out-of-fold predicted classes; predict: row ids → int predicted
  classes of rows no fit of this run trained on; detail: what produced them.
  """
  selection_ids: Tuple[int, ...]
  selection_pred: np.ndarray
  predict: Callable[[np.ndarray], np.ndarray]
  detail: Any = None


# (trial configuration, training seed, label split of the repeat) -> LabelledFit
FitFn = Callable[[Mapping[str, Any], int, LabelSplit], LabelledFit]


def scorer(labels: np.ndarray) -> Callable[[LabelledFit, harness.Split], np.ndarray]:
  """Per-item correctness (1.0 / 0.0) of a fit on a split's rows: its selection
  predictions on the selection rows, ``predict`` on any other rows."""
  def score(fit: LabelledFit, split: harness.Split) -> np.ndarray:
    rows = np.asarray(split.ids, np.int64)
    pred = (fit.selection_pred if split.ids == fit.selection_ids else fit.predict(rows))
    return (np.asarray(pred) == labels[rows]).astype(np.float64)
  return score


def gbdt_fit(peer: str, settings: gbdt.GbdtSettings, x: np.ndarray, y: np.ndarray,
             num_classes: int) -> FitFn:
  """A peer's protocol fit over the LightGBM feature matrix ``x`` [N, D]."""
  def fit(params: Mapping[str, Any], seed: int, split: LabelSplit) -> LabelledFit:
    run = gbdt.fit_protocol(peer, params, settings, seed, x, y, split.folds, num_classes)
    return LabelledFit(tuple(int(i) for i in split.selection_idx),
                       run.selection_probs.argmax(axis=1),
                       lambda rows: run.predict_proba(x[rows]).argmax(axis=1), run)
  return fit


@dataclasses.dataclass
class FractionComparison:
  """The compared table of one label fraction and every fit it made (by method, keyed
  (configuration, seed, repeat)); ``other_start``: the start of the shown ablation row
  (None without it)."""
  comparison: harness.Comparison
  fits: Dict[str, Dict]
  trials: int
  other_start: Optional[str] = None

  def pretraining_difference(self) -> Optional[comparison.Difference]:
    """The pretrained start − the random start, same protocol (ours and the ablation row,
    whichever starts where; None without that row)."""
    if self.other_start is None:
      return None
    c, other = self.comparison, OTHER_START[self.other_start]
    return (c.difference(c.ours, other) if self.other_start == "random"
            else c.difference(other, c.ours))

  def fit(self, method: str, config: Mapping[str, Any], seed: int,
          repeat: int = 0) -> LabelledFit:
    return self.fits[method][(tuple(sorted(config.items())), seed, repeat)]

  def peer_better_note(self) -> str:
    """A sentence when a GBDT peer beat ours on validation, else ''."""
    c = self.comparison
    ours, peer = c.row(c.ours), c.row(c.best_peer) if c.best_peer else None
    if peer is None or peer.dev <= ours.dev:
      return ""
    return (f"{c.best_peer} was better on validation ({peer.dev:.4f}) than the chosen "
            f"embedding model ({ours.dev:.4f}); the export is still the embedding model")


def compare_fraction(ours_space: Sequence[Mapping[str, Any]], fit_ours: FitFn,
                     label_split: Callable[[int], LabelSplit], labels: np.ndarray,
                     eval_idx: np.ndarray, lgbm: Tuple[np.ndarray, List[int]],
                     num_classes: int, *, trials: int, repeats: int, seed: int,
                     max_trees: int, early_stopping: int, threads: int = 2,
                     seconds_per_fit: float = float("inf"),
                     fit_other_start: Optional[Tuple[str, FitFn]] = None,
                     log: common.Log = common.no_log) -> FractionComparison:
  """Runs the harness at one label fraction (module docstring).

  Args:
    ours_space: our configurations in trial order (trial 0: the run's own configuration).
    fit_ours: our protocol fit.
    label_split: repeat r → the label split drawn with seed + r.
    labels: int [N]; eval_idx: the evaluation rows; lgbm: (x [N, D], categorical columns).
    trials: the equal budget of every method.
    seconds_per_fit: a GBDT fit adds no trees after this many seconds.
    fit_other_start: if given, (start, fit): a shown row ``OTHER_START[start]``, this fit
      over ``ours_space`` with the same budget and repeats (pretraining vs scratch, same
      protocol: ``FractionComparison.pretraining_difference``).
  """
  x, cats = lgbm
  settings = gbdt.GbdtSettings(max_trees, early_stopping, threads, tuple(cats),
                               seconds_per_fit)
  score = scorer(labels)
  fits, methods = {}, []
  rows = [(OURS, tuple(ours_space), fit_ours)]
  shown = []
  if fit_other_start is not None:
    shown = [OTHER_START[fit_other_start[0]]]
    rows.append((shown[0], tuple(ours_space), fit_other_start[1]))
  rows += [(PEER_ROWS[p], gbdt.search_space(p), gbdt_fit(p, settings, x, labels, num_classes))
           for p in gbdt.PEERS]
  for name, space, fit in rows:
    # once per (configuration, seed, repeat); Split.data is (repeat, LabelSplit)
    run, fits[name] = harness.memoized(lambda c, train, s, fit=fit: fit(c, s, train.data[1]),
                                       data_key=lambda train: train.data[0])
    methods.append(harness.Method(name, space, run, score))
  splits = {0: label_split(0)}

  def split_of(repeat: int) -> LabelSplit:
    if repeat not in splits:
      splits[repeat] = label_split(repeat)
    return splits[repeat]
  first = split_of(0)
  development = harness.Development(
      harness.Split(tuple(int(i) for i in np.concatenate(first.folds[0])), (0, first)),
      harness.Split(tuple(int(i) for i in first.selection_idx), (0, first)))
  test = harness.Split(tuple(int(i) for i in eval_idx), None)

  def evaluation(repeat: int) -> harness.Evaluation:
    split = split_of(repeat)
    return harness.Evaluation(
        harness.Split(tuple(int(i) for i in np.concatenate(split.folds[0])),
                      (repeat, split)), test)
  result = harness.compare(methods, development, evaluation, repeats=repeats, seed=seed,
                           trials=trials, ours=[OURS],
                           shown=shown, log=log)
  return FractionComparison(result, fits, trials,
                            fit_other_start[0] if fit_other_start else None)
