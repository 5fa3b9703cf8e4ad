"""Cover Type loader: both layouts, one-hot collapsing, clear errors, splits, scaling."""

import gzip

import numpy as np
import pytest

from tfrs_emb.data import covertype as ct


def _rows(n=6):
  """n synthetic rows: 54 feature fields + Cover_Type, as lists of strings."""
  rows = []
  for i in range(n):
    cont = [str(2000 + 10 * i), str(i * 30), str(5 + i), str(100 * i), str(-5 + i),
            str(500 + i), "200", "220", "140", str(1000 + i)]
    wild = ["0"] * 4
    wild[i % 4] = "1"
    soil = ["0"] * 40
    soil[(3 * i) % 40] = "1"
    rows.append(cont + wild + soil + [str(i % 7 + 1)])
  return rows


def _write_kaggle(path, rows):
  header = ["Id"] + list(ct.FEATURE_COLUMNS) + [ct.LABEL_COLUMN]
  lines = [",".join(header)] + [",".join([str(i + 1)] + r) for i, r in enumerate(rows)]
  path.write_text("\n".join(lines) + "\n")
  return path


def test_kaggle_layout(tmp_path):
  data = ct.load_covertype(_write_kaggle(tmp_path / "train.csv", _rows()))
  assert data.layout == "kaggle"
  assert data.continuous.shape == (6, 10) and data.continuous.dtype == np.float32
  np.testing.assert_array_equal(data.categorical[:, 0], [0, 1, 2, 3, 0, 1])
  np.testing.assert_array_equal(data.categorical[:, 1], [0, 3, 6, 9, 12, 15])
  np.testing.assert_array_equal(data.labels, [0, 1, 2, 3, 4, 5])
  assert data.continuous[2, 0] == 2020.0
  # The one-hot round trip gives back the CSV's 54 fields.
  fields = data.as_csv_fields()
  assert fields["Soil_Type4"].tolist() == [0, 1, 0, 0, 0, 0]
  assert fields["Elevation"].dtype == np.float32


def test_uci_layout_gz_matches_kaggle(tmp_path):
  rows = _rows()
  uci = tmp_path / "covtype.data.gz"
  with gzip.open(uci, "wt") as f:
    f.write("\n".join(",".join(r) for r in rows) + "\n")
  a = ct.load_covertype(uci)
  b = ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))
  assert a.layout == "uci"
  np.testing.assert_array_equal(a.continuous, b.continuous)
  np.testing.assert_array_equal(a.categorical, b.categorical)
  np.testing.assert_array_equal(a.labels, b.labels)


def test_uci_wrong_column_count(tmp_path):
  p = tmp_path / "covtype.data"
  p.write_text("\n".join(",".join(r[:50]) for r in _rows()) + "\n")
  with pytest.raises(ValueError, match="55 columns"):
    ct.load_covertype(p)


def test_missing_column(tmp_path):
  p = _write_kaggle(tmp_path / "train.csv", _rows())
  text = p.read_text().replace("Slope,", "Slop,", 1)
  p.write_text(text)
  with pytest.raises(ValueError, match="missing column.*Slope"):
    ct.load_covertype(p)


@pytest.mark.parametrize("value", ["abc", ""])
def test_non_numeric_value_names_line_and_column(tmp_path, value):
  rows = _rows()
  rows[3][2] = value  # Slope of the 4th data row → file line 5 (header is line 1)
  with pytest.raises(ValueError, match=r"line 5, column 'Slope'"):
    ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))


def test_unknown_label(tmp_path):
  rows = _rows()
  rows[1][-1] = "8"
  with pytest.raises(ValueError, match=r"line 3, column 'Cover_Type': unknown label '8'"):
    ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))


def test_one_hot_group_must_have_exactly_one(tmp_path):
  rows = _rows()
  rows[0][10:14] = ["0", "0", "0", "0"]
  with pytest.raises(ValueError, match=r"line 2: Wilderness_Area1..4 must hold exactly one 1, found 0"):
    ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))
  rows = _rows()
  rows[2][14] = "1"  # row 2 already has its soil one at index 6
  with pytest.raises(ValueError, match=r"line 4: Soil_Type1..40 .* found 2"):
    ct.load_covertype(_write_kaggle(tmp_path / "train.csv", rows))


def test_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"Cover Type file not found: .*nope\.csv"):
    ct.load_covertype(tmp_path / "nope.csv")


def test_real_kaggle_file(shared_data):
  data = ct.load_covertype(shared_data / "covertype" / "train.csv")
  assert len(data) == 15120
  assert np.bincount(data.labels).tolist() == [2160] * 7
  assert data.categorical[:, 0].max() <= 3 and data.categorical[:, 1].max() <= 39
