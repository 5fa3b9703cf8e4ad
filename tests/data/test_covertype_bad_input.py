"""Cover Type loader on malformed files: every one an error naming the file, line and
column and what was expected (issue #13)."""

import gzip

import numpy as np
import pytest

from tests.data.test_covertype import _rows, _write_kaggle
from tfrs_emb.data import covertype as ct


def _kaggle_text(path, transform):
  """A Kaggle file at ``path`` whose text is ``transform(text)``."""
  path = _write_kaggle(path, _rows())
  path.write_text(transform(path.read_text()))
  return path


def test_trailing_delimiter_on_every_line_loads_unshifted(tmp_path):
  ref = ct.load_covertype(_write_kaggle(tmp_path / "ref.csv", _rows()))
  for name, transform in (("rows.csv", lambda t: t.replace("\n", ",\n").replace(",\n", "\n", 1)),
                          ("all.csv", lambda t: t.replace("\n", ",\n"))):
    data = ct.load_covertype(_kaggle_text(tmp_path / name, transform))
    np.testing.assert_array_equal(data.continuous, ref.continuous)
    np.testing.assert_array_equal(data.labels, ref.labels)


@pytest.mark.parametrize("value", ["inf", "-inf", "1e39", "-1e39", "1e400", "nan", "NaN"])
def test_non_finite_or_overflowing_values_name_line_and_column(tmp_path, value):
  rows = _rows()
  rows[3][0] = value
  with pytest.raises(ValueError, match=rf"train\.csv: line 5, column 'Elevation': expected "
                                       rf"a finite number \(\|x\| <= 3\.4e\+38, float32\), "
                                       rf"got '{value}'"):
    ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))


@pytest.mark.parametrize("edit,message", [
    (lambda r: r.__setitem__(2, r[2][:-3]), r"line 4: too few fields \(expected 56\)"),
    (lambda r: r[2].append("9"), r"line 4: too many fields \(expected 56\)"),
    (lambda r: r[2].__setitem__(5, '"7'), r"line 4: row spans several lines \(a stray or "
                                           r"unbalanced quote joined them\)"),
])
def test_field_count_and_stray_quote_name_the_line(tmp_path, edit, message):
  rows = _rows()
  edit(rows)
  rows[4][0] = '2"0'  # closes the stray quote of the third case
  with pytest.raises(ValueError, match=rf"train\.csv: {message}"):
    ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))


def test_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
  path = _kaggle_text(tmp_path / "train.csv", lambda t: t.replace("\n", "\n\n", 2))
  assert len(ct.load_covertype(path)) == 6
  rows = _rows()
  rows[1][-1] = "8"
  path = _write_kaggle(tmp_path / "bad.csv", rows)
  path.write_text(path.read_text().replace("\n", "\n\n", 1))
  with pytest.raises(ValueError, match=r"bad\.csv: line 4, column 'Cover_Type': unknown "
                                       r"label '8'"):
    ct.load_covertype(path)


def test_empty_and_header_only_files(tmp_path):
  empty = tmp_path / "empty.csv"
  empty.write_text("")
  with pytest.raises(ValueError, match=r"empty\.csv: empty file, expected a Cover Type CSV"):
    ct.load_covertype(empty)
  header_only = _kaggle_text(tmp_path / "train.csv", lambda t: t.splitlines()[0] + "\n")
  with pytest.raises(ValueError, match=r"train\.csv: no data rows after the header"):
    ct.load_covertype(header_only)


def test_non_utf8_names_file_and_line(tmp_path):
  path = _write_kaggle(tmp_path / "train.csv", _rows())
  lines = path.read_bytes().split(b"\n")
  lines[2] = lines[2].replace(b"2010", b"20\xe910", 1)  # a latin-1 é in line 3
  path.write_bytes(b"\n".join(lines))
  with pytest.raises(ValueError, match=r"train\.csv: line 3: bytes that are not valid utf-8: "
                                       r"invalid continuation byte at byte \d+ of the line"):
    ct.load_covertype(path)


def test_truncated_and_fake_gzip_name_the_file(tmp_path):
  whole = gzip.compress(("\n".join(",".join(r) for r in _rows(400)) + "\n").encode())
  cut = tmp_path / "covtype.data.gz"
  cut.write_bytes(whole[: len(whole) // 2])
  with pytest.raises(ValueError, match=r"covtype\.data\.gz: truncated or corrupt gzip file "
                                       r"\(Compressed file ended before the end-of-stream"):
    ct.load_covertype(cut)
  fake = tmp_path / "plain.data.gz"
  fake.write_text("1,2,3\n")
  with pytest.raises(ValueError, match=r"plain\.data\.gz: truncated or corrupt gzip file "
                                       r"\(Not a gzipped file"):
    ct.load_covertype(fake)


def test_duplicate_id_names_both_lines(tmp_path):
  path = _kaggle_text(tmp_path / "train.csv", lambda t: t.replace("\n4,", "\n2,", 1))
  with pytest.raises(ValueError, match=r"train\.csv: line 5: duplicate Id '2' \(first on "
                                       r"line 3\)"):
    ct.load_covertype(path)


def test_stray_quote_swallowing_the_rest_is_an_error_naming_its_line(tmp_path):
  rows = _rows(3000)
  rows[0][5] = '"7'
  path = tmp_path / "covtype.data"
  path.write_text("\n".join(",".join(r) for r in rows) + "\n")
  with pytest.raises(ValueError, match=r"covtype\.data: line 1: field larger than field "
                                       r"limit \(131072\)"):
    ct.load_covertype(path)
