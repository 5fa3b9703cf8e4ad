"""JADER loader and synthetic generator."""

import pathlib
import unicodedata

import numpy as np
import pytest

from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader

DEMO_H = "識別番号,報告回数,性別,年齢,体重,身長,報告年度・四半期,状況,報告の種類,報告者の資格,E2B"
DRUG_H = ("識別番号,報告回数,医薬品連番,医薬品の関与,医薬品（一般名）,医薬品（販売名）,投与経路,"
          "投与開始日,投与終了日,投与量,投与単位,分割投与回数,使用理由,医薬品の処置,"
          "再投与による再発の有無,リスク区分等")
REAC_H = "識別番号,報告回数,有害事象連番,有害事象,転帰,有害事象の発現日"
HIST_H = "識別番号,報告回数,患者情報連番,原疾患等"


def _write(folder: pathlib.Path, name: str, lines, encoding="cp932"):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def _hand_release(folder: pathlib.Path, encoding="cp932", drug_header=DRUG_H):
  """Two cases; A has a superseded report 1. Includes variants and malformed rows."""
  _write(folder, "demo2024.csv", [DEMO_H, "A1,1,男性,60歳代,,,2020年第1四半期,完了報告,自発報告,医師,",
                                  "A1,2,男性,60歳代,,,2020年第2四半期,完了報告,自発報告,医師,",
                                  "B2,1,女性,70歳代,,,2021年第1四半期,完了報告,自発報告,薬剤師,"],
         encoding)
  _write(folder, "drug2024.csv", [
      drug_header,
      "A1,1,1,被疑薬,旧薬,,経口,,,,,,,,,",                      # superseded report
      "A1,2,1,被疑薬,ｱﾑﾛｼﾞﾋﾟﾝ ,,経口,,,,,,,,,",               # half-width + space
      "A1,2,2,併用薬,アトルバスタチン,,経口,,,,,,,,,",
      "B2,1,1,被疑薬,アムロジピン,,経口,,,,,,,,,",
      "B2,1,2,被疑薬,ＡＢＣ－１,,経口,,,,,,,,,",                # full-width ASCII
      "B2,1,3,相互作用,ワルファリン,,経口,,,,,,,,,",
      "B2,1,4,被疑薬,アムロジピン,,経口,,,,,,,,,,,,,余分",      # too many fields
      "B2,1,5,被疑薬",                                          # too few fields: no name
      "C3,1,1,被疑薬,アムロジピン,,経口,,,,,,,,,",              # not in demo
      "B2,x,1,被疑薬,アムロジピン,,経口,,,,,,,,,",              # bad 報告回数
      ",1,1,被疑薬,アムロジピン,,経口,,,,,,,,,",                # empty 識別番号
  ], encoding)
  _write(folder, "reac2024.csv", [REAC_H, "A1,1,1,古い事象,回復,", "A1,2,1,末梢性浮腫,回復,",
                                  "B2,1,1,末梢性浮腫,軽快,", "B2,1,2,  ,軽快,"], encoding)
  _write(folder, "hist2024.csv", [HIST_H, "A1,2,1,高血圧", "B2,1,1,高血圧"], encoding)
  return folder


@pytest.fixture(scope="session")
def small_release(tmp_path_factory):
  out = tmp_path_factory.mktemp("jader_small")
  info = synthetic_jader.write_release(out, num_cases=3000, seed=3, chunk_cases=1000)
  return out, info


@pytest.fixture(scope="session")
def small_cases(small_release):
  return jader.load_cases(small_release[0])


# ---------------------------------------------------------------- loader


def test_hand_release_latest_report_variants_and_skips(tmp_path):
  cases = jader.load_cases(_hand_release(tmp_path / "r"))
  assert list(cases.ids) == ["A1", "B2"]
  assert list(cases.report_numbers) == [2, 1]
  a = set(cases.elements(0))
  assert a == {"drug:アムロジピン", "drug:アトルバスタチン", "reac:末梢性浮腫", "hist:高血圧"}
  b = set(cases.elements(1))
  assert b == {"drug:アムロジピン", "drug:ABC-1", "drug:ワルファリン", "reac:末梢性浮腫",
               "hist:高血圧"}
  # Same element from a half-width spelling and a full-width one: one vocabulary entry.
  assert cases.vocab.count("drug:アムロジピン") == 1
  s = cases.skipped
  assert s["drug2024.csv: malformed row, too many fields (expected 16)"] == 1
  assert s["drug2024.csv: malformed row, too few fields (expected 16)"] == 1
  assert s["drug2024.csv: 識別番号 not in the demo file"] == 1
  assert s["drug2024.csv: 報告回数 not an integer in 0..2147483647"] == 1
  assert s["drug2024.csv: empty 識別番号 or one with a control character"] == 1
  assert s["drug2024.csv: superseded by a later 報告回数 (expected)"] == 1
  assert s["reac2024.csv: superseded by a later 報告回数 (expected)"] == 1
  assert s["reac2024.csv: empty 有害事象"] == 1


def test_suspected_only(tmp_path):
  cases = jader.load_cases(_hand_release(tmp_path / "r"), suspected_only=True)
  drugs = [sorted(e for e in cases.elements(i) if e.startswith("drug:")) for i in range(2)]
  assert drugs == [["drug:アムロジピン"], ["drug:ABC-1", "drug:アムロジピン"]]
  assert cases.skipped["drug2024.csv: not 被疑薬 (suspected_only)"] == 2


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_hand_release_matches_cp932(tmp_path, encoding):
  ref = jader.load_cases(_hand_release(tmp_path / "cp"))
  other = jader.load_cases(_hand_release(tmp_path / "u", encoding=encoding))
  assert jader.detect_encoding(tmp_path / "u" / "drug2024.csv") == encoding
  assert jader.detect_encoding(tmp_path / "cp" / "drug2024.csv") == "cp932"
  assert [set(ref.elements(i)) for i in range(2)] == [set(other.elements(i)) for i in range(2)]


def test_half_width_parentheses_header_matches(tmp_path):
  header = DRUG_H.replace("医薬品（一般名）", "医薬品(一般名)")
  cases = jader.load_cases(_hand_release(tmp_path / "r", drug_header=header))
  assert "drug:アトルバスタチン" in cases.elements(0)


def test_missing_column_is_a_clear_error(tmp_path):
  header = DRUG_H.replace("医薬品（一般名）", "医薬品名")
  with pytest.raises(jader.JaderFormatError, match=r"drug2024\.csv: missing column '医薬品（一般名）'"):
    jader.load_cases(_hand_release(tmp_path / "r", drug_header=header))


def test_missing_file_and_unknown_encoding(tmp_path):
  folder = _hand_release(tmp_path / "r")
  (folder / "hist2024.csv").unlink()
  with pytest.raises(jader.JaderFormatError, match=r"no hist\*\.csv"):
    jader.load_cases(folder)
  bad = tmp_path / "bad.csv"
  bad.write_bytes(b"\x81\xff\xfe\x80" * 10)
  with pytest.raises(jader.JaderFormatError, match="unknown encoding"):
    jader.detect_encoding(bad)


# ---------------------------------------------------------------- generator


def test_generated_release_layout_and_latent_classes(small_release, small_cases):
  folder, info = small_release
  assert info["encoding"] == "cp932"
  for kind, cols in [("demo", synthetic_jader.DEMO_COLUMNS), ("drug", synthetic_jader.DRUG_COLUMNS),
                     ("reac", synthetic_jader.REAC_COLUMNS), ("hist", synthetic_jader.HIST_COLUMNS)]:
    header = pathlib.Path(info["paths"][kind]).read_bytes().decode("cp932").split("\r\n")[0]
    assert header.split(",") == cols
  assert len(small_cases) == 3000
  assert small_cases.latent_class is not None and (small_cases.latent_class >= 0).all()
  assert small_cases.skipped.get("drug202401.csv: superseded by a later 報告回数 (expected)", 0) > 0
  assert not any(k.startswith("drug") and "malformed" in k for k in small_cases.skipped)
  # Variants are folded: no half-width katakana or padding survives loading.
  for v in small_cases.vocab:
    assert v == unicodedata.normalize("NFKC", v).strip()
  kinds = {v.split(":")[0] for v in small_cases.vocab}
  assert kinds == {"drug", "reac", "hist"}
  vocab = synthetic_jader.build_vocabulary(0)
  assert len(vocab.drugs) + len(vocab.tail_events) + len(vocab.tail_hist) > 2500


def test_generator_utf8_sig_same_content(tmp_path):
  a = synthetic_jader.write_release(tmp_path / "a", 200, seed=5)
  b = synthetic_jader.write_release(tmp_path / "b", 200, seed=5, encoding="utf-8-sig")
  ca = jader.load_cases(tmp_path / "a")
  cb = jader.load_cases(tmp_path / "b")
  assert a["rows"] == b["rows"]
  assert jader.detect_encoding(b["paths"]["reac"]) == "utf-8-sig"
  assert ca.vocab == cb.vocab and np.array_equal(ca.indices, cb.indices)
