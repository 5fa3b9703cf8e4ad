"""LightGBM's view of a table: raw features for the gradient-boosting rows (the fits:
``models.gbdt``)."""

from typing import List, Tuple

import numpy as np

from tfrs_emb.data import table as tbl


def lightgbm_features(raw_continuous: np.ndarray, categorical_ids: np.ndarray,
                      schema: tbl.TableSchema) -> Tuple[np.ndarray, List[int]]:
  """LightGBM's view of every row: raw continuous values (NaN = missing), one-hot groups as
  their 0/1 member columns, categorical columns as ids (flagged categorical).

  Args:
    raw_continuous: float32 [N, C] unscaled continuous columns.
    categorical_ids: int32 [N, K] encoded categorical columns (``tbl.encode_features``).
    schema: the table's schema (which categorical columns are one-hot groups).

  Returns (float32 [N, ·], indices of the categorical columns).
  """
  parts, categorical, width = [raw_continuous], [], raw_continuous.shape[1]
  for j, f in enumerate(schema.categorical):
    ids = categorical_ids[:, j]
    if f.members:
      parts.append(np.eye(f.cardinality, dtype=np.float32)[ids][:, tbl.FIRST_CATEGORY_ID:])
      width += len(f.members)
    else:
      parts.append(ids[:, None].astype(np.float32))
      categorical.append(width)
      width += 1
  return np.concatenate(parts, axis=1), categorical
