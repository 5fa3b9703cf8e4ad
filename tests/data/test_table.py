"""Generic table loader: type inference, CSV quirks, missing / OOV ids, labels, clear errors."""

import numpy as np
import pandas as pd
import pytest

from tfrs_emb.data import table as tbl

CSV = """id , colour, size, rooms, score, label
1, red, 1.5, 2, 10, yes
2, blue, ?, 3, 20, no
3, red, 2.5, 2, , yes
4, green, 3.5, 4, 40, no
5, red, 4.5, 3, 50, yes
6, , 5.5, 2, 60, no
"""


def _schema(table, **kwargs):
  classes = tbl.label_classes(table, "label")
  return tbl.infer_schema(table, "label", classes, np.arange(len(table)), **kwargs)


def _read(tmp_path, text, name="t.csv"):
  path = tmp_path / name
  path.write_text(text)
  return tbl.read_table(path)


def test_inference_strips_whitespace_and_marks_missing(tmp_path):
  table = _read(tmp_path, CSV)
  assert list(table.frame.columns) == ["id", "colour", "size", "rooms", "score", "label"]
  schema = _schema(table, drop=("id",), max_integer_categories=3)
  assert schema.continuous == ("size", "score")
  assert [f.name for f in schema.categorical] == ["colour", "rooms"]
  assert schema.origins["colour"] == "inferred: strings"
  assert schema.origins["rooms"].startswith("inferred: integers, 3 distinct")
  assert schema.classes == ("no", "yes")
  colour = schema.categorical[0]
  assert colour.vocabulary == ("blue", "green", "red")
  feats = tbl.encode_features(table, schema)
  # '?' and the empty cell are NaN (missing) in continuous columns.
  assert np.isnan(feats["continuous"][1, 0]) and np.isnan(feats["continuous"][2, 1])
  # Categorical ids: 0 missing, 1 OOV, 2.. vocabulary; row 6 has an empty colour.
  np.testing.assert_array_equal(feats["categorical"][:, 0], [4, 2, 4, 3, 4, 0])
  shares = tbl.missing_shares(feats, schema)
  assert shares == pytest.approx({"size": 1 / 6, "score": 1 / 6, "colour": 1 / 6})
  np.testing.assert_array_equal(tbl.encode_labels(table, "label", schema.classes),
                                [1, 0, 1, 0, 1, 0])


def test_rare_and_unseen_categories_are_out_of_vocabulary(tmp_path):
  table = _read(tmp_path, CSV)
  classes = tbl.label_classes(table, "label")
  schema = tbl.infer_schema(table, "label", classes, np.arange(5), drop=("id",),
                            min_category_count=2)
  assert schema.categorical[0].vocabulary == ("red",)  # blue, green seen once
  later = _read(tmp_path, "id,colour,size,rooms,score,label\n9,purple,1,2,3,yes\n", "u.csv")
  assert tbl.encode_features(later, schema)["categorical"][0, 0] == tbl.OOV_ID


def test_thirty_percent_missing_column_is_kept_with_missing_token(tmp_path):
  rng = np.random.default_rng(0)
  values = [("" if rng.random() < 0.3 else f"{v:.2f}") for v in rng.normal(size=200)]
  text = "x,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(values))
  table = _read(tmp_path, text)
  schema = _schema_xy(table)
  feats = tbl.encode_features(table, schema)
  share = tbl.missing_shares(feats, schema)["x"]
  assert 0.2 < share < 0.4
  scaler = tbl.Scaler.fit(feats["continuous"])
  z = scaler.transform(feats["continuous"])
  assert np.isnan(z).sum() == np.isnan(feats["continuous"]).sum()
  assert abs(np.nanmean(z)) < 1e-5


def _schema_xy(table):
  return tbl.infer_schema(table, "y", tbl.label_classes(table, "y"), np.arange(len(table)))


def test_non_numeric_value_in_declared_numeric_column_names_line_and_column(tmp_path):
  table = _read(tmp_path, CSV.replace("3, 20, no", "3, lots, no"))
  with pytest.raises(ValueError, match=r"t\.csv: line 3, column 'score': expected a finite "
                                       r"number .* got 'lots'"):
    _schema(table, numeric=("score",))


@pytest.mark.parametrize("cell", ["inf", "1e39"])
def test_non_finite_number_is_an_error(tmp_path, cell):
  table = _read(tmp_path, CSV.replace("4.5", cell))
  for declared in ((), ("size",)):  # inferred numeric or declared: the same error
    with pytest.raises(ValueError, match=r"line 6, column 'size'"):
      _schema(table, numeric=declared)


def test_label_errors(tmp_path):
  one = _read(tmp_path, "a,label\n1,x\n2,x\n", "one.csv")
  with pytest.raises(ValueError, match=r"one\.csv: label column 'label' has a single class 'x'"):
    tbl.label_classes(one, "label")
  gap = _read(tmp_path, "a,label\n1,x\n2,\n", "gap.csv")
  with pytest.raises(ValueError, match=r"gap\.csv: line 3, column 'label': missing label"):
    tbl.label_classes(gap, "label")
  with pytest.raises(ValueError, match="no label column 'target'"):
    tbl.label_classes(one, "target")
  # Integer labels sort numerically: 2 < 10.
  ints = _read(tmp_path, "a,label\n1,10\n2,2\n", "ints.csv")
  assert tbl.label_classes(ints, "label") == ("2", "10")


def test_onehot_groups(tmp_path):
  text = "g1,g2,g3,v,label\n1,0,0,1,a\n0,0,1,2,b\n0,0,0,3,a\n"
  table = _read(tmp_path, text)
  schema = tbl.infer_schema(table, "label", ("a", "b"), np.arange(3), onehot_groups=("g",))
  group = schema.categorical[0]
  assert group.members == ("g1", "g2", "g3") and group.cardinality == 5
  np.testing.assert_array_equal(tbl.encode_features(table, schema)["categorical"][:, 0],
                                [2, 4, tbl.MISSING_ID])
  bad = _read(tmp_path, text.replace("0,0,1,2,b", "0,1,1,2,b"), "bad.csv")
  with pytest.raises(ValueError, match=r"bad\.csv: line 3: one-hot group 'g' holds 2 ones"):
    tbl.encode_features(bad, schema)
  two = _read(tmp_path, text.replace("0,0,1,2,b", "0,0,2,2,b"), "two.csv")
  with pytest.raises(ValueError, match=r"line 3, column 'g3'.*expected 0 or 1"):
    tbl.encode_features(two, schema)


def test_unknown_declared_column_and_parquet(tmp_path):
  table = _read(tmp_path, CSV)
  with pytest.raises(ValueError, match=r"no column\(s\) \['colour_'\]"):
    _schema(table, categorical=("colour_",))
  frame = pd.DataFrame({"x": [1.0, None, 3.0], "c": ["a", "b", None], "label": [1, 2, 1]})
  frame.to_parquet(tmp_path / "t.parquet")
  pq = tbl.read_table(tmp_path / "t.parquet")
  schema = tbl.infer_schema(pq, "label", tbl.label_classes(pq, "label"), np.arange(3))
  feats = tbl.encode_features(pq, schema)
  assert schema.continuous == ("x",) and np.isnan(feats["continuous"][1, 0])
  assert feats["categorical"][2, 0] == tbl.MISSING_ID


def test_missing_file_and_empty_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.csv"):
    tbl.read_table(tmp_path / "nope.csv")
  (tmp_path / "e.csv").write_text("")
  with pytest.raises(ValueError, match=r"e\.csv: empty file"):
    tbl.read_table(tmp_path / "e.csv")


def test_stratified_split_partitions_per_class():
  labels = np.repeat(np.arange(7), 100)
  rest, taken = tbl.stratified_split(labels, 0.2, seed=0)
  assert len(np.intersect1d(rest, taken)) == 0 and len(rest) + len(taken) == 700
  assert np.bincount(labels[taken]).tolist() == [20] * 7


def test_malformed_rows_blank_lines_and_bytes_name_the_line(tmp_path):
  table = _read(tmp_path, "a,label\n1,x\n\n2,y\n")  # blank line skipped, lines still counted
  assert list(table.lines) == [2, 4]
  with pytest.raises(ValueError, match=r"short\.csv: line 3: too few fields"):
    _read(tmp_path, "a,b,label\n1,2,x\n3,y\n", "short.csv")
  with pytest.raises(ValueError, match=r"long\.csv: line 2: too many fields"):
    _read(tmp_path, "a,label\n1,x,9\n2,y\n", "long.csv")
  (tmp_path / "latin.csv").write_bytes(b"a,label\n1,x\n\xe9,y\n")
  with pytest.raises(ValueError, match=r"latin\.csv: line 3"):
    tbl.read_table(tmp_path / "latin.csv")
  with pytest.raises(ValueError, match=r"dup\.csv: duplicate column name\(s\) \['a'\]"):
    _read(tmp_path, "a, a,label\n1,2,x\n", "dup.csv")


def test_scaler_uses_given_rows_and_log1p():
  x = np.array([[1.0, 0.0], [3.0, 99.0], [5.0, -9.0]], np.float32)
  scaler = tbl.Scaler.fit(x, np.array([False, True]))
  z = scaler.transform(x)
  np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-6)
  np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-5)
  assert scaler.mean[1] == pytest.approx((np.log1p(99) - np.log1p(9)) / 3, rel=1e-5)


def test_quantile_scaler_gives_normal_scores_whatever_the_tail():
  rng = np.random.default_rng(0)
  n = 5000
  heavy = np.exp(rng.normal(7, 1.5, n))                          # log-normal, like a balance
  mostly_zero = np.where(rng.random(n) < 0.9, 0.0, np.exp(rng.normal(8, 1, n)))
  x = np.stack([heavy, mostly_zero, np.full(n, 4.0)], axis=1)
  x[::50, 0] = np.nan
  scaler = tbl.Scaler.fit(x, scaling="quantile")
  z = scaler.transform(x)
  assert np.isnan(z[::50, 0]).all() and not np.isnan(np.delete(z[:, 0], np.s_[::50])).any()
  finite = z[np.isfinite(z[:, 0]), 0]
  assert abs(finite.mean()) < 0.02 and abs(finite.std() - 1) < 0.05   # N(0, 1) scores
  # order kept, ends finite; beyond the training range: the end scores
  order = np.argsort(heavy)
  kept = order[np.isfinite(z[order, 0])]
  assert (np.diff(z[kept, 0]) >= 0).all() and np.abs(finite).max() < 4.5
  beyond = scaler.transform(np.array([[1e12, 0.0, 4.0], [-5.0, 1e9, 99.0]]))
  assert beyond[0, 0] == pytest.approx(finite.max()) and beyond[1, 0] == pytest.approx(finite.min())
  # the zeros (90 % of rows) sit at their mid-rank level, every non-zero above them
  zero = z[mostly_zero == 0, 1]
  assert np.allclose(zero, zero[0]) and zero[0] == pytest.approx(-0.1257, abs=0.02)
  assert (z[mostly_zero > 0, 1] > zero[0]).all()
  assert np.allclose(z[:, 2], 0.0) and np.allclose(beyond[:, 2], 0.0)   # constant column
  assert scaler.knots.shape == (3, scaler.num_knots.max())

  # float32 neighbours (counts in cents beyond 2^24) stay distinct knots with finite scores
  big = np.concatenate([np.linspace(0, 2 ** 25, 5000), np.full(3006, np.nextafter(
      np.float32(2 ** 25), np.float32(0))), np.full(2000, 2.0 ** 25), 2 ** 25 + np.arange(5000)])
  s32 = tbl.Scaler.fit(big[:, None], scaling="quantile")
  n = s32.num_knots[0]
  assert (np.diff(s32.knots[0, :n]) > 0).all() and np.isfinite(s32.scores[0, :n]).all()


def test_scaler_scaling_names_are_checked_and_standard_ignores_knots():
  x = np.array([[1.0], [2.0], [30.0]])
  with pytest.raises(ValueError, match="scaling 'rank' is not one of"):
    tbl.Scaler.fit(x, scaling="rank")
  standard = tbl.Scaler.fit(x)
  assert not standard.quantile.any()
  np.testing.assert_allclose(standard.transform(x)[:, 0], (x[:, 0] - x.mean()) / x.std(),
                             rtol=1e-6)


def test_stratified_folds_partition_each_class_evenly():
  labels = np.array([0] * 13 + [1] * 7 + [2] * 2)
  folds = tbl.stratified_folds(labels, 5, seed=3)
  assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(len(labels)))
  for c in range(3):
    counts = [int(np.sum(labels[f] == c)) for f in folds]
    assert max(counts) - min(counts) <= 1
  assert max(map(len, folds)) - min(map(len, folds)) <= 1
  with pytest.raises(ValueError, match="at least 2 folds"):
    tbl.stratified_folds(labels, 1, seed=0)


@pytest.mark.parametrize("sep, name", [("\t", "tab"), (";", "semicolon")])
def test_a_tab_or_semicolon_separated_file_names_the_separator(tmp_path, sep, name):
  path = tmp_path / "t.csv"
  path.write_text(sep.join(["x1", "color", "y"]) + "\n" + sep.join(["0.5", "red", "no"]) + "\n")
  with pytest.raises(ValueError, match=rf"the header is one column .*looks {name}-separated, "
                                       "and only comma-separated files are read"):
    tbl.read_table(path)


def test_a_quoted_line_break_is_named_as_unsupported(tmp_path):
  path = tmp_path / "t.csv"
  path.write_text('x1,note,y\n0.5,plain,no\n1.5,"line1\nline2",yes\n')
  with pytest.raises(ValueError, match=r"line 3: row spans lines 3-4: a quoted field holding "
                                       r"a line break \(valid CSV, but not supported"):
    tbl.read_table(path)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
  path = tmp_path / "t.csv"
  path.write_bytes("\ufeffy,x1\nno,0.5\nyes,1.5\n".encode("utf-8"))
  table = tbl.read_table(path)
  assert list(table.frame.columns) == ["y", "x1"]
  assert tbl.label_classes(table, "y") == ("no", "yes")


def test_common_missing_tokens_keep_a_column_numeric_and_are_counted(tmp_path):
  """'n/a', 'null', 'None', '-', '#N/A' (pandas' NA tokens) in a numeric column are missing
  cells, not a reason to call it categorical; the type origin counts them per token."""
  tokens = ["n/a", "N/A", "null", "NULL", "None", "-", "#N/A", "NA", "NaN", "?"]
  rows = [f"{t},{i % 2}" for i, t in enumerate(tokens)] + [f"{i}.5,{i % 2}" for i in range(6)]
  path = tmp_path / "t.csv"
  path.write_text("income,y\n" + "\n".join(rows) + "\n")
  table = tbl.read_table(path)
  schema = tbl.infer_schema(table, "y", ("0", "1"), np.arange(len(rows)))
  assert schema.continuous == ("income",)
  assert schema.origins["income"].startswith("inferred: numbers; 10 cell(s) read as missing: ")
  assert "'n/a' ×1" in schema.origins["income"] and "'#N/A' ×1" in schema.origins["income"]
  values = tbl.column_numbers(table, "income")
  assert np.isnan(values[:10]).all() and not np.isnan(values[10:]).any()


def test_a_table_without_an_informative_feature_is_an_error_naming_each_column(tmp_path):
  """Constant, all-missing and id-like (no value twice) features give no model anything
  (CatBoost: 'All features are either constant or ignored'): refused at schema time."""
  path = tmp_path / "t.csv"
  path.write_text("id,const,empty,y\n" + "".join(f"u{i},7,,{i % 2}\n" for i in range(8)))
  table = tbl.read_table(path)
  with pytest.raises(ValueError, match=r"no feature column carries information \('const': "
                                       r"constant \('7' .*'id': an id: 8 distinct values, "
                                       r"none seen twice; 'empty': every cell missing\)"):
    tbl.infer_schema(table, "y", ("0", "1"), np.arange(8))
  path.write_text("id,x,y\n" + "".join(f"u{i},{i % 3},{i % 2}\n" for i in range(8)))
  schema = tbl.infer_schema(tbl.read_table(path), "y", ("0", "1"), np.arange(8))
  assert schema.continuous == ("x",)      # one informative column is enough


def test_stratified_folds_leave_a_single_row_class_to_every_training_part():
  """Held out, a class's only row would be missing from its fold's training rows (CatBoost
  then refuses the held-out rows); it is in no fold, so every complement has it."""
  labels = np.array([0] * 6 + [1] * 5 + [2] + [3] * 2)
  folds = tbl.stratified_folds(labels, 5, seed=0)
  assert np.array_equal(np.sort(np.concatenate(folds)), np.setdiff1d(np.arange(14), [11]))
  for fold in folds:
    assert set(labels[np.setdiff1d(np.arange(14), fold)]) == {0, 1, 2, 3}


def test_small_classes_keep_a_row_on_each_side_and_a_class_without_rows_is_named():
  labels = np.array([0] * 20 + [1, 1] + [2])
  rest, taken = tbl.stratified_split(labels, 0.9, seed=0)
  assert np.bincount(labels[rest], minlength=3).tolist() == [2, 1, 1]   # class 2: rest
  assert np.bincount(labels[taken], minlength=3).tolist() == [18, 1, 0]
  tbl.require_every_class(labels[rest], ["a", "b", "c"], "rest")
  with pytest.raises(ValueError,
                     match=r"label fraction 0\.1: training rows: no row of class 'c' \(1 "
                           r"row\(s\) to draw from\) among 19 rows; the model would never "
                           r"see it"):
    tbl.require_every_class(labels[taken], ["a", "b", "c"],
                            "label fraction 0.1: training rows", pool=labels)


def test_parquet_columns_equal_once_stripped_or_holding_lists_are_errors(tmp_path):
  path = tmp_path / "strip.parquet"
  pd.DataFrame({"amount": [1, 2], " amount ": [3, 4], "label": ["x", "y"]}).to_parquet(path)
  with pytest.raises(ValueError, match=r"strip\.parquet: columns 'amount' and ' amount ' are "
                                       r"both 'amount' once surrounding whitespace is stripped"):
    tbl.read_table(path)
  nested = tmp_path / "nested.parquet"
  pd.DataFrame({"tags": [["a", "b"], ["c"]], "label": ["x", "y"]}).to_parquet(nested)
  with pytest.raises(ValueError, match=r"nested\.parquet: column 'tags' holds ndarray values "
                                       r"\(row 1: .*\); a table column needs one number or "
                                       r"string per cell"):
    tbl.read_table(nested)
  ok = tmp_path / "ok.parquet"
  pd.DataFrame({" a": [1.5, None], "label": ["x", "y"]}).to_parquet(ok)
  assert tbl.read_table(ok).frame.to_dict("list") == {"a": ["1.5", ""], "label": ["x", "y"]}


def test_a_onehot_prefix_matching_the_label_is_an_error(tmp_path):
  table = _read(tmp_path, "kind_a,kind_b,kind_label,x\n1,0,p,1\n0,1,q,2\n")
  with pytest.raises(ValueError, match=r"one-hot group prefix 'kind_' \(--onehot_groups\) "
                                       r"matches the label column 'kind_label'"):
    tbl.infer_schema(table, "kind_label", ("p", "q"), np.arange(2), onehot_groups=("kind_",))
