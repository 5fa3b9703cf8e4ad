"""Plain-text / markdown tables with readable numbers (``715,651``, ``0.5749``)."""

import math
from typing import Any, Mapping, Sequence


def format_number(value: Any, digits: int = 4) -> str:
  """Integers (and integral floats of 1,000 or more) with thousands separators; other
  floats with ``digits`` decimals; anything else as ``str``."""
  if isinstance(value, bool) or value is None:
    return "" if value is None else str(value)
  if isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu"):
    return f"{int(value):,d}"
  if isinstance(value, float) or (hasattr(value, "dtype") and value.dtype.kind == "f"):
    value = float(value)
    if math.isnan(value):
      return "nan"
    if abs(value) >= 1000:
      return f"{value:,.0f}"
    return f"{value:.{digits}f}"
  return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   digits: int = 4) -> str:
  """Renders rows (dicts) as a GitHub markdown table with the given column order."""
  lines = ["| " + " | ".join(columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
  for row in rows:
    lines.append("| " + " | ".join(format_number(row.get(c, ""), digits) for c in columns)
                 + " |")
  return "\n".join(lines)
