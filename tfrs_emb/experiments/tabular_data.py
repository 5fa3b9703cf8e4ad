"""The tabular experiment's rows: the labelled table read, split and encoded once
(``PreparedTable``), the label-free rows for pretraining, and each label fraction's
labelled subset with its holdout or cross-fitting folds (``LabelSplit``).

``config`` arguments are ``experiments.tabular.Config``.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.data import table as tbl


@dataclasses.dataclass
class PreparedTable:
  """The labelled table encoded for the models (scaling from the training split only).

  features: ``continuous`` float32 [N, C] scaled (NaN = missing), ``categorical`` int32
  [N, K]; raw_continuous: float32 [N, C] unscaled (LightGBM); labels: int32 [N];
  train_idx / eval_idx: the split.
  """
  table: tbl.Table
  schema: tbl.TableSchema
  scaler: tbl.Scaler
  features: Dict[str, np.ndarray]
  raw_continuous: np.ndarray
  labels: np.ndarray
  train_idx: np.ndarray
  eval_idx: np.ndarray


def prepare(config) -> PreparedTable:
  """Reads, splits, infers the schema on the training split and encodes every row."""
  if not config.data or not config.label_column:
    raise ValueError("--data (a CSV or Parquet table) and --label_column are required")
  table = tbl.read_table(config.data)
  classes = tbl.label_classes(table, config.label_column)
  check_classification_label(table.path, config.label_column, classes, config.max_classes)
  labels = tbl.encode_labels(table, config.label_column, classes)
  if config.max_rows and config.max_rows < len(table):
    _, keep = tbl.stratified_split(labels, config.max_rows / len(table), config.seed)
    table, labels = table.subset(keep), labels[keep]
  train_idx, eval_idx = tbl.stratified_split(labels, config.eval_fraction, config.seed)
  schema = tbl.infer_schema(
      table, config.label_column, classes, train_idx,
      categorical=config.categorical_columns, numeric=config.numeric_columns,
      drop=config.drop_columns, onehot_groups=config.onehot_groups,
      max_integer_categories=config.max_integer_categories,
      min_category_count=config.min_category_count)
  encoded = tbl.encode_features(table, schema)
  scaler = tbl.Scaler.fit(encoded["continuous"][train_idx],
                          tbl.log1p_mask(schema, config.log1p_columns),
                          config.numeric_scaling)
  features = {"continuous": scaler.transform(encoded["continuous"]),
              "categorical": encoded["categorical"]}
  return PreparedTable(table, schema, scaler, features, encoded["continuous"], labels,
                       train_idx, eval_idx)


def check_classification_label(path, label: str, classes: Sequence[str],
                               max_classes: int) -> None:
  """Refuses a numeric (regression) label: every class is a number and one of them is not
  an integer, or there are more than ``max_classes`` numeric classes. The error names the file,
  the column and what a label column must hold."""
  try:
    numbers = [float(c) for c in classes]
  except ValueError:
    numbers = None
  fractions = [c for c, v in zip(classes, numbers or ()) if not v.is_integer()]
  if fractions or (numbers is not None and len(classes) > max_classes):
    why = (f"non-integer numbers such as {fractions[0]!r}" if fractions else
           f"{len(classes)} distinct values (more than --max_classes={max_classes})")
    raise ValueError(
        f"{path}: label column {label!r} looks numeric (a regression target): it holds "
        f"{why}; this experiment classifies, so the label must be a class (strings or "
        f"integers, at most {max_classes} classes). Bin the column into classes or pick "
        "another label column")


def column_rows(prep: PreparedTable) -> List[dict]:
  """The schema's rows (``TableSchema.describe``) with each continuous column's scaling."""
  scaling = prep.scaler.describe(prep.schema.continuous)
  return [{**row, "scaling": scaling.get(row["feature"], "")}
          for row in prep.schema.describe()]


def select_rows(features: Dict[str, np.ndarray], index: np.ndarray) -> Dict[str, np.ndarray]:
  """Rows ``index`` of every feature array."""
  return {k: v[index] for k, v in features.items()}


def pretraining_features(config, prep: PreparedTable) -> Dict[str, np.ndarray]:
  """Label-free rows for pretraining, scaled with the training split's statistics.

  ``pretrain_on``: "train" (training-split features only) or "all" (also the evaluation
  rows' features, never their labels). Rows of every ``unlabelled_data`` table (same
  feature columns; a label column there is ignored) are added.
  """
  rows = prep.train_idx if config.pretrain_on == "train" else np.arange(len(prep.labels))
  parts = [select_rows(prep.features, rows)]
  for path in config.unlabelled_data:
    extra = tbl.encode_features(tbl.read_table(path), prep.schema)
    parts.append({"continuous": prep.scaler.transform(extra["continuous"]),
                  "categorical": extra["categorical"]})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def eval_rows(prep: PreparedTable) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
  """Features and labels of the evaluation rows."""
  return select_rows(prep.features, prep.eval_idx), prep.labels[prep.eval_idx]


@dataclasses.dataclass
class LabelSplit:
  """One label fraction: ``lab`` indexes the labelled rows within the training split, of
  which ``fit_idx`` train and ``val_idx`` (absolute row indices) validate (LightGBM's
  early stopping). ``folds``: (trained, held-out) absolute row indices of each model fit:
  the holdout ``[(fit_idx, val_idx)]``, or, cross-fitted (``Config.crossfit_below``), K
  stratified folds of all labelled rows, each held out once. Early stopping uses a fold's
  held-out rows; every choice uses the held-out rows of all folds (``selection_idx``),
  each predicted by the models that did not train on it. A class with a single labelled
  row is trained on by every fold and held out by none (``unscored_idx``), as the holdout
  keeps such a row on its fit side."""
  fraction: float
  lab: np.ndarray
  fit_idx: np.ndarray
  val_idx: np.ndarray
  folds: List[Tuple[np.ndarray, np.ndarray]]

  @property
  def selection_idx(self) -> np.ndarray:
    """Rows every choice is scored on: the held-out rows, fold after fold."""
    return np.concatenate([held for _, held in self.folds])

  @property
  def unscored_idx(self) -> np.ndarray:
    """Labelled rows no fold holds out (classes with a single labelled row)."""
    return np.setdiff1d(np.concatenate(self.folds[0]), self.selection_idx)


def label_split(config, prep: PreparedTable, frac: float,
                seed: Optional[int] = None) -> LabelSplit:
  """Split step of one label fraction: the stratified labelled subset of the training
  split (all of it at 1.0) and its fit / validation halves (or folds), drawn with
  ``seed`` (default ``config.seed``; a repeat of the comparison draws its own)."""
  seed = config.seed if seed is None else seed
  train_idx, train_y = prep.train_idx, prep.labels[prep.train_idx]
  _, lab = (tbl.stratified_split(train_y, frac, seed + 1) if frac < 1.0
            else (None, np.arange(len(train_idx))))
  fit_rel, val_rel = tbl.stratified_split(train_y[lab], config.val_fraction, seed + 2)
  fit_idx, val_idx = train_idx[lab[fit_rel]], train_idx[lab[val_rel]]
  tbl.require_every_class(prep.labels[fit_idx], prep.schema.classes,
                          f"label fraction {frac:g}: training rows", pool=train_y)
  folds = [(fit_idx, val_idx)]
  if len(val_idx) < config.crossfit_below:
    labelled = train_idx[lab]
    parts = tbl.stratified_folds(train_y[lab], config.crossfit_folds, seed + 2)
    folds = [(np.setdiff1d(labelled, labelled[p]), labelled[p]) for p in parts]
  _check_fold_sizes(frac, len(lab), folds)
  return LabelSplit(frac, lab, fit_idx, val_idx, folds)


MIN_FIT_ROWS = 2  # LightGBM refuses fewer; one row teaches no model anything


def _check_fold_sizes(frac: float, labelled: int,
                      folds: Sequence[Tuple[np.ndarray, np.ndarray]]) -> None:
  """Raises ValueError (before any training) naming the fraction, its labelled rows and
  what each fit needs: ``MIN_FIT_ROWS`` trained rows and one held-out row."""
  for j, (fit, held) in enumerate(folds):
    if len(fit) < MIN_FIT_ROWS or not len(held):
      kind = f"cross-fitting fold {j + 1}/{len(folds)}" if len(folds) > 1 else "holdout"
      raise ValueError(
          f"label fraction {frac:g}: {labelled} labelled row(s) are too few: the {kind} "
          f"trains on {len(fit)} and holds out {len(held)}, but every fit needs at least "
          f"{MIN_FIT_ROWS} training rows and 1 held-out row, so at least "
          f"{_min_rows(len(folds))} labelled rows in classes with 2 or more rows. Raise the "
          "label fraction, lower --crossfit_folds, or add rows")


def _min_rows(k: int) -> int:
  """Fewest rows whose k folds (sizes differing by at most one; k = 1: a holdout) each
  hold one row out and train on ``MIN_FIT_ROWS``."""
  if k == 1:
    return MIN_FIT_ROWS + 1
  n = k
  while n - -(-n // k) < MIN_FIT_ROWS:
    n += 1
  return n
