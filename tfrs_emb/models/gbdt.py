"""Tuned gradient-boosting peers (LightGBM, CatBoost) of the tabular experiment: their
documented search spaces, one fit with early stopping, and the label protocol the
Transformer rows follow.

Search spaces are ordered lists of configurations, one per trial: trial 0 is the
library's usual setting (the project's untuned LightGBM row: learning rate 0.05, 63
leaves; CatBoost's defaults: depth 6, l2_leaf_reg 3), then the points of the grid in a
fixed seeded order, so the first T configurations are the T trials of an equal budget.

``fit_protocol`` runs one configuration on the labelled rows through given folds: with
several folds (cross-fitting) one model per fold, early-stopped on its held-out fold,
out-of-fold probabilities for choosing and the fold models bagged (probabilities
averaged) for new rows; with one (fit, validation) fold, early stopping and choices on
the validation rows, then a refit on every labelled row with the kept number of trees
scaled by the row ratio.

Shapes: N rows, D feature columns, C classes.
"""

import dataclasses
import inspect
import itertools
import time
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

LIGHTGBM_GRID = {"num_leaves": (15, 31, 63, 127, 255),
                 "min_child_samples": (5, 10, 20, 50, 100),
                 "feature_fraction": (0.5, 0.7, 0.9, 1.0),
                 "lambda_l2": (0.0, 0.1, 1.0, 10.0),
                 "learning_rate": (0.03, 0.05, 0.1)}
LIGHTGBM_DEFAULT = {"num_leaves": 63, "min_child_samples": 20, "feature_fraction": 1.0,
                    "lambda_l2": 0.0, "learning_rate": 0.05}
CATBOOST_GRID = {"depth": (4, 6, 8, 10),
                 "learning_rate": (0.03, 0.05, 0.1),
                 "l2_leaf_reg": (1.0, 3.0, 10.0),
                 "random_strength": (0.5, 1.0, 2.0)}
CATBOOST_DEFAULT = {"depth": 6, "learning_rate": 0.05, "l2_leaf_reg": 3.0,
                    "random_strength": 1.0}
PEERS = ("lightgbm", "catboost")
_SPACE_SEED = 0


def search_space(peer: str) -> Tuple[Dict[str, Any], ...]:
  """Every configuration of ``peer`` in trial order (defaults first, then the grid in a
  fixed order drawn with seed 0)."""
  grid, default = {"lightgbm": (LIGHTGBM_GRID, LIGHTGBM_DEFAULT),
                   "catboost": (CATBOOST_GRID, CATBOOST_DEFAULT)}[peer]
  points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
  points = [p for p in points if p != default]
  order = np.random.default_rng(_SPACE_SEED).permutation(len(points))
  return (dict(default),) + tuple(points[i] for i in order)


def _full_probs(probs: np.ndarray, seen: np.ndarray, num_classes: int) -> np.ndarray:
  """[N, C] probabilities from a model that saw only the classes ``seen``."""
  out = np.zeros((len(probs), num_classes), np.float64)
  out[:, np.asarray(seen, int)] = probs
  return out


def _catboost_frame(x: np.ndarray, categorical: Sequence[int]):
  """CatBoost's view: categorical columns as integer category ids (native categorical
  handling), the rest as floats (NaN = missing)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  frame = pd.DataFrame(x)
  for j in categorical:
    frame[j] = x[:, j].astype(np.int64)
  return frame


@dataclasses.dataclass
class GbdtSettings:
  """What every fit of a peer shares: tree cap, early-stopping rounds, threads, which
  columns hold category ids, and the seconds after which one fit adds no more trees
  (its best iteration so far kept)."""
  max_trees: int
  early_stopping: int
  threads: int
  categorical: Tuple[int, ...]
  seconds_per_fit: float = float("inf")


class _CatBoostTimeLimit:
  """CatBoost callback: stops adding trees after ``seconds``."""

  def __init__(self, seconds: float):
    self.end = time.monotonic() + seconds

  def after_iteration(self, info) -> bool:
    del info
    return time.monotonic() < self.end


def _lightgbm_time_limit(seconds: float):
  """LightGBM callback: stops adding trees after ``seconds`` (the trees so far kept)."""
  import lightgbm as lgb  # pylint: disable=import-outside-toplevel
  end = time.monotonic() + seconds

  def callback(env):
    if time.monotonic() > end:
      raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)
  return callback


def _lightgbm_eval(model, val_x, val_y) -> Dict[str, Any]:
  """LightGBM's early-stopping set: ``eval_X`` / ``eval_y`` where the installed version has
  them (``eval_set`` is deprecated there), else ``eval_set``."""
  if "eval_X" in inspect.signature(model.fit).parameters:
    return {"eval_X": (val_x,), "eval_y": (val_y,)}
  return {"eval_set": [(val_x, val_y)]}


def fit_one(peer: str, params: Mapping[str, Any], settings: GbdtSettings, seed: int,
            train_x: np.ndarray, train_y: np.ndarray, val_x=None, val_y=None,
            trees: int = 0):
  """One model: early stopping on (val_x, val_y) when given, else exactly ``trees``
  trees. Returns (model, trees kept)."""
  stop = val_x is not None
  n_trees = settings.max_trees if stop else max(1, trees)
  if peer == "lightgbm":
    import lightgbm as lgb  # pylint: disable=import-outside-toplevel
    model = lgb.LGBMClassifier(n_estimators=n_trees, random_state=seed,
                               n_jobs=settings.threads, verbose=-1, **params)
    callbacks = [_lightgbm_time_limit(settings.seconds_per_fit)]
    if stop:
      callbacks.insert(0, lgb.early_stopping(settings.early_stopping, verbose=False))
    model.fit(train_x, train_y, categorical_feature=list(settings.categorical) or "auto",
              callbacks=callbacks, **(_lightgbm_eval(model, val_x, val_y) if stop else {}))
    return model, int(model.best_iteration_ or n_trees)
  import catboost  # pylint: disable=import-outside-toplevel
  model = catboost.CatBoostClassifier(iterations=n_trees, random_seed=seed,
                                      thread_count=settings.threads, verbose=False,
                                      allow_writing_files=False, **params)
  cats = list(settings.categorical)
  model.fit(_catboost_frame(train_x, cats), train_y, cat_features=cats,
            callbacks=[_CatBoostTimeLimit(settings.seconds_per_fit)],
            **({"eval_set": (_catboost_frame(val_x, cats), val_y),
                "early_stopping_rounds": settings.early_stopping, "use_best_model": True}
               if stop else {}))
  return model, int(model.tree_count_)


def predict_proba(peer: str, model, x: np.ndarray, settings: GbdtSettings,
                  num_classes: int) -> np.ndarray:
  """float64 [N, C] class probabilities."""
  data = _catboost_frame(x, settings.categorical) if peer == "catboost" else x
  return _full_probs(model.predict_proba(data), model.classes_, num_classes)


@dataclasses.dataclass
class ProtocolFit:
  """One configuration run through the label protocol.

  selection_probs: [len(selection rows), C] out-of-fold (or validation) probabilities,
  fold after fold; models: the fold models (bagged) or the one refit model; trees: trees
  kept per early-stopped fit.
  """
  peer: str
  models: List[Any]
  selection_probs: np.ndarray
  trees: List[int]
  settings: GbdtSettings
  num_classes: int

  def predict_proba(self, x: np.ndarray) -> np.ndarray:
    """[N, C]: the mean of the models' probabilities."""
    return np.mean([predict_proba(self.peer, m, x, self.settings, self.num_classes)
                    for m in self.models], axis=0)


def fit_protocol(peer: str, params: Mapping[str, Any], settings: GbdtSettings, seed: int,
                 x: np.ndarray, y: np.ndarray,
                 folds: Sequence[Tuple[np.ndarray, np.ndarray]],
                 num_classes: int) -> ProtocolFit:
  """Runs ``params`` through ``folds`` (absolute row indices into x / y; module
  docstring): K > 1 folds are cross-fitted and bagged, one fold is early-stopped on its
  validation rows and then refit on all its rows."""
  models, held, trees = [], [], []
  for fit_idx, held_idx in folds:
    model, kept = fit_one(peer, params, settings, seed, x[fit_idx], y[fit_idx],
                          x[held_idx], y[held_idx])
    models.append(model)
    trees.append(kept)
    held.append(predict_proba(peer, model, x[held_idx], settings, num_classes))
  if len(folds) == 1:
    fit_idx, held_idx = folds[0]
    everything = np.concatenate([fit_idx, held_idx])
    refit_trees = int(round(trees[0] * len(everything) / len(fit_idx)))
    models = [fit_one(peer, params, settings, seed, x[everything], y[everything],
                      trees=refit_trees)[0]]
  return ProtocolFit(peer, models, np.concatenate(held), trees, settings, num_classes)
