"""Set files: baskets and long CSV / TSV.gz / Parquet, skips and caps counted, clear errors."""

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from tfrs_emb.data import sets


def _sets(corpus):
  return [[corpus.vocab[i] for i in corpus.indices[a:b]]
          for a, b in zip(corpus.indptr[:-1], corpus.indptr[1:])]


def test_baskets_strip_dedupe_and_skip_short_sets(tmp_path):
  path = tmp_path / "b.csv"
  path.write_text("whole milk,rolls/buns , whole milk\n\nyogurt\ncream cheese ,yogurt,,UHT-milk\n"
                  "ｙｏｇｕｒｔ,coffee\n", encoding="utf-8")
  c = sets.load_sets(path, format="baskets")
  assert _sets(c) == [["whole milk", "rolls/buns"], ["cream cheese", "yogurt", "UHT-milk"],
                      ["yogurt", "coffee"]]             # NFKC: full-width = yogurt
  assert c.set_ids == ["1", "4", "5"] and not c.ordered
  assert c.vocab == ["whole milk", "rolls/buns", "yogurt", "cream cheese", "UHT-milk", "coffee"]
  assert c.skipped == {"repeated element within a set (kept once)": 1,
                       "empty element between delimiters": 1, "empty sets, skipped": 1,
                       "one-element sets (no context), skipped": 1}
  assert "3 sets" in c.summary()


def test_long_format_orders_caps_and_reads_tsv_gz_and_parquet(tmp_path):
  frame = pd.DataFrame({"session": ["s1", "s1", "s2", "s1", "s2", "s3", "s1"],
                        "item": ["a", "b", "c", "d", "a", "e", "e"],
                        "t": [3, 1, 5, 2, 4, 1, 9]})
  frame.to_csv(tmp_path / "l.csv", index=False)
  with gzip.open(tmp_path / "l.tsv.gz", "wt", encoding="utf-8") as f:
    frame.to_csv(f, sep="\t", index=False)
  frame.to_parquet(tmp_path / "l.parquet")
  for name in ("l.csv", "l.tsv.gz", "l.parquet"):
    c = sets.load_sets(tmp_path / name, format="long", set_column="session",
                       element_column="item", order_column="t", max_len=3)
    assert c.ordered and c.set_ids == ["s1", "s2"]
    assert _sets(c) == [["d", "a", "e"], ["a", "c"]], name   # s1 by t, capped to its last 3
    assert c.skipped == {"sets longer than max_len=3 (kept their last 3)": 1,
                         "one-element sets (no context), skipped": 1}


def test_token_lists_and_corpus_from_csr():
  toks = sets.token_lists(np.array([0, 3, 5]), np.array([0, 1, 2, 2, 3]), list("abcd"), seed=0)
  assert [sorted(t) for t in toks] == [["a", "b", "c"], ["c", "d"]]
  c = sets.corpus_from_csr(list("abcd"), np.array([0, 3, 4, 6]), np.array([0, 1, 2, 3, 1, 3]),
                           ["x", "y", "z"], source="mem")
  assert c.set_ids == ["x", "z"] and _sets(c) == [["a", "b", "c"], ["b", "d"]]


def test_clear_errors_name_file_line_and_column(tmp_path):
  bad = tmp_path / "latin1.csv"
  bad.write_bytes("milk,bread\ncafé,milk\n".encode("latin-1"))
  with pytest.raises(sets.SetFormatError, match=r"latin1\.csv: line 2: not UTF-8"):
    sets.load_sets(bad)
  empty = tmp_path / "empty.csv"
  empty.write_text("\n \n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match=r"empty\.csv: the file is empty"):
    sets.load_sets(empty)
  with pytest.raises(sets.SetFormatError, match=r"nothere\.csv: no such file"):
    sets.load_sets(tmp_path / "nothere.csv")
  table = tmp_path / "t.csv"
  table.write_text("session,item\ns1,a\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError,
                     match=r"t\.csv: missing column 'set' \(--set_column\); the file has "
                           r"'session', 'item'"):
    sets.load_sets(table, format="long")
  header_only = tmp_path / "h.csv"
  header_only.write_text("set,element\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match="header but no rows"):
    sets.load_sets(header_only, format="long")
  singles = tmp_path / "singles.csv"
  singles.write_text("a\nb\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match=r"no set with at least 2 elements"):
    sets.load_sets(singles)


def test_a_huge_set_is_an_error_naming_the_set(tmp_path):
  path = tmp_path / "huge.csv"
  rows = ["set,element"] + [f"all,e{i}" for i in range(100_000)] + ["s2,a", "s2,b"]
  path.write_text("\n".join(rows) + "\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError,
                     match=r"huge\.csv: set \(set\) 'all' has 100,000 elements \(limit "
                           r"10,000\); is the set column right\?"):
    sets.load_sets(path, format="long")


def test_element_labels(tmp_path):
  path = tmp_path / "labels.csv"
  path.write_text("element,label\nmilk,dairy\nmilk,drink\nbread,bakery\nghost,x\n",
                  encoding="utf-8")
  skipped = {}
  labels = sets.load_element_labels(path, ["bread", "milk", "jam"], skipped)
  assert labels == [frozenset({"bakery"}), frozenset({"dairy", "drink"}), frozenset()]
  assert list(skipped.values()) == [1]
  wrong = tmp_path / "wrong.csv"
  wrong.write_text("item,label\nmilk,dairy\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match=r"wrong\.csv: missing column 'element'"):
    sets.load_element_labels(wrong, ["milk"])


def test_groceries(shared_data):
  c = sets.load_sets(shared_data / "sets" / "groceries.csv", format="baskets")
  assert len(c.vocab) == 169 and len(c) + c.skipped[
      "one-element sets (no context), skipped"] == 9835
  assert "cream cheese" in c.vocab and "cream cheese " not in c.vocab


def test_baskets_follow_csv_quoting_as_pandas_and_r_write_it(tmp_path):
  path = tmp_path / "quoted.csv"
  path.write_text('"rolls,buns",whole milk,"the ""best"" jam"\nyogurt,"rolls,buns"\n',
                  encoding="utf-8")
  c = sets.load_sets(path)
  assert _sets(c) == [["rolls,buns", "whole milk", 'the "best" jam'], ["yogurt", "rolls,buns"]]
  assert not c.skipped
  stray = tmp_path / "stray.csv"
  stray.write_text('milk,bread\n"jam,butter\ntea,coffee\n', encoding="utf-8")
  with pytest.raises(sets.SetFormatError,
                     match=r"stray\.csv: line 2: a quoted field runs over 2 lines"):
    sets.load_sets(stray)
  with pytest.raises(ValueError, match="--delimiter must be one character"):
    sets.load_sets(path, delimiter=", ")


def test_unicode_line_separators_stay_inside_element_names(tmp_path):
  names = ["a\u2028b", "c\x85d", "e\x0cf", "g\x1eh", "i\u2029j", "k\x0bl"]
  path = tmp_path / "seps.csv"
  path.write_text(f"{names[0]},{names[1]},{names[2]}\r\n{names[3]},{names[4]}\r{names[5]},x\n",
                  encoding="utf-8")
  c = sets.load_sets(path)
  assert c.set_ids == ["1", "2", "3"]   # only \r\n, \r and \n end a line
  assert _sets(c) == [names[:3], names[3:5], [names[5], "x"]]
  long = tmp_path / "seps_long.csv"
  long.write_text("set,element\n" + "".join(f"s{i // 3},{n}\n" for i, n in enumerate(names)),
                  encoding="utf-8")
  assert _sets(sets.load_sets(long, format="long")) == [names[:3], names[3:]]


def test_a_byte_order_mark_inside_the_file_is_removed_and_counted(tmp_path):
  path = tmp_path / "cat.csv"
  path.write_bytes("\ufeffmilk,bread\n".encode() + "\ufefftea,coffee\njam,\ufeffbutter\n".encode())
  c = sets.load_sets(path)
  assert _sets(c) == [["milk", "bread"], ["tea", "coffee"], ["jam", "butter"]]
  assert c.skipped == {"byte order marks inside the file, removed (first on line 2)": 2}


def test_a_bad_value_in_a_numeric_order_column_names_its_line_never_text_order(tmp_path):
  rows = ["set,element,t", "s1,e1,1", "s1,e10,10", "s1,e2,2", "s2,a,3", "s2,b,x", "s2,c,"]
  path = tmp_path / "order.csv"
  path.write_text("\n".join(rows) + "\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError,
                     match=r"order\.csv: line 6: --order_column 't': missing value or not a "
                           r"number \(the column's other values are numbers\), got 'x'; .*"
                           r"--skip_bad_order"):
    sets.load_sets(path, format="long", order_column="t")
  c = sets.load_sets(path, format="long", order_column="t", skip_bad_order=True)
  assert _sets(c) == [["e1", "e2", "e10"]]   # numeric order, not e1, e10, e2
  assert c.skipped == {"rows with a bad t (missing value or not a number (the column's "
                       "other values are numbers)), skipped": 2,
                       "one-element sets (no context), skipped": 1}
  dates = tmp_path / "dates.csv"
  dates.write_text("set,element,t\ns1,b,2024-02-01\ns1,a,2024-01-31\ns1,c,\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match=r"dates\.csv: line 4: .* missing value or not "
                                               r"an ISO-8601 datetime .*, got ''"):
    sets.load_sets(dates, format="long", order_column="t")
  c = sets.load_sets(dates, format="long", order_column="t", skip_bad_order=True)
  assert _sets(c) == [["a", "b"]]
  parquet = tmp_path / "order.parquet"
  pd.DataFrame({"set": ["s1", "s1", "s1"], "element": ["a", "b", "c"],
                "t": [2.0, np.nan, 1.0]}).to_parquet(parquet)
  with pytest.raises(sets.SetFormatError, match=r"order\.parquet: row 2: --order_column 't'"):
    sets.load_sets(parquet, format="long", order_column="t")
  # A zoned datetime column: compared in UTC, a null named on its row (it once crashed).
  zoned = tmp_path / "zoned.parquet"
  pd.DataFrame({"set": ["s1"] * 3, "element": ["a", "b", "c"],
                "t": pd.to_datetime(["2024-01-02T00:00+09:00", None,
                                     "2024-01-01T16:00Z"], utc=True)
                .tz_convert("Asia/Tokyo")}).to_parquet(zoned)
  with pytest.raises(sets.SetFormatError, match=r"zoned\.parquet: row 2: --order_column 't'"):
    sets.load_sets(zoned, format="long", order_column="t")
  ordered = sets.load_sets(zoned, format="long", order_column="t", skip_bad_order=True)
  assert _sets(ordered) == [["a", "c"]]   # 2024-01-01T15:00Z before 16:00Z


def test_order_column_with_baskets_is_an_error(tmp_path):
  path = tmp_path / "b.csv"
  path.write_text("a,b\n", encoding="utf-8")
  with pytest.raises(ValueError, match="--order_column=t applies to --format=long only"):
    sets.load_sets(path, format="baskets", order_column="t")


def test_a_truncated_gzip_names_the_path(tmp_path):
  for name, fmt in (("b.csv.gz", "baskets"), ("l.csv.gz", "long")):
    path = tmp_path / name
    path.write_bytes(gzip.compress(("set,element\n" + "s1,a\n" * 1000).encode())[:-20])
    with pytest.raises(sets.SetFormatError,
                       match=rf"{name.replace('.', '[.]')}: truncated or not a valid gzip"):
      sets.load_sets(path, format=fmt)


def test_a_missing_set_id_in_parquet_is_a_counted_skip(tmp_path):
  path = tmp_path / "nan.parquet"
  pd.DataFrame({"set": [1.0, 1.0, np.nan, 2.0, 2.0], "element": ["a", "b", "c", "a", None]}
               ).to_parquet(path)
  c = sets.load_sets(path, format="long")
  assert _sets(c) == [["a", "b"]] and c.set_ids == ["1"]
  assert c.skipped == {"rows with an empty set": 1, "rows with an empty element": 1,
                       "one-element sets (no context), skipped": 1}


def test_a_stray_quote_in_an_element_label_file_names_its_line(tmp_path):
  path = tmp_path / "labels.csv"
  path.write_text('element,label\nmilk,dairy\n"bread,bakery\njam,spread\n', encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match=r"labels\.csv: line 3: row spans several "
                                                r"lines \(a stray or unbalanced quote"):
    sets.load_element_labels(path, ["milk", "bread", "jam"])
  wide = tmp_path / "wide.csv"
  wide.write_text("element,label\nmilk,dairy,drink\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError, match=r"wide\.csv: line 2: too many fields"):
    sets.load_element_labels(wide, ["milk"])


def test_no_pair_surviving_min_count_names_min_count_and_the_counts():
  indptr, indices = np.array([0, 2, 4, 6]), np.array([0, 1, 0, 1, 2, 3])
  sets.check_min_count(indptr, indices, 5, 2, "mem")   # sets 0 and 1: elements 0, 1
  with pytest.raises(sets.SetFormatError,
                     match=r"mem: no set has 2 elements occurring in >= --min_count=3 sets "
                           r"\(0 of 5 elements reach it; the most frequent occurs in 2 of 3 "
                           r"sets\); lower --min_count"):
    sets.check_min_count(indptr, indices, 5, 3, "mem")


def test_integer_ids_with_nulls_in_parquet_stay_integers(tmp_path):
  """Nulls make an integer column float in pandas; its ids must not read "10.0"."""
  path = tmp_path / "intnull.parquet"
  pd.DataFrame({"set": [1.0, 1.0, 1.0, 2.0, None, 2.0],
                "element": [10.0, 20.0, None, 10.0, 30.0, 2.0**40]}).to_parquet(path)
  corpus = sets.load_sets(path, format="long")
  assert corpus.vocab == ["10", "20", "1099511627776"]
  assert corpus.set_ids == ["1", "2"] and corpus.aliases == {}
  fractional = tmp_path / "frac.parquet"
  pd.DataFrame({"set": ["a", "a"], "element": [1.5, 2.0]}).to_parquet(fractional)
  assert sets.load_sets(fractional, format="long").vocab == ["1.5", "2.0"]
  huge = tmp_path / "huge.parquet"   # whole doubles beyond 2^53 are not exact ids: as written
  pd.DataFrame({"set": ["a", "a"], "element": [1e20, 3.0]}).to_parquet(huge)
  assert sets.load_sets(huge, format="long").vocab == ["1e+20", "3.0"]


def test_text_order_values_are_datetimes_in_utc_or_a_clear_error(tmp_path):
  """Mixed offsets order by the instant, not the string; a stray number in a datetime
  column is named on its own line; d.m.YYYY is refused, not ordered as text."""
  tz = tmp_path / "tz.csv"   # c (10:00Z) < a (20:00+09:00 = 11:00Z) < b (12:00Z)
  tz.write_text("set,element,t\ns,a,2024-01-01T20:00:00+09:00\ns,b,2024-01-01T12:00:00Z\n"
                "s,c,2024-01-01T10:00:00Z\n", encoding="utf-8")
  assert _sets(sets.load_sets(tz, format="long", order_column="t")) == [["c", "a", "b"]]
  stray = tmp_path / "stray.csv"
  stray.write_text("set,element,t\n" + "".join(f"s,e{i},2024-01-0{i + 1}\n" for i in range(5))
                   + "s,x,0\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError,
                     match=r"stray\.csv: line 7: --order_column 't': missing value or not an "
                           r"ISO-8601 datetime \(the column's other values are datetimes\), "
                           r"got '0'"):
    sets.load_sets(stray, format="long", order_column="t")
  german = tmp_path / "de.csv"
  german.write_text("set,element,t\ns,a,10.5.2024\ns,b,9.5.2024\n", encoding="utf-8")
  with pytest.raises(sets.SetFormatError,
                     match=r"de\.csv: --order_column 't': its values are neither numbers nor "
                           r"ISO-8601 datetimes \(e\.g\. '10\.5\.2024' on line 2\)"):
    sets.load_sets(german, format="long", order_column="t")


def test_misread_files_say_what_to_pass(tmp_path):
  """Parquet without --format=long, a basket file split on another delimiter, and a set
  column with very few sets for its rows each name the likely fix."""
  parquet = tmp_path / "events.parquet"
  pd.DataFrame({"set": ["a", "a"], "element": ["x", "y"]}).to_parquet(parquet)
  with pytest.raises(sets.SetFormatError, match=r"events\.parquet: this is a Parquet file.*"
                                                r"--format=long"):
    sets.load_sets(parquet)
  for name, sep, words in (("b.tsv", "\t", r"lines hold a tab \(--delimiter=\$'\\t'"),
                           ("semi.csv", ";", r"lines hold ';': is --delimiter right\?")):
    path = tmp_path / name
    path.write_text("".join(f"a{i}{sep}b{i}{sep}c\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(sets.SetFormatError,
                       match=r"no set with at least 2 elements .*no line splits on "
                             r"--delimiter=',', but 5 of the first 5 " + words):
      sets.load_sets(path)
  const = tmp_path / "const.csv"
  const.write_text("set,element,store\n" + "".join(f"s{i % 50},e{i % 7},shop1\n"
                                                    for i in range(200)), encoding="utf-8")
  hint = "200 rows fall in only 1 set(s) of 'store': is --set_column right?"
  corpus = sets.load_sets(const, format="long", set_column="store")
  assert corpus.hints == [hint] and hint in corpus.summary()
  with pytest.raises(sets.SetFormatError, match=r"lower --min_count .*; " + re.escape(hint)):
    sets.check_min_count(corpus.indptr, corpus.indices, len(corpus.vocab), 5, "const.csv",
                         corpus.hints)
  assert sets.load_sets(const, format="long").hints == []
