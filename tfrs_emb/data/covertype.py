"""Forest Cover Type loader (Kaggle ``train.csv`` and UCI ``covtype.data[.gz]`` layouts).

Both layouts carry the same 54 feature columns: 10 continuous variables, the one-hot
``Wilderness_Area1..4`` and ``Soil_Type1..40``, then the target ``Cover_Type`` (1..7).
Kaggle files have a header row and a leading ``Id`` column; the UCI file has neither.

The two one-hot groups are collapsed into two categorical ids (0-based). Documented
choice: a row whose group has zero or several ones is an error naming the file line and
the group (the UCI and Kaggle files have exactly one per group in every row).
"""

import dataclasses
import gzip
import pathlib
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

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


def _open_text(path: pathlib.Path):
  if path.suffix == ".gz":
    return gzip.open(path, "rt", encoding="utf-8")
  return open(path, "r", encoding="utf-8")


def _detect_layout(path: pathlib.Path) -> str:
  with _open_text(path) as f:
    first = f.readline()
  if not first.strip():
    raise ValueError(f"{path}: empty file, expected a Cover Type CSV")
  return "kaggle" if "Elevation" in first else "uci"


def _numeric_column(path: pathlib.Path, frame: pd.DataFrame, column: str,
                    line_offset: int) -> np.ndarray:
  """Column as float64; non-numeric or missing cells raise naming column and file line."""
  series = frame[column]
  values = pd.to_numeric(series, errors="coerce")
  bad = values.isna().to_numpy()
  if bad.any():
    row = int(np.flatnonzero(bad)[0])
    raise ValueError(
        f"{path}: line {row + line_offset}, column {column!r}: expected a number, "
        f"got {series.iloc[row]!r}")
  return values.to_numpy(np.float64)


def _group_ids(path: pathlib.Path, onehot: np.ndarray, group: str,
               line_offset: int) -> np.ndarray:
  if not np.isin(onehot, (0.0, 1.0)).all():
    row, col = np.argwhere(~np.isin(onehot, (0.0, 1.0)))[0]
    raise ValueError(f"{path}: line {row + line_offset}, column {group}{col + 1}: "
                     f"expected 0 or 1, got {onehot[row, col]!r}")
  counts = onehot.sum(axis=1)
  if (counts != 1).any():
    row = int(np.flatnonzero(counts != 1)[0])
    raise ValueError(f"{path}: line {row + line_offset}: {group}1..{onehot.shape[1]} "
                     f"must hold exactly one 1, found {int(counts[row])}")
  return onehot.argmax(axis=1).astype(np.int32)


def load_covertype(path: "str | pathlib.Path") -> CovertypeData:
  """Reads a Kaggle ``train.csv``/``test.csv`` or a UCI ``covtype.data[.gz]`` file.

  Args:
    path: file path; ``.gz`` is decompressed.

  Returns:
    CovertypeData (labels None when the file has no ``Cover_Type``).

  Raises:
    FileNotFoundError: no such file.
    ValueError: missing columns, wrong column count, non-numeric or missing values,
      one-hot groups without exactly one 1, or labels outside 1..7; the message names
      the file line and column.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Cover Type file not found: {path}")
  layout = _detect_layout(path)
  if layout == "kaggle":
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing[:5]}"
                       f"{' ...' if len(missing) > 5 else ''} (Kaggle layout expected)")
    line_offset = 2  # header is line 1
  else:
    frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    if frame.shape[1] not in (54, 55):
      raise ValueError(f"{path}: UCI layout (no header) expects 55 columns (54 features + "
                       f"Cover_Type), got {frame.shape[1]} on line 1")
    frame.columns = list(FEATURE_COLUMNS) + ([LABEL_COLUMN] if frame.shape[1] == 55 else [])
    line_offset = 1
  frame = frame.replace("", np.nan)
  cont = np.stack([_numeric_column(path, frame, c, line_offset) for c in CONTINUOUS_COLUMNS],
                  axis=1).astype(np.float32)
  wild = np.stack([_numeric_column(path, frame, c, line_offset) for c in WILDERNESS_COLUMNS],
                  axis=1)
  soil = np.stack([_numeric_column(path, frame, c, line_offset) for c in SOIL_COLUMNS], axis=1)
  categorical = np.stack([_group_ids(path, wild, "Wilderness_Area", line_offset),
                          _group_ids(path, soil, "Soil_Type", line_offset)], axis=1)
  labels = None
  if LABEL_COLUMN in frame.columns:
    raw = _numeric_column(path, frame, LABEL_COLUMN, line_offset)
    bad = ~np.isin(raw, np.arange(1, NUM_CLASSES + 1))
    if bad.any():
      row = int(np.flatnonzero(bad)[0])
      raise ValueError(f"{path}: line {row + line_offset}, column {LABEL_COLUMN!r}: unknown "
                       f"label {frame[LABEL_COLUMN].iloc[row]!r}, expected 1..{NUM_CLASSES}")
    labels = (raw - 1).astype(np.int32)
  return CovertypeData(cont, categorical, labels, layout)


@dataclasses.dataclass
class Standardizer:
  """Per-feature ``(x - mean) / std`` on the continuous columns; fit on training rows only.

  ``log1p_columns`` (indices) are mapped by ``sign(x) * log1p(|x|)`` before the statistics,
  which tames the skewed distance columns.
  """
  mean: np.ndarray
  std: np.ndarray
  log1p_columns: Tuple[int, ...] = ()

  @classmethod
  def fit(cls, continuous: np.ndarray, log1p_columns: Tuple[int, ...] = ()) -> "Standardizer":
    x = _signed_log1p(continuous, log1p_columns)
    std = x.std(axis=0)
    return cls(x.mean(axis=0).astype(np.float32),
               np.where(std > 0, std, 1.0).astype(np.float32), tuple(log1p_columns))

  def transform(self, continuous: np.ndarray) -> np.ndarray:
    """float32 [N, 10] → float32 [N, 10]."""
    return ((_signed_log1p(continuous, self.log1p_columns) - self.mean) / self.std
            ).astype(np.float32)


def _signed_log1p(x: np.ndarray, columns: Tuple[int, ...]) -> np.ndarray:
  x = np.asarray(x, np.float64).copy()
  for c in columns:
    x[:, c] = np.sign(x[:, c]) * np.log1p(np.abs(x[:, c]))
  return x
