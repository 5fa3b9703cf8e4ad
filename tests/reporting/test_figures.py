"""CJK figures: the bundled font has Japanese glyphs, every text gets it, no global state."""

import warnings

import matplotlib
import pytest
from matplotlib import ft2font

from tfrs_emb.reporting import figures


def test_font_file_covers_japanese():
  path = figures.cjk_font_path()
  charmap = ft2font.FT2Font(str(path)).get_charmap()
  for ch in "日本語のタグ登壇レポートGo":
    assert ord(ch) in charmap, ch
  assert figures.cjk_font(12).get_size() == 12


def test_saved_figure_uses_the_font_everywhere_without_global_changes(tmp_path):
  rc_before = dict(matplotlib.rcParams)
  fig = figures.new_figure(4, 3)
  ax = fig.add_subplot()
  ax.plot([0, 1], [0, 1], label="登壇レポート")
  ax.set_title("クラスタ", fontsize=15, fontweight="bold")
  ax.set_yticks([0, 1], ["初心者向け", "Go"])
  ax.legend()
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
    path = figures.save_figure(fig, tmp_path / "sub" / "plot.png")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  font_file = str(figures.cjk_font_path())
  for text in (ax.title, *ax.get_yticklabels(), *ax.get_legend().get_texts()):
    assert text.get_fontproperties().get_file() == font_file
  assert ax.title.get_fontsize() == 15 and ax.title.get_fontweight() == "bold"
  assert dict(matplotlib.rcParams) == rc_before


def test_missing_font_package_is_an_import_error(monkeypatch):
  monkeypatch.setattr(figures, "FONT_PACKAGE", "no_such_font_package_xyz")
  with pytest.raises(ImportError, match="pip install matplotlib-fontja"):
    figures.cjk_font_path()
