"""Generic labelled tables (CSV or Parquet) for the tabular Transformer.

Column roles: *continuous* (numbers; scaled), *categorical* (any values, compared as
stripped strings) and *one-hot groups* (columns ``PREFIX*`` holding 0/1, collapsed into one
categorical feature whose categories are the member column names). Types not declared are
inferred: a column whose every non-missing cell parses as a finite number is continuous,
otherwise categorical; with ``max_integer_categories`` > 0 an integer column with at most
that many distinct values is categorical too.

Documented behaviours:

- Header names and cells are stripped of surrounding whitespace (``", "`` separators).
  Blank lines are skipped (file lines still counted); a row with too few or too many
  fields, or spanning several lines (a quoted line break, unsupported, or a stray quote),
  is an error naming its line. Only commas separate fields: a one-column header holding
  tabs, semicolons or pipes is an error naming the likely separator.
- Missing: an empty cell, or in a continuous column a ``MISSING_STRINGS`` token (``?``,
  ``-`` and pandas' defaults: ``NA``, ``NaN``, ``n/a``, ``null``, ``None``, ``#N/A``, ...);
  the column's type origin says how many cells each token made missing. Continuous
  missing values stay NaN (the model has a learned "missing" token per feature);
  categorical missing cells get id ``MISSING_ID``; a one-hot group row with no 1 is missing.
- A category not in the training vocabulary (unseen, or rarer than
  ``min_category_count`` in training) gets ``OOV_ID`` (in the exported model too).
- Errors name the file, the line (header = line 1) and the column: a non-numeric or
  non-finite value in a continuous column, a one-hot member other than 0/1, a one-hot
  group with several 1s, a missing label, a label column with a single class.
- A table whose every feature is constant, all missing or (categorical) an id with no
  value seen twice is an error naming each column and why: nothing can be learnt.
- Parquet: two columns whose names are equal once stripped, or a column of lists /
  arrays / maps, are errors naming the columns. A one-hot prefix that matches the label
  column is an error (the label would become a feature).
- Splits: ``stratified_split`` keeps a row of every class on its ``rest`` side, and
  ``require_every_class`` names a class that a set of training rows lacks (e.g. at a
  small label fraction) instead of training without it. ``stratified_folds`` deals a
  class with a single row into no fold, so no fold's model trains without it.
- Any header name is allowed; the serving export maps names that are not valid input
  names to sanitised ones (``models.tabular_serving.signature_keys``).
"""

import csv
import dataclasses
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tfrs_emb.core import csv_records

MISSING_ID = 0
OOV_ID = 1
FIRST_CATEGORY_ID = 2
# A continuous column's missing cells: empty, '?', '-' and pandas' default NA tokens.
MISSING_STRINGS = ("", "?", "-", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN",
                   "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None",
                   "n/a", "nan", "null")


@dataclasses.dataclass(frozen=True)
class CategoricalFeature:
  """One categorical feature: a column, or a one-hot group (``members`` non-empty).

  ``vocabulary``: category strings; category i has id ``FIRST_CATEGORY_ID + i``.
  """
  name: str
  vocabulary: Tuple[str, ...]
  members: Tuple[str, ...] = ()

  @property
  def cardinality(self) -> int:
    return FIRST_CATEGORY_ID + len(self.vocabulary)


@dataclasses.dataclass(frozen=True)
class TableSchema:
  """Feature columns, label mapping and how each column's type was decided.

  continuous: names in model order; categorical: features in model order; label: label
  column; classes: label strings, class id = position; origins: column → "declared" or
  the inference reason (saved in the report).
  """
  continuous: Tuple[str, ...]
  categorical: Tuple[CategoricalFeature, ...]
  label: str
  classes: Tuple[str, ...]
  origins: Dict[str, str]

  @property
  def cardinalities(self) -> Tuple[int, ...]:
    return tuple(f.cardinality for f in self.categorical)

  def describe(self) -> List[dict]:
    """One row per feature: name, type, categories, how the type was decided."""
    rows = [{"feature": c, "type": "continuous", "categories": "",
             "decided by": self.origins[c]} for c in self.continuous]
    rows += [{"feature": f.name, "type": "one-hot group" if f.members else "categorical",
              "categories": len(f.vocabulary), "decided by": self.origins[f.name]}
             for f in self.categorical]
    return rows


@dataclasses.dataclass
class Table:
  """A read table: stripped string cells, ``line`` = file line of each row (header = 1)."""
  path: pathlib.Path
  frame: pd.DataFrame
  lines: np.ndarray

  def __len__(self) -> int:
    return len(self.frame)

  def subset(self, index: np.ndarray) -> "Table":
    return Table(self.path, self.frame.iloc[index].reset_index(drop=True), self.lines[index])

  def where(self, row: int, column: str) -> str:
    return f"{self.path}: line {int(self.lines[row])}, column {column!r}"


def read_table(path: "str | pathlib.Path") -> Table:
  """Reads a CSV (header row, UTF-8, a byte-order mark dropped; ``.gz`` ok) or Parquet file
  as stripped strings.

  Raises:
    FileNotFoundError: no such file. ValueError naming the file (and line): empty file,
      no data rows, duplicate column names, malformed rows, undecodable bytes, bad gzip.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"table file not found: {path}")
  if path.suffix == ".parquet":
    frame = _parquet_cells(path, pd.read_parquet(path))
    lines = np.arange(len(frame)) + 2
  else:
    frame, lines = _read_csv(path)
  if frame.empty:
    raise ValueError(f"{path}: no data rows")
  frame = frame.apply(lambda s: s.str.strip())
  return Table(path, frame, lines)


def _parquet_cells(path: pathlib.Path, raw: pd.DataFrame) -> pd.DataFrame:
  """A Parquet frame as string cells under stripped column names ("" = null / NaN).

  Raises ValueError naming the columns: two names equal once stripped, or a column of
  lists / arrays / maps (one cell per field is expected)."""
  names: Dict[str, str] = {}
  for c in raw.columns:
    name = str(c).strip()
    if name in names:
      raise ValueError(f"{path}: columns {names[name]!r} and {str(c)!r} are both {name!r} "
                       "once surrounding whitespace is stripped; rename one")
    names[name] = str(c)
  cells = {}
  for name, c in names.items():
    values = raw[c].to_numpy(dtype=object)
    nested = [i for i, v in enumerate(values) if isinstance(v, (list, tuple, dict, np.ndarray))]
    if nested:
      raise ValueError(f"{path}: column {name!r} holds {type(values[nested[0]]).__name__} "
                       f"values (row {nested[0] + 1}: {values[nested[0]]!r}); a table column "
                       "needs one number or string per cell (flatten it into columns)")
    cells[name] = ["" if pd.isna(v) else str(v) for v in values]
  return pd.DataFrame(cells, index=pd.RangeIndex(len(raw)))


def _read_csv(path: pathlib.Path) -> Tuple[pd.DataFrame, np.ndarray]:
  """(string cells with the header's stripped names, file line of each row)."""
  with csv_records.file_errors(path, "expected UTF-8 text"):
    with csv_records.open_file(path, "rt") as f:
      records = csv_records.scan(f, header=True)
      f.seek(0)
      header = [c.strip() for c in next(csv.reader(f), [])]
  if records is None:
    raise ValueError(f"{path}: empty file, expected a header row and data rows")
  others = [name for d, name in (("\t", "tab"), (";", "semicolon"), ("|", "pipe"))
            if len(header) == 1 and d in header[0]]
  if others:
    raise ValueError(f"{path}: the header is one column {header[0]!r}; the file looks "
                     f"{others[0]}-separated, and only comma-separated files are read. "
                     "Save it with commas")
  dupes = sorted({c for c in header if header.count(c) > 1})
  if dupes:
    raise ValueError(f"{path}: duplicate column name(s) {dupes} in the header")
  for mask, reason in records.malformed():
    if reason != "blank line" and mask.any():
      i = np.argmax(mask)
      if records.spans[i] > 1:
        reason = (f"row spans lines {records.lines[i]}-{records.lines[i] + records.spans[i] - 1}"
                  ": a quoted field holding a line break (valid CSV, but not supported: "
                  "one row per line is expected, replace the line break) or a stray / "
                  "unbalanced quote joining lines")
      raise ValueError(f"{path}: line {records.lines[i]}: {reason}")
  # Names as wide as the longest row keep pandas from shifting columns or dropping rows,
  # so pandas row i is the scan's record i.
  names = header + [f"extra{i}" for i in range(records.max_fields - len(header))]
  frame = pd.read_csv(path, header=0, names=names, usecols=header, dtype=str,
                      keep_default_na=False, index_col=False, skip_blank_lines=False,
                      skipinitialspace=True)
  blank = records.fields == 0
  return frame[~blank].reset_index(drop=True), records.lines[~blank]


def column_numbers(table: Table, column: str) -> np.ndarray:
  """float64 [N] of a continuous column; missing cells NaN; bad cells raise."""
  cells = table.frame[column]
  missing = cells.isin(MISSING_STRINGS).to_numpy()
  values = pd.to_numeric(cells.where(~missing), errors="coerce").to_numpy(np.float64)
  # Beyond float32's range is infinite for the model: rejected like inf.
  with np.errstate(invalid="ignore"):
    bad = ~missing & ~(np.abs(values) <= np.finfo(np.float32).max)
  if bad.any():
    row = int(np.flatnonzero(bad)[0])
    raise ValueError(f"{table.where(row, column)}: expected a finite number (float32 range) "
                     f"or a missing cell (empty, '?', 'NA', 'n/a', 'null', ...), "
                     f"got {cells.iloc[row]!r}")
  return values


def _is_numeric(cells: pd.Series) -> bool:
  present = cells[~cells.isin(MISSING_STRINGS)]
  # Every cell parses as a number (inf and 1e39 too: the column is numeric, and
  # ``column_numbers`` then rejects those cells by line instead of silently calling the
  # column categorical).
  values = pd.to_numeric(present, errors="coerce").to_numpy(np.float64)
  return len(present) > 0 and not np.isnan(values).any()


def _missing_tokens(cells: pd.Series) -> str:
  """'; N cell(s) read as missing: 'n/a' ×N, ...' for a continuous column's non-empty
  missing tokens ("" if none)."""
  counts = cells[cells.isin(MISSING_STRINGS) & (cells != "")].value_counts()
  if counts.empty:
    return ""
  tokens = ", ".join(f"{t!r} ×{n}" for t, n in counts.items())
  return f"; {counts.sum()} cell(s) read as missing: {tokens}"


def _group_members(columns: Sequence[str], prefix: str, path, label: str) -> Tuple[str, ...]:
  members = tuple(c for c in columns if c.startswith(prefix) and c != prefix)
  if label in members or label == prefix:
    raise ValueError(f"{path}: one-hot group prefix {prefix!r} (--onehot_groups) matches the "
                     f"label column {label!r}; the label would become a feature. Use a "
                     "longer prefix")
  if not members:
    raise ValueError(f"{path}: one-hot group {prefix!r} has no columns named {prefix}*")
  return members


def infer_schema(table: Table, label: str, classes: Sequence[str], train_rows: np.ndarray, *,
                 categorical: Sequence[str] = (), numeric: Sequence[str] = (),
                 drop: Sequence[str] = (), onehot_groups: Sequence[str] = (),
                 max_integer_categories: int = 0, min_category_count: int = 1
                 ) -> TableSchema:
  """Decides each column's role and builds vocabularies from ``train_rows`` only.

  Args:
    table: the labelled table. label: label column. classes: ``label_classes`` of it.
    train_rows: int [M] rows whose categories form the vocabularies.
    categorical, numeric: declared column types (override inference).
    drop: columns ignored. onehot_groups: prefixes of one-hot groups.
    max_integer_categories: integer columns with at most this many distinct values are
      categorical (0: never). min_category_count: rarer training categories map to OOV.
  """
  path, columns = table.path, list(table.frame.columns)
  named = [label, *categorical, *numeric, *drop]
  unknown = [c for c in named if c not in columns]
  if unknown:
    raise ValueError(f"{path}: no column(s) {unknown}; the header has {columns}")
  both = sorted(set(categorical) & set(numeric))
  if both:
    raise ValueError(f"column(s) {both} declared both categorical and numeric")
  groups = {p: _group_members(columns, p, path, label) for p in onehot_groups}
  in_group = {m for ms in groups.values() for m in ms}
  origins, cont, cats = {}, [], []
  train = table.subset(np.asarray(train_rows))
  for col in columns:
    if col in (label, *drop) or col in in_group:
      continue
    cells = table.frame[col]
    if col in numeric or col in categorical:
      kind, origins[col] = ("continuous" if col in numeric else "categorical"), "declared"
    elif _is_numeric(cells):
      present = pd.to_numeric(cells[~cells.isin(MISSING_STRINGS)]).to_numpy(np.float64)
      distinct = len(np.unique(present))
      if (max_integer_categories and (present == np.round(present)).all()
          and distinct <= max_integer_categories):
        kind = "categorical"
        origins[col] = f"inferred: integers, {distinct} distinct <= {max_integer_categories}"
      else:
        kind, origins[col] = "continuous", "inferred: numbers"
    else:
      kind, origins[col] = "categorical", "inferred: strings"
    if kind == "continuous":
      column_numbers(table, col)  # validates every cell now, before any training
      origins[col] += _missing_tokens(cells)
      cont.append(col)
    else:
      counts = train.frame[col][~train.frame[col].isin(("",))].value_counts()
      vocab = tuple(sorted(str(v) for v, n in counts.items() if n >= min_category_count))
      cats.append(CategoricalFeature(col, vocab))
  for prefix, members in groups.items():
    origins[prefix] = f"declared one-hot group ({len(members)} columns)"
    cats.append(CategoricalFeature(prefix, members, members))
  if not cont and not cats:
    raise ValueError(f"{path}: no feature columns left besides the label {label!r}")
  _require_an_informative_feature(table, cont, cats)
  return TableSchema(tuple(cont), tuple(cats), label, tuple(classes), origins)


def _uninformative(cells: pd.Series, missing: Sequence[str], categorical: bool
                   ) -> Optional[str]:
  """Why a column's cells can tell no rows apart, or None: all missing, one value, or
  (categorical) every value once (an id: no category seen twice to learn from)."""
  counts = cells[~cells.isin(missing)].value_counts()
  if counts.empty:
    return "every cell missing"
  if len(counts) == 1:
    return f"constant ({counts.index[0]!r} in every non-missing cell)"
  if categorical and counts.max() == 1:
    return f"an id: {len(counts)} distinct values, none seen twice"
  return None


def _require_an_informative_feature(table: Table, continuous: Sequence[str],
                                    categorical: Sequence[CategoricalFeature]) -> None:
  """Raises ValueError naming every feature and why it carries nothing when none does
  (no model can learn from such a table; the GBDT peers refuse it)."""
  reasons = {c: _uninformative(table.frame[c], MISSING_STRINGS, False) for c in continuous}
  for f in categorical:
    if f.members:   # a one-hot group is constant when every member column is
      constant = all(_uninformative(table.frame[m], MISSING_STRINGS, False)
                     for m in f.members)
      reasons[f.name] = "every member column constant or missing" if constant else None
    else:
      reasons[f.name] = _uninformative(table.frame[f.name], ("",), True)
  if all(reasons.values()):
    named = "; ".join(f"{c!r}: {r}" for c, r in reasons.items())
    raise ValueError(f"{table.path}: no feature column carries information ({named}); "
                     "add a column whose values vary and repeat across rows")


def label_classes(table: Table, label: str) -> Tuple[str, ...]:
  """Sorted label strings (numerically when all are numbers); ≥ 2 classes required."""
  if label not in table.frame.columns:
    raise ValueError(f"{table.path}: no label column {label!r}; the header has "
                     f"{list(table.frame.columns)}")
  cells = table.frame[label]
  empty = cells.isin(("",)).to_numpy()
  if empty.any():
    row = int(np.flatnonzero(empty)[0])
    raise ValueError(f"{table.where(row, label)}: missing label")
  values = sorted(cells.unique())
  if all(_is_numeric(pd.Series([v])) for v in values):
    values = sorted(values, key=float)
  if len(values) < 2:
    raise ValueError(f"{table.path}: label column {label!r} has a single class "
                     f"{values[0]!r}; classification needs at least 2")
  return tuple(values)


def encode_labels(table: Table, label: str, classes: Sequence[str]) -> np.ndarray:
  """int32 [N] class ids (position in ``classes``); another value raises naming the line."""
  index = {c: i for i, c in enumerate(classes)}
  cells = table.frame[label]
  ids = cells.map(index)
  bad = ids.isna().to_numpy()
  if bad.any():
    row = int(np.flatnonzero(bad)[0])
    raise ValueError(f"{table.where(row, label)}: unknown label {cells.iloc[row]!r}, "
                     f"expected one of {list(classes)}")
  return ids.to_numpy(np.int32)


def _group_ids(table: Table, feature: CategoricalFeature) -> np.ndarray:
  values = np.stack([column_numbers(table, m) for m in feature.members], axis=1)
  ok = np.isin(values, (0.0, 1.0)) | np.isnan(values)
  if not ok.all():
    row, col = np.argwhere(~ok)[0]
    raise ValueError(f"{table.where(row, feature.members[col])}: one-hot member of group "
                     f"{feature.name!r}: expected 0 or 1, got {values[row, col]!r}")
  counts = np.nansum(values, axis=1)
  if (counts > 1).any():
    row = int(np.flatnonzero(counts > 1)[0])
    raise ValueError(f"{table.path}: line {int(table.lines[row])}: one-hot group "
                     f"{feature.name!r} holds {int(counts[row])} ones, expected at most 1")
  ids = FIRST_CATEGORY_ID + np.nan_to_num(values).argmax(axis=1)
  return np.where(counts == 1, ids, MISSING_ID).astype(np.int32)


def encode_features(table: Table, schema: TableSchema) -> Dict[str, np.ndarray]:
  """``continuous`` float32 [N, C] (raw values, NaN = missing), ``categorical`` int32 [N, K].

  Raises ValueError naming file, line and column for a missing feature column or a bad cell.
  """
  needed = list(schema.continuous) + [m for f in schema.categorical
                                      for m in (f.members or (f.name,))]
  absent = [c for c in needed if c not in table.frame.columns]
  if absent:
    raise ValueError(f"{table.path}: missing feature column(s) {absent}")
  n = len(table)
  cont = (np.stack([column_numbers(table, c) for c in schema.continuous], axis=1)
          if schema.continuous else np.zeros((n, 0))).astype(np.float32)
  cats = []
  for f in schema.categorical:
    if f.members:
      cats.append(_group_ids(table, f))
      continue
    index = {v: FIRST_CATEGORY_ID + i for i, v in enumerate(f.vocabulary)}
    cells = table.frame[f.name]
    ids = cells.map(index).fillna(OOV_ID).to_numpy(np.int32)
    cats.append(np.where(cells.to_numpy() == "", MISSING_ID, ids).astype(np.int32))
  cat = np.stack(cats, axis=1) if cats else np.zeros((n, 0), np.int32)
  return {"continuous": cont, "categorical": cat}


def missing_shares(features: Dict[str, np.ndarray], schema: TableSchema) -> Dict[str, float]:
  """Share of missing cells per feature (only features with any)."""
  out = {}
  for j, c in enumerate(schema.continuous):
    out[c] = float(np.isnan(features["continuous"][:, j]).mean())
  for j, f in enumerate(schema.categorical):
    out[f.name] = float((features["categorical"][:, j] == MISSING_ID).mean())
  return {k: v for k, v in out.items() if v > 0}


QUANTILE_KNOTS = 1000   # at most this many knots per column (sklearn's n_quantiles default)
SCALINGS = ("auto", "quantile", "standard")
# A Gaussian sample of a million rows stays within about 5 standard deviations; a training
# value beyond 10 marks a heavy tail, whose standardised bulk is squeezed into a sliver.
HEAVY_TAIL_Z = 10.0


@dataclasses.dataclass(frozen=True)
class Scaler:
  """Per continuous column, of f(x) = sign(x)log1p(|x|) on ``log1p`` columns (x
  elsewhere): on ``quantile`` columns the normal score of f(x)'s training quantile,
  piecewise linear between the column's knots (the end scores beyond them); elsewhere
  ``(f(x) - mean) / std``. Statistics ignore missing values; NaN stays NaN.

  The normal scores make every column about N(0, 1) whatever its shape, so a heavy tail
  (income, balance) neither squeezes the bulk of its values together nor dominates a
  distance; GBDTs get this invariance from their splits, the Transformer's periodic
  embedding and the NCA metric's linear map do not (the anchors, Gorishniy et al. 2022,
  quantile-transform their numeric features the same way).

  Knots: ``knots`` / ``scores`` float32 [C, Q], column j's first ``num_knots[j]``
  ascending, the rest repeating its last one (a rectangular array for the serving graph);
  unused on ``standard`` columns.
  """
  mean: np.ndarray
  std: np.ndarray
  log1p: np.ndarray     # bool [C]
  quantile: np.ndarray  # bool [C]
  knots: np.ndarray
  scores: np.ndarray
  num_knots: np.ndarray  # int [C]
  tail_z: np.ndarray     # float [C]: the training value farthest from the mean, in sd

  def describe(self, names: Sequence[str]) -> Dict[str, str]:
    """How each continuous column (``names``, in column order) is scaled, for the run's
    log and report."""
    return {n: (f"{'log1p, ' if lg else ''}{'quantile' if q else 'standardised'} "
                f"(farthest training value {z:.1f} sd out)")
            for n, lg, q, z in zip(names, self.log1p, self.quantile, self.tail_z)}

  @classmethod
  def fit(cls, continuous: np.ndarray, log1p: Optional[np.ndarray] = None,
          scaling: str = "standard") -> "Scaler":
    """continuous float [N, C] (training rows only; finite or NaN, as the loaders give);
    log1p bool [C] or None; ``scaling`` one of ``SCALINGS``: ``auto`` quantile-scales the
    heavy-tailed columns (a training value more than ``HEAVY_TAIL_Z`` standard deviations
    from the mean: also a 0/1 column whose rarer value is under 1 % of the rows, whose two
    scores stay as far apart; never with 101 rows or fewer, where no value can lie that
    far out) and standardises the rest; ``quantile`` / ``standard``: every column."""
    if scaling not in SCALINGS:
      raise ValueError(f"scaling {scaling!r} is not one of {SCALINGS}")
    c = continuous.shape[1]
    log1p = np.zeros(c, bool) if log1p is None else np.asarray(log1p, bool)
    x = _signed_log1p(continuous, log1p)
    with np.errstate(invalid="ignore"):
      mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(c)
      std = np.nan_to_num(np.nanstd(x, axis=0)) if len(x) else np.ones(c)
    std = np.where(std > 0, std, 1.0)
    tail_z = np.nanmax(np.abs(x - mean) / std, axis=0, initial=0.0)
    quantile = (tail_z > HEAVY_TAIL_Z if scaling == "auto"
                else np.full(c, scaling == "quantile"))
    columns = [_normal_score_knots(x[:, j]) if quantile[j] else (np.zeros(1), np.zeros(1))
               for j in range(c)]
    q = max([len(k) for k, _ in columns] or [1])
    knots, scores = (np.array([np.pad(col[i], (0, q - len(col[i])), mode="edge")
                               for col in columns], np.float32).reshape(c, q)
                     for i in (0, 1))
    return cls(mean.astype(np.float32), std.astype(np.float32), log1p, quantile, knots, scores,
               np.array([len(k) for k, _ in columns], np.int64), tail_z)

  def transform(self, continuous: np.ndarray) -> np.ndarray:
    """float [N, C] (finite or NaN) → float32 [N, C]."""
    x = _signed_log1p(continuous, self.log1p)
    z = (x - self.mean) / self.std
    for j in np.flatnonzero(self.quantile):
      n = self.num_knots[j]
      z[:, j] = np.interp(x[:, j], self.knots[j, :n].astype(np.float64),
                          self.scores[j, :n].astype(np.float64))
    return z.astype(np.float32)


def _normal_score_knots(column: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(knots, normal scores) of one column's finite values: at most ``QUANTILE_KNOTS``
  distinct quantiles, each scored at its mid-rank level (a value shared by many rows, like
  the zeros of a mostly-zero column, sits at the middle of its rows' levels), so no score
  is infinite. A column without values gets the single knot 0 → 0."""
  from scipy.special import ndtri  # pylint: disable=import-outside-toplevel
  # In float32, as the knots are stored: ties stay ties in the graph and in numpy, and no
  # rounded knot leaves the values' range (its level would be 0 or 1: an infinite score).
  v = np.sort(column[np.isfinite(column)]).astype(np.float32).astype(np.float64)
  if not len(v):
    return np.zeros(1), np.zeros(1)
  knots = np.unique(np.quantile(v, np.linspace(0.0, 1.0, min(QUANTILE_KNOTS, len(v))))
                    .astype(np.float32)).astype(np.float64)
  level = (np.searchsorted(v, knots, "left") + np.searchsorted(v, knots, "right")) / (2 * len(v))
  return knots, ndtri(level)


def _signed_log1p(x: np.ndarray, log1p: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float64)
  return np.where(log1p[None, :], np.sign(x) * np.log1p(np.abs(x)), x)


def log1p_mask(schema: TableSchema, columns: Sequence[str]) -> np.ndarray:
  """bool [C]: which continuous columns are log-mapped; unknown names raise."""
  bad = [c for c in columns if c not in schema.continuous]
  if bad:
    raise ValueError(f"log1p column(s) {bad} are not continuous columns "
                     f"{list(schema.continuous)}")
  return np.array([c in columns for c in schema.continuous], bool)


def stratified_split(labels: np.ndarray, fraction: float, seed: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
  """Splits row indices per class: ``(rest, taken)`` with ``taken`` ≈ fraction of each class.

  Args:
    labels: int [N]. fraction: share of each class taken, in (0, 1]. seed: numpy seed.

  Returns:
    (rest, taken): sorted int64 index arrays partitioning 0..N-1. Below fraction 1, a
    class with 2 or more rows keeps at least one on each side, and a class with a
    single row stays in ``rest`` (so a training ``rest`` never loses a class;
    ``require_every_class`` reports a class a ``taken`` side lacks).
  """
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"fraction must be in (0, 1], got {fraction}")
  rng = np.random.default_rng(seed)
  taken = []
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    rng.shuffle(idx)
    n = (min(max(1, int(round(fraction * len(idx)))), len(idx) - 1) if fraction < 1.0
         else len(idx))
    taken.append(idx[:n])
  taken = np.sort(np.concatenate(taken))
  rest = np.setdiff1d(np.arange(len(labels)), taken)
  return rest, taken


def require_every_class(labels: np.ndarray, classes: Sequence[str], what: str,
                        pool: Optional[np.ndarray] = None) -> None:
  """Raises ValueError naming each class with no row in ``labels``: a classifier cannot
  learn a class it never sees (e.g. the training rows of a small label fraction).

  Args:
    labels: int [M] class ids of the rows. classes: class names, id = position.
    what: the rows, for the message ("label fraction 0.1: training rows").
    pool: optional int [P] class ids of the rows they were drawn from (the message says
      how many rows of each missing class that pool has).
  """
  counts = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
  missing = np.flatnonzero(counts == 0)
  if not len(missing):
    return
  have = (np.bincount(np.asarray(pool, np.int64), minlength=len(classes))
          if pool is not None else None)
  named = ", ".join(f"{classes[c]!r}" + (f" ({have[c]} row(s) to draw from)"
                                          if have is not None else "") for c in missing)
  raise ValueError(f"{what}: no row of class {named} among {len(labels)} rows; the model "
                   "would never see it. Raise the label fraction, add rows of it, or drop it")


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> List[np.ndarray]:
  """K disjoint folds, each class dealt round-robin after a seeded shuffle (fold sizes per
  class differ by at most one), so a class with 2 or more rows keeps a row in every
  fold's complement (the rows a fold's model trains on).

  A class with a single row is in no fold: held out, its fold's model would train
  without it (as ``stratified_split`` keeps such a row on its ``rest`` side, the caller
  trains every fold's model on it and scores it out of fold nowhere).

  Args:
    labels: int [N]. k: number of folds, >= 2. seed: numpy seed.

  Returns:
    k sorted int64 index arrays covering 0..N-1 but the single-row classes' rows.
  """
  if k < 2:
    raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
  rng = np.random.default_rng(seed)
  fold_of = np.full(len(labels), -1, np.int64)
  start = 0
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    if len(idx) < 2:
      continue
    rng.shuffle(idx)
    # Continue the deal where the previous class stopped, so small classes spread evenly.
    fold_of[idx] = (start + np.arange(len(idx))) % k
    start = (start + len(idx)) % k
  return [np.flatnonzero(fold_of == j) for j in range(k)]
