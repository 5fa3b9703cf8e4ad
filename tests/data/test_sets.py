"""Set files: baskets and long CSV / TSV.gz / Parquet, skips and caps counted, clear errors."""

import gzip

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
