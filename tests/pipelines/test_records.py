"""Corpus readers: JSON lines / CSV / Parquet records, counted skips, named errors."""

import json

import pandas as pd
import pytest

from tfrs_emb.pipelines import records


def _reads(path, **kw):
  got = list(records.read_text_file(path, **kw))
  return [r for r, _ in got if r is not None], [why for r, why in got if r is None]


def test_jsonl_keeps_good_records_and_names_each_skip(tmp_path):
  path = tmp_path / "posts.jsonl"
  lines = [json.dumps({"id": "a", "text": "hello world"}),
           json.dumps({"id": 7, "text": "seven"}),
           json.dumps({"text": "no id"}),
           json.dumps({"id": "b"}),
           json.dumps({"id": "c", "text": "   "}),
           "{not json", "", json.dumps(["a", "list"]),
           json.dumps({"id": True, "text": "bool id"})]
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  good, skipped = _reads(path)
  assert [(r.id, r.value, r.index) for r in good] == [("a", "hello world", 1),
                                                       ("7", "seven", 2)]
  assert skipped == ["posts.jsonl: record without an id (string or integer)",
                     "posts.jsonl: record without a text (string)",
                     "posts.jsonl: empty text", "posts.jsonl: line not a JSON object",
                     "posts.jsonl: blank line", "posts.jsonl: line not a JSON object",
                     "posts.jsonl: record without an id (string or integer)"]


def test_csv_multiline_text_keeps_its_line_and_counts_short_rows(tmp_path):
  path = tmp_path / "posts.csv"
  path.write_text('id,title,text\na,x,"two\nlines"\nb,y\n,z,no id\nc,w,fine\n',
                  encoding="utf-8")
  good, skipped = _reads(path)
  assert [(r.id, r.value) for r in good] == [("a", "two\nlines"), ("c", "fine")]
  assert skipped == ["posts.csv: row with too few fields",
                     "posts.csv: record without an id (string or integer)"]


def test_parquet_rows_and_nulls(tmp_path):
  path = tmp_path / "posts.parquet"
  pd.DataFrame({"doc": ["a", None, "c"], "body": ["x y", "z", None]}).to_parquet(path)
  good, skipped = _reads(path, id_field="doc", text_field="body")
  assert [(r.id, r.value, r.index) for r in good] == [("a", "x y", 1)]
  assert skipped == ["posts.parquet: record without an id (string or integer)",
                     "posts.parquet: record without a text (string)"]


@pytest.mark.parametrize("name,content,match", [
    ("posts.csv", "id,body\na,b\n", r"posts.csv: no column 'text'"),
    ("posts.csv", "", r"posts.csv: empty file"),
    ("posts.txt", "x", r"unknown file type '.txt'"),
    ("posts.jsonl", b"\xff\xfe{}", r"posts.jsonl: not UTF-8"),
])
def test_bad_files_raise_naming_the_file(tmp_path, name, content, match):
  path = tmp_path / name
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    path.write_text(content, encoding="utf-8")
  with pytest.raises(records.CorpusFormatError, match=match):
    list(records.read_text_file(path))


def test_missing_input_is_named(tmp_path):
  with pytest.raises(records.CorpusFormatError, match="nothing.jsonl: no such file"):
    records.expand_inputs([str(tmp_path / "nothing.jsonl")])
  (tmp_path / "a.jsonl").write_text("", encoding="utf-8")
  (tmp_path / "b.jsonl").write_text("", encoding="utf-8")
  assert records.expand_inputs([str(tmp_path / "*.jsonl")]) == [
      str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]


def test_jader_release_becomes_one_record_per_case(tmp_path):
  from tfrs_emb.data import jader, synthetic_jader  # pylint: disable=import-outside-toplevel
  synthetic_jader.write_release(tmp_path / "rel", 200, seed=0)
  recs = records.jader_records(tmp_path / "rel")
  cases = jader.load_cases(tmp_path / "rel")
  assert len(recs) == len(cases)
  assert recs[5].id == cases.ids[5] and list(recs[5].value) == cases.elements(5)
