"""LightGBM's feature matrix: raw continuous values, one-hot groups as 0/1 member columns,
other categorical columns as ids flagged categorical."""

import numpy as np

from tfrs_emb.data import table as tbl
from tfrs_emb.models.lightgbm_baseline import lightgbm_features


def test_features_expand_onehot_groups_and_flag_categorical_ids(tmp_path):
  path = tmp_path / "t.csv"
  path.write_text("g1,g2,g3,kind,v,label\n1,0,0,x,1.5,a\n0,0,1,y,,b\n0,0,0,x,3,a\n")
  table = tbl.read_table(path)
  schema = tbl.infer_schema(table, "label", ("a", "b"), np.arange(3), onehot_groups=("g",),
                            categorical=("kind",), min_category_count=1)
  encoded = tbl.encode_features(table, schema)
  x, categorical = lightgbm_features(encoded["continuous"], encoded["categorical"], schema)
  names = [f.name for f in schema.categorical]
  group, kind = names.index("g"), names.index("kind")
  assert x.shape == (3, 1 + 3 + 1) and x.dtype == np.float32
  np.testing.assert_array_equal(x[:, 0], [1.5, np.nan, 3.0])  # raw, NaN = missing
  onehot = x[:, 1:4] if group < kind else x[:, 2:5]
  np.testing.assert_array_equal(onehot, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
  kind_col = 4 if group < kind else 1
  assert categorical == [kind_col]
  np.testing.assert_array_equal(x[:, kind_col], encoded["categorical"][:, kind])
  assert x[0, kind_col] == x[2, kind_col] != x[1, kind_col]
