"""Forest Cover Type loader (Kaggle ``train.csv`` and UCI ``covtype.data[.gz]`` layouts).

Both layouts carry the same 54 feature columns: 10 continuous variables, the one-hot
``Wilderness_Area1..4`` and ``Soil_Type1..40``, then the target ``Cover_Type`` (1..7).
Kaggle files have a header row and a leading ``Id`` column; the UCI file has neither.

The two one-hot groups are collapsed into two categorical ids (0-based). Documented
choice: a row whose group has zero or several ones is an error naming the file line and
the group (the UCI and Kaggle files have exactly one per group in every row). Every other
malformed input is an error naming the file, line and column too (``load_covertype``).
"""

import csv
import dataclasses
import pathlib
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from tfrs_emb.core import csv_records
from tfrs_emb.data.table import stratified_split  # noqa: F401  (re-exported)

CONTINUOUS_COLUMNS = (
    "Elevation", "Aspect", "Slope", "Horizontal_Distance_To_Hydrology",
    "Vertical_Distance_To_Hydrology", "Horizontal_Distance_To_Roadways",
    "Hillshade_9am", "Hillshade_Noon", "Hillshade_3pm",
    "Horizontal_Distance_To_Fire_Points")
WILDERNESS_COLUMNS = tuple(f"Wilderness_Area{i}" for i in range(1, 5))
SOIL_COLUMNS = tuple(f"Soil_Type{i}" for i in range(1, 41))
FEATURE_COLUMNS = CONTINUOUS_COLUMNS + WILDERNESS_COLUMNS + SOIL_COLUMNS  # 54 CSV fields
LABEL_COLUMN = "Cover_Type"
CATEGORICAL_NAMES = ("Wilderness_Area", "Soil_Type")
CATEGORICAL_CARDINALITIES = (len(WILDERNESS_COLUMNS), len(SOIL_COLUMNS))
NUM_CLASSES = 7
CLASS_NAMES = ("Spruce/Fir", "Lodgepole Pine", "Ponderosa Pine", "Cottonwood/Willow",
               "Aspen", "Douglas-fir", "Krummholz")


@dataclasses.dataclass
class CovertypeData:
  """Rows of a Cover Type file.

  Attributes:
    continuous: float32 [N, 10], raw values in ``CONTINUOUS_COLUMNS`` order.
    categorical: int32 [N, 2], (wilderness id 0..3, soil id 0..39).
    labels: int32 [N] in 0..6 (Cover_Type - 1), or None for a file without labels.
    layout: "kaggle" or "uci".
  """
  continuous: np.ndarray
  categorical: np.ndarray
  labels: Optional[np.ndarray]
  layout: str

  def __len__(self) -> int:
    return len(self.continuous)

  def subset(self, index: np.ndarray) -> "CovertypeData":
    return CovertypeData(self.continuous[index], self.categorical[index],
                         None if self.labels is None else self.labels[index], self.layout)

  def one_hot_features(self) -> np.ndarray:
    """float32 [N, 54]: the raw CSV feature fields (continuous + both one-hot groups)."""
    wild = np.eye(CATEGORICAL_CARDINALITIES[0], dtype=np.float32)[self.categorical[:, 0]]
    soil = np.eye(CATEGORICAL_CARDINALITIES[1], dtype=np.float32)[self.categorical[:, 1]]
    return np.concatenate([self.continuous.astype(np.float32), wild, soil], axis=1)

  def as_csv_fields(self) -> Dict[str, np.ndarray]:
    """Column name → [N] array, the inputs of the exported serving signature."""
    values = self.one_hot_features()
    out = {}
    for j, name in enumerate(FEATURE_COLUMNS):
      out[name] = (values[:, j].astype(np.float32) if name in CONTINUOUS_COLUMNS
                   else values[:, j].astype(np.int64))
    return out


def _scan(path: pathlib.Path) -> Tuple[str, csv_records.Records]:
  """(layout, per-record layout); errors name the file (empty, undecodable, bad gzip)."""
  with csv_records.file_errors(path, "a Cover Type CSV is ASCII / UTF-8"):
    with csv_records.open_file(path, "rt") as f:
      layout = "kaggle" if "Elevation" in f.readline() else "uci"
      f.seek(0)
      records = csv_records.scan(f, header=layout == "kaggle")
  if records is None:
    raise ValueError(f"{path}: empty file, expected a Cover Type CSV")
  return layout, records


# Continuous values become float32: larger magnitudes would turn into inf.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _numeric_column(path: pathlib.Path, frame: pd.DataFrame, column: str,
                    lines: np.ndarray) -> np.ndarray:
  """Column as float64; a missing, non-numeric, non-finite or beyond-float32 cell raises
  naming the column and file line."""
  series = frame[column]
  values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
  bad = ~(np.abs(values) <= _FLOAT32_MAX)  # also NaN (non-numeric) and inf
  if bad.any():
    row = int(np.flatnonzero(bad)[0])
    raise ValueError(
        f"{path}: line {lines[row]}, column {column!r}: expected a finite number "
        f"(|x| <= {_FLOAT32_MAX:.3g}, float32), got {series.iloc[row]!r}")
  return values


def _group_ids(path: pathlib.Path, onehot: np.ndarray, group: str,
               lines: np.ndarray) -> np.ndarray:
  if not np.isin(onehot, (0.0, 1.0)).all():
    row, col = np.argwhere(~np.isin(onehot, (0.0, 1.0)))[0]
    raise ValueError(f"{path}: line {lines[row]}, column {group}{col + 1}: "
                     f"expected 0 or 1, got {onehot[row, col]!r}")
  counts = onehot.sum(axis=1)
  if (counts != 1).any():
    row = int(np.flatnonzero(counts != 1)[0])
    raise ValueError(f"{path}: line {lines[row]}: {group}1..{onehot.shape[1]} "
                     f"must hold exactly one 1, found {int(counts[row])}")
  return onehot.argmax(axis=1).astype(np.int32)


def _read_rows(path: pathlib.Path, layout: str, records: csv_records.Records
               ) -> Tuple[pd.DataFrame, np.ndarray]:
  """(all fields as str with the layout's column names, file line of each row).

  Raises:
    ValueError: a row with too few or too many (non-empty) fields, or one spanning
      several lines, naming its line; a file without data rows.
  """
  blank = records.fields == 0  # no data lost: skipped
  for mask, reason in records.malformed():
    if reason != "blank line" and mask.any():
      raise ValueError(f"{path}: line {records.lines[np.argmax(mask)]}: {reason}")
  if not (~blank).any():
    raise ValueError(f"{path}: no data rows"
                     f"{' after the header' if layout == 'kaggle' else ''}")
  if layout == "kaggle":
    with csv_records.open_file(path, "rt") as f:
      columns = [c or f"unnamed{i}" for i, c in enumerate(next(csv.reader(f)))]
  else:
    if records.width not in (54, 55):
      raise ValueError(f"{path}: UCI layout (no header) expects 55 columns (54 features + "
                       f"Cover_Type), got {records.width} on line 1")
    columns = list(FEATURE_COLUMNS) + ([LABEL_COLUMN] if records.width == 55 else [])
  # Names as wide as the longest row: pandas neither takes a first column as the index
  # (shifting all others) nor drops a row, so row i is the scan's record i.
  names = columns + [f"extra{i}" for i in range(records.max_fields - len(columns))]
  frame = pd.read_csv(path, header=0 if layout == "kaggle" else None, names=names,
                      usecols=columns, dtype=str, keep_default_na=False, index_col=False,
                      skip_blank_lines=False)
  return frame[~blank].reset_index(drop=True), records.lines[~blank]


def load_covertype(path: "str | pathlib.Path") -> CovertypeData:
  """Reads a Kaggle ``train.csv``/``test.csv`` or a UCI ``covtype.data[.gz]`` file.

  Args:
    path: file path; ``.gz`` is decompressed.

  Returns:
    CovertypeData (labels None when the file has no ``Cover_Type``).

  Raises:
    FileNotFoundError: no such file.
    ValueError: naming the file (and line and column where there is one): empty or
      header-only file, bytes that are not UTF-8, a truncated or corrupt .gz, missing
      columns, too few or too many fields (empty fields after the last column, a
      delimiter ending the row, are accepted), a row spanning several lines (stray
      quote), missing, non-numeric, non-finite or beyond-float32 values, one-hot groups
      without exactly one 1, labels outside 1..7, a duplicate Id. Blank lines are skipped.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Cover Type file not found: {path}")
  layout, records = _scan(path)
  frame, lines = _read_rows(path, layout, records)
  missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
  if missing:
    raise ValueError(f"{path}: missing column(s) {missing[:5]}"
                     f"{' ...' if len(missing) > 5 else ''} (Kaggle layout expected)")
  if "Id" in frame.columns:
    ids = frame["Id"]
    dup = ids.duplicated().to_numpy()
    if dup.any():
      again = int(np.argmax(dup))
      first = int(np.argmax((ids == ids.iloc[again]).to_numpy()))
      raise ValueError(f"{path}: line {lines[again]}: duplicate Id {ids.iloc[again]!r} "
                       f"(first on line {lines[first]})")
  frame = frame.replace("", np.nan)
  cont = np.stack([_numeric_column(path, frame, c, lines) for c in CONTINUOUS_COLUMNS],
                  axis=1).astype(np.float32)
  wild = np.stack([_numeric_column(path, frame, c, lines) for c in WILDERNESS_COLUMNS],
                  axis=1)
  soil = np.stack([_numeric_column(path, frame, c, lines) for c in SOIL_COLUMNS], axis=1)
  categorical = np.stack([_group_ids(path, wild, "Wilderness_Area", lines),
                          _group_ids(path, soil, "Soil_Type", lines)], axis=1)
  labels = None
  if LABEL_COLUMN in frame.columns:
    raw = _numeric_column(path, frame, LABEL_COLUMN, lines)
    bad = ~np.isin(raw, np.arange(1, NUM_CLASSES + 1))
    if bad.any():
      row = int(np.flatnonzero(bad)[0])
      raise ValueError(f"{path}: line {lines[row]}, column {LABEL_COLUMN!r}: unknown "
                       f"label {frame[LABEL_COLUMN].iloc[row]!r}, expected 1..{NUM_CLASSES}")
    labels = (raw - 1).astype(np.int32)
  return CovertypeData(cont, categorical, labels, layout)
