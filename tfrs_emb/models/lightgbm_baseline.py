"""LightGBM baseline on raw table features (the gradient-boosting row of every table)."""

from typing import Sequence, Tuple

import numpy as np


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
