"""Figures that show Japanese text: a bundled CJK font and pyplot-free Figure objects.

The font is IPAexGothic, shipped by the PyPI package ``matplotlib-fontja`` (in the
``plots`` extra). It is read from its file and never by importing ``matplotlib_fontja``,
whose import switches matplotlib's global font. Figures are ``matplotlib.figure.Figure``
objects (no pyplot state, no backend switch, no rcParams), and ``save_figure`` gives every
text of a figure the CJK font, keeping each text's size, weight and style. Use::

  fig = new_figure(9, 6)
  ax = fig.add_subplot()
  ...  # tag names, titles, legends in any script
  save_figure(fig, out / "plot.png")
"""

import importlib.util
import pathlib

from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

FONT_PACKAGE = "matplotlib_fontja"
FONT_FILE = "fonts/ipaexg.ttf"


def cjk_font_path() -> pathlib.Path:
  """The TrueType file of the bundled CJK font (Japanese, Latin and digits).

  Raises:
    ImportError: ``matplotlib-fontja`` is not installed.
    FileNotFoundError: the package does not hold the font file.
  """
  spec = importlib.util.find_spec(FONT_PACKAGE)  # finds, does not import (see above)
  if spec is None or not spec.submodule_search_locations:
    raise ImportError(f"figures with Japanese text need the font package matplotlib-fontja: "
                      f"pip install matplotlib-fontja (or tfrs-emb[plots])")
  path = pathlib.Path(list(spec.submodule_search_locations)[0]) / FONT_FILE
  if not path.is_file():
    raise FileNotFoundError(f"{path}: matplotlib-fontja installed without its font file")
  return path


def cjk_font(size: "float | None" = None) -> FontProperties:
  """A new FontProperties of the CJK font (per text: ``ax.set_title(t, fontproperties=…)``)."""
  return FontProperties(fname=str(cjk_font_path()), size=size)


def new_figure(width: float = 8.0, height: float = 6.0) -> Figure:
  """A Figure of ``width`` × ``height`` inches, laid out tightly when drawn."""
  return Figure(figsize=(width, height), layout="tight")


def apply_cjk_font(fig: Figure) -> Figure:
  """Sets the CJK font on every text of ``fig`` (titles, labels, ticks, legends, notes)."""
  path = str(cjk_font_path())
  for text in fig.findobj(Text):
    font = text.get_fontproperties().copy()
    font.set_file(path)
    text.set_fontproperties(font)
  return fig


def save_figure(fig: Figure, path: "str | pathlib.Path", dpi: int = 120) -> pathlib.Path:
  """Applies the CJK font to ``fig`` and writes it (format from the suffix, e.g. PNG)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  apply_cjk_font(fig).savefig(path, dpi=dpi)
  return path
