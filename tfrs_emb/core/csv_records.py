"""What the csv module sees in a CSV file: the record layout pandas does not report.

pandas pads a short row with empty fields, takes a longer row's first field as the index
(shifting every column) and joins the lines a stray quote spans into one field, all
silently. ``scan`` counts the fields of every record and notes its file line, so a
loader can name each malformed row and why::

  with open(path, encoding=enc, newline="") as f:
    records = csv_records.scan(f)
  for mask, reason in records.malformed():   # bool [records], "too few fields (expected 4)"
    ...
  # read with pandas: names=[...] * records.max_fields, header=0 (or None),
  # skip_blank_lines=False, index_col=False: one pandas row per record, same order.
"""

import array
import contextlib
import csv
import dataclasses
import gzip
import pathlib
import zlib
from typing import IO, List, Optional, Tuple

import numpy as np


@dataclasses.dataclass
class Records:
  """Per-record layout of a CSV file.

  Attributes:
    width: fields of the first row (the header's, or the first record's without one).
    max_fields: the most fields of any row.
    lines: int64 [records], file line where each record starts.
    spans: int64 [records], physical lines each record covers (> 1: quoted line breaks).
    fields: int64 [records], fields per record (0 = blank line).
    extra_filled: bool [records], a field past ``width`` is not empty (empty ones are a
      delimiter ending the row, accepted).
  """
  width: int
  max_fields: int
  lines: np.ndarray
  spans: np.ndarray
  fields: np.ndarray
  extra_filled: np.ndarray

  def malformed(self) -> List[Tuple[np.ndarray, str]]:
    """(mask over records, reason) for each kind of malformed record, disjoint, in order:
    spanning several lines (its field count is then meaningless), blank line, too few
    fields, too many fields: a non-empty one past the header's width, or more fields
    than most rows have (empty extra fields are accepted only as the file's layout, a
    delimiter ending most rows; on a few rows they shift the columns, e.g. a comma
    inside a name)."""
    w = self.width
    filled = self.fields > 0
    usual = int(np.bincount(self.fields[filled]).argmax()) if filled.any() else w
    limit = max(w, usual)
    kinds = [(self.spans > 1, "row spans several lines (a stray or unbalanced quote "
                              "joined them)"),
             (self.fields == 0, "blank line"),
             (filled & (self.fields < w), f"too few fields (expected {w})"),
             (self.extra_filled | (self.fields > limit),
              f"too many fields (expected {w}" + ("" if limit == w else
                                                  f", or {limit} ending in an empty field")
              + ")")]
    taken = np.zeros(len(self.fields), bool)
    out = []
    for mask, reason in kinds:
      out.append((mask & ~taken, reason))
      taken |= mask
    return out


def scan(text_file: IO[str], header: bool = True, delimiter: str = ",") -> Optional[Records]:
  """Scans an open text file (``newline=""``; fields split at ``delimiter``, RFC 4180
  quoting); None when it has no row at all.

  Raises:
    UnicodeDecodeError: the file does not decode (see ``undecodable_line``).
    ValueError: "line N: ..." for a field beyond the csv module's size limit.
  """
  reader = csv.reader(text_file, delimiter=delimiter)
  lines, fields, extra = array.array("q"), array.array("q"), []
  line = 1
  try:
    first = next(reader, None)
    if first is None:
      return None
    width = len(first)
    if not header:
      lines.append(1)
      fields.append(width)
    line = reader.line_num + 1
    for row in reader:
      lines.append(line)
      fields.append(len(row))
      if len(row) > width and any(row[width:]):
        extra.append(len(fields) - 1)
      line = reader.line_num + 1
  except csv.Error as e:
    raise ValueError(f"line {line}: {e} (a field this long is usually a stray quote "
                     "joining many lines)") from None
  lines = np.frombuffer(lines, np.int64).copy() if lines else np.zeros(0, np.int64)
  spans = np.diff(np.r_[lines, reader.line_num + 1]) if len(lines) else lines
  fields = np.frombuffer(fields, np.int64).copy() if fields else np.zeros(0, np.int64)
  extra_filled = np.zeros(len(fields), bool)
  extra_filled[extra] = True
  return Records(width, int(fields.max(initial=width)), lines, spans, fields, extra_filled)


def undecodable_line(binary_file: IO[bytes], encoding: str) -> str:
  """"line N: ..." where a file first fails to decode (text readers decode in blocks, so
  their position does not say)."""
  for number, raw in enumerate(binary_file, 1):
    try:
      raw.decode(encoding)
    except UnicodeDecodeError as e:
      return f"line {number}: bytes that are not valid {encoding}: {e.reason} at byte " \
             f"{e.start} of the line"
  return f"bytes that are not valid {encoding}"


def open_file(path: pathlib.Path, mode: str):
  """``open`` / ``gzip.open`` by suffix; text modes are UTF-8 with ``newline=""``, a
  leading byte-order mark dropped (spreadsheet exports write one; kept, it would be part
  of the first column's name)."""
  text = {"encoding": "utf-8-sig", "newline": ""} if "t" in mode else {}
  return (gzip.open if path.suffix == ".gz" else open)(path, mode, **text)


@contextlib.contextmanager
def file_errors(path: pathlib.Path, hint: str):
  """Turns errors of reading ``path`` inside the block into ValueErrors naming the file:
  undecodable bytes (with their line and ``hint``), ``scan``'s "line N: ..." errors,
  truncated or corrupt gzip."""
  try:
    yield
  except UnicodeDecodeError:
    with open_file(path, "rb") as f:
      where = undecodable_line(f, "utf-8")
    raise ValueError(f"{path}: {where} ({hint})") from None
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from None
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise ValueError(f"{path}: truncated or corrupt gzip file ({e})") from None
