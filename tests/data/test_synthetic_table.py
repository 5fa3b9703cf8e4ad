"""Synthetic mixed-type table: seeded, mixed types with missing cells, a learnable binary
label, read back by the generic table path."""

import numpy as np

from tfrs_emb.data import synthetic_table as st
from tfrs_emb.data import table as tbl


def test_seeded_and_mixed_with_missing_cells(tmp_path):
  a, b, c = st.generate(3000, seed=0), st.generate(3000, seed=0), st.generate(3000, seed=1)
  assert all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype != object) for k in a)
  assert not np.array_equal(a["score_a"], c["score_a"])
  assert len(a) == 16 and set(a[st.LABEL]) == {"yes", "no"}
  assert 0.2 < np.mean(a[st.LABEL] == "yes") < 0.3
  for name in st.MISSING_COLUMNS:
    col = a[name]
    share = np.mean(col == "") if col.dtype == object else np.mean(np.isnan(col))
    assert 0.03 < share < 0.07, name
  path = st.write_table(tmp_path / "t.csv", 3000, seed=0)
  table = tbl.read_table(path)
  labels = tbl.encode_labels(table, st.LABEL, tbl.label_classes(table, st.LABEL))
  schema = tbl.infer_schema(table, st.LABEL, ("no", "yes"), np.arange(3000))
  types = {c["feature"]: c["type"] for c in schema.describe()}
  assert types["education"] == types["city"] == types["newsletter"] == "categorical"
  assert types["age"] == types["score_a"] == types["balance"] == "continuous"
  # --numeric_scaling=auto: the heavy tails get normal scores, the rest is standardised
  scaler = tbl.Scaler.fit(tbl.encode_features(table, schema)["continuous"], scaling="auto")
  quantile = dict(zip(schema.continuous, scaler.quantile))
  assert quantile["capital_gain"] and quantile["balance"]
  assert not any(quantile[c] for c in ("age", "score_a", "score_b", "hours_per_week"))
  assert len(labels) == 3000


def test_label_depends_on_numeric_and_string_columns():
  """A shallow rule on a few columns beats the majority class, and the interaction
  score_a · score_b carries signal of its own."""
  t = st.generate(20000, seed=3)
  y = t[st.LABEL] == "yes"
  high_edu = np.isin(t["education"], st.EDUCATION[5:])
  assert y[high_edu].mean() > 2 * y[~high_edu].mean()
  inter = np.tanh(t["score_a"] * t["score_b"])
  assert y[inter > 0.5].mean() > y[inter < -0.5].mean() + 0.1
