"""LightGBM baseline on raw table features (the gradient-boosting row of every table)."""

from typing import List, Sequence, Tuple

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


def lightgbm_fit_predict(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
                         val_y: np.ndarray, test_x: np.ndarray, *, max_trees: int, lr: float,
                         num_leaves: int, early_stopping: int, seed: int,
                         categorical_features: Sequence[int] = ()
                         ) -> Tuple[np.ndarray, int]:
  """Fits with early stopping on the validation rows; returns (predicted ids [N], trees).

  ``categorical_features``: column indices holding category ids (LightGBM's own
  categorical splits); NaN cells are LightGBM's missing values.
  """
  import lightgbm as lgb  # pylint: disable=import-outside-toplevel
  model = lgb.LGBMClassifier(n_estimators=max_trees, learning_rate=lr, num_leaves=num_leaves,
                             random_state=seed, n_jobs=2, verbose=-1)
  model.fit(train_x, train_y, eval_set=[(val_x, val_y)],
            categorical_feature=list(categorical_features) or "auto",
            callbacks=[lgb.early_stopping(early_stopping, verbose=False)])
  return model.predict(test_x), model.best_iteration_
