"""JADER loader on malformed releases: a clear error naming file and line, or a skip
counted under its true reason (issue #13)."""

import pathlib

import pytest

from tfrs_emb.data import jader

DEMO_H = "識別番号,報告回数,性別,年齢"
DRUG_H = "識別番号,報告回数,医薬品の関与,医薬品（一般名）"
REAC_H = "識別番号,報告回数,有害事象"
HIST_H = "識別番号,報告回数,原疾患等"


def _release(folder: pathlib.Path, demo=(), drug=(), reac=(), hist=(), raw=None,
             encoding="cp932"):
  """A minimal release (the loader reads only the columns above); ``raw`` = name → bytes."""
  folder.mkdir(parents=True, exist_ok=True)
  demo = demo or ["A1,1,男性,60歳代", "B2,1,女性,70歳代"]
  for name, header, rows in (("demo.csv", DEMO_H, demo), ("drug.csv", DRUG_H, drug),
                             ("reac.csv", REAC_H, reac), ("hist.csv", HIST_H, hist)):
    data = ("\r\n".join([header, *rows]) + "\r\n").encode(encoding)
    (folder / name).write_bytes((raw or {}).get(name, data))
  return folder


def _load(folder):
  return jader.load_cases(folder)


def test_trailing_delimiter_on_every_row_loads_unshifted(tmp_path):
  folder = tmp_path / "r"
  folder.mkdir()
  for name, lines in (("demo.csv", [DEMO_H + ",", "A1,1,男性,60歳代,"]),
                      ("drug.csv", [DRUG_H + ",", "A1,1,被疑薬,アムロジピン,"]),
                      ("reac.csv", [REAC_H, "A1,1,浮腫,"]),      # data rows only
                      ("hist.csv", [HIST_H, "A1,1,高血圧,,"])):
    (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))
  cases = _load(folder)
  assert list(cases.ids) == ["A1"] and list(cases.report_numbers) == [1]
  assert sorted(cases.elements(0)) == ["drug:アムロジピン", "hist:高血圧", "reac:浮腫"]
  assert cases.skipped == {}


def test_field_count_errors_are_counted_with_their_line(tmp_path):
  cases = _load(_release(tmp_path / "r", drug=[
      "A1,1,被疑薬,アムロジピン",
      "A1,1,被疑薬",                     # line 3: too few fields
      "B2,1,被疑薬,ワルファリン,余分",     # line 4: a non-empty 5th field
      "",                                 # line 5: blank
      "B2,1,被疑,薬,",    # line 6: a comma in a field shifted it; one empty 5th field is
      "B2,1,被疑薬,アスピリン"]))  # no layout (a delimiter ending every row is accepted)
  assert sorted(cases.elements(1)) == ["drug:アスピリン"]
  assert "drug:薬" not in cases.vocab
  assert cases.skipped == {"drug.csv: malformed row, too few fields (expected 4)": 1,
                           "drug.csv: malformed row, too many fields (expected 4)": 2,
                           "drug.csv: malformed row, blank line": 1}
  assert cases.skipped_first_line == {
      "drug.csv: malformed row, too few fields (expected 4)": 3,
      "drug.csv: malformed row, too many fields (expected 4)": 4,
      "drug.csv: malformed row, blank line": 5}
  assert "skipped 1 rows: drug.csv: malformed row, too few fields (expected 4) (first at " \
         "line 3)" in cases.summary()


def test_stray_quote_counts_every_lost_line_and_keeps_line_breaks_out(tmp_path):
  cases = _load(_release(tmp_path / "r", drug=[
      "A1,1,被疑薬,\"アムロジピン",          # line 2: quote opened ...
      "A1,1,被疑薬,ワルファリン",
      "B2,1,被疑薬,アス\"ピリン\"",           # ... closed on line 4 (mid-field quotes)
      "B2,1,被疑薬,ヘパリン"]))
  assert cases.skipped == {"drug.csv: malformed row, row spans several lines (a stray or "
                           "unbalanced quote joined them)": 3}
  assert [e for e in cases.vocab if e.startswith("drug:")] == ["drug:ヘパリン"]
  assert cases.skipped_first_line[next(iter(cases.skipped))] == 2


@pytest.mark.parametrize("name", ["アム\tロジピン", "アム\x00ロジピン", "アム\x1bロジピン",
                                  "\"アム\nロジピン\"", "アム\u2028ロジピン"])
def test_control_characters_never_reach_the_vocabulary(tmp_path, name):
  cases = _load(_release(tmp_path / "r", drug=["A1,1,被疑薬,アスピリン",
                                               f"B2,1,被疑薬,{name}"], encoding="utf-8"))
  assert cases.vocab == ["drug:アスピリン"]
  (reason,) = cases.skipped
  assert reason in (
      "drug.csv: 医薬品（一般名） contains a line break, tab or other control character",
      "drug.csv: malformed row, row spans several lines (a stray or unbalanced quote "
      "joined them)")
  assert ("\n" in name) == ("spans" in reason)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e40", "99999999999999999999",
                                   "-1", "1.5", "二"])
def test_report_number_not_an_integer_is_skipped(tmp_path, value):
  cases = _load(_release(tmp_path / "r", demo=["A1,1,男性,60歳代", f"B2,{value},女性,"],
                         drug=["A1,1,被疑薬,アスピリン"]))
  assert list(cases.ids) == ["A1"]
  assert cases.skipped == {"demo.csv: 報告回数 not an integer in 0..2147483647": 1}
  assert cases.skipped_first_line == {"demo.csv: 報告回数 not an integer in 0..2147483647": 3}


def test_duplicate_demo_rows_and_control_character_ids(tmp_path):
  cases = _load(_release(tmp_path / "r", demo=["A1,1,男性,", "A1,1,男性,", "B\t2,1,女性,"],
                         drug=["A1,1,被疑薬,アスピリン"]))
  assert list(cases.ids) == ["A1"]
  assert cases.skipped == {
      "demo.csv: duplicate 識別番号 + 報告回数 row (first kept)": 1,
      "demo.csv: empty 識別番号 or one with a control character": 1}
  assert cases.skipped_first_line["demo.csv: duplicate 識別番号 + 報告回数 row (first kept)"] == 3


@pytest.mark.parametrize("release,message", [
    (dict(drug=["A1,1,被疑薬,アムロジピン", "B2,1,被疑薬,\"ワル"]),
     r"drug\.csv: line 3: a field opened with a quote is never closed \(unbalanced '\"'\)"),
    (dict(raw={"demo.csv": (DEMO_H + "\r\n").encode("cp932")}),
     r"demo\.csv: no usable data row .* skipped: nothing, the file has only its header"),
    (dict(demo=["A1,nan,男性,", "B2"]),
     r"demo\.csv: no usable data row .*'demo\.csv: malformed row, too few fields "
     r"\(expected 4\)': 1"),
], ids=["quote never closed", "header-only demo", "demo without a usable row"])
def test_release_errors_name_file_line_and_what_was_expected(tmp_path, release, message):
  with pytest.raises(jader.JaderFormatError, match=message):
    _load(_release(tmp_path / "r", **release))


def test_empty_file_and_bad_bytes_after_the_probe_name_the_file(tmp_path):
  folder = _release(tmp_path / "r", raw={"reac.csv": b""})
  with pytest.raises(jader.JaderFormatError, match=r"reac\.csv: empty file \(expected a "
                                                   r"header row\)"):
    _load(folder)
  # The encoding is detected from the first MiB; a bad byte later names its line.
  good = "A1,1,被疑薬,アスピリン\r\n" * 60_000
  raw = (DRUG_H + "\r\n" + good).encode("utf-8") + b"B2,1,\xff\xfe,x\r\n"
  folder = _release(tmp_path / "u", raw={"drug.csv": raw})
  with pytest.raises(jader.JaderFormatError,
                     match=r"drug\.csv: line 60002: bytes that are not valid utf-8: invalid "
                           r"start byte at byte 5 of the line \(encoding detected from the "
                           r"file's start\)"):
    _load(folder)


def test_latent_classes_side_file_with_bad_class_ids(tmp_path):
  folder = _release(tmp_path / "r", drug=["A1,1,被疑薬,アスピリン"])
  (folder / "latent_classes.csv").write_text(
      "識別番号,primary_class,primary_class_name\nA1,inf,x\nB2,2000000000,y\n", "utf-8")
  cases = _load(folder)
  assert cases.latent_class.tolist() == [-1, -1] and cases.latent_class_names == []
  assert cases.skipped == {"latent_classes.csv: primary_class not an integer in 0..2 (class "
                           "unknown)": 2}
  (folder / "latent_classes.csv").write_text("", "utf-8")
  with pytest.raises(jader.JaderFormatError, match=r"latent_classes\.csv: empty file"):
    _load(folder)


def test_stray_quote_swallowing_a_large_file_is_an_error_naming_its_line(tmp_path):
  rows = ["A1,1,被疑薬,\"アスピリン"] + ["A1,1,被疑薬,ヘパリン"] * 20_000
  with pytest.raises(jader.JaderFormatError,
                     match=r"drug\.csv: line 2: field larger than field limit \(131072\) \(a "
                           r"field this long is usually a stray quote joining many lines\)"):
    _load(_release(tmp_path / "r", drug=rows))


def test_an_undecodable_byte_in_the_probed_start_names_its_line(tmp_path):
  demo = ["A1,1,男性,60歳代"] * 3 + ["B2,1,女性,70歳代"]
  raw = ("\r\n".join([DEMO_H, *demo]) + "\r\n").encode("cp932")
  bad = raw.replace("女性".encode("cp932"), b"\x85\x20", 1)   # line 5
  with pytest.raises(jader.JaderFormatError, match=r"demo\.csv: line 5: unknown encoding: "
                                                  r"bytes 0x85 0x20 .*neither cp932"):
    _load(_release(tmp_path / "r", drug=["A1,1,被疑薬,アスピリン"], raw={"demo.csv": bad}))
