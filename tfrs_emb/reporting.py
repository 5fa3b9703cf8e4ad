"""Plain-text / markdown tables and metrics.json writing shared by every trainer."""

import json
import math
import pathlib
from typing import Any, Mapping, Sequence


def _cell(value: Any, digits: int) -> str:
  if isinstance(value, float):
    if math.isnan(value):
      return "nan"
    return f"{value:.{digits}f}"
  return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   digits: int = 4) -> str:
  """Renders rows (dicts) as a GitHub markdown table with the given column order."""
  lines = ["| " + " | ".join(columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
  for row in rows:
    lines.append("| " + " | ".join(_cell(row.get(c, ""), digits) for c in columns) + " |")
  return "\n".join(lines)


def write_json(path: "str | pathlib.Path", payload: Mapping[str, Any]) -> pathlib.Path:
  """Writes payload as indented UTF-8 JSON, creating parent folders."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=float) + "\n",
                  encoding="utf-8")
  return path
