"""Any set data (baskets, sessions, reports) as a CSR corpus of element ids.

Usage::

  from tfrs_emb.data import sets
  corpus = sets.load_sets("groceries.csv", format="baskets", delimiter=",")
  corpus = sets.load_sets("events.parquet", format="long", set_column="session",
                          element_column="item", order_column="time", max_len=64)
  corpus.vocab, corpus.indptr, corpus.indices   # set i = indices[indptr[i]:indptr[i+1]]
  labels = sets.load_element_labels("labels.csv", corpus.vocab)   # frozenset per element

Formats: ``baskets`` = one set per line, elements separated by ``delimiter``, no header
(line number = set id); ``long`` = one (set, element[, order]) row per element, CSV / TSV
(by extension, header row) or Parquet. ``.gz`` files are read transparently. Text must be
UTF-8; element names are NFKC-normalised and stripped (``SetCorpus.aliases`` keeps each
other spelling the file used, for serving). Within a set, elements keep the
order of the order column (``long``) or of the line; a repeated element is kept once.
Sets left with fewer than 2 elements are skipped, sets longer than ``max_len`` keep their
last ``max_len`` elements, and both are counted in ``SetCorpus.skipped``.

Documented behaviours of text files:

- CSV quoting (RFC 4180, as pandas and R write): ``"rolls,buns"`` in a basket is one
  element; a quoted field running over a line end (a stray or unbalanced quote) is an
  error naming its line, as is a ``long`` / label row with too few or too many fields.
- Only ``\\n``, ``\\r\\n`` and ``\\r`` end a record: U+2028, U+0085, form feed, RS and other
  Unicode line separators inside a name stay part of the name.
- A byte order mark inside the file (e.g. files concatenated with ``cat``) is removed
  and counted in ``skipped`` with the line of the first one.
- ``order_column``: numbers, or ISO-8601 dates / datetimes (compared in UTC, so mixed
  offsets such as ``Z`` and ``+09:00`` order right; no offset counts as UTC). The kind
  most values have wins; a value of the other kind, or a missing one, is an error naming
  the line (row for Parquet) and the column's kind, or with ``skip_bad_order`` a counted
  skip of that row. Text that is neither (``10.5.2024``, ``1/19/2024``) is an error
  naming the column and a sample value: it would order wrongly as text.
- A missing set id or element (empty cell, Parquet null / NaN) skips the row, counted.
- Likely misreadings are named: a Parquet file read as baskets, a basket file none of
  whose lines split on ``delimiter`` (the delimiter its lines hold instead), and a
  ``long`` file with over ``FEW_SETS_ROWS_PER_SET`` rows per set (``SetCorpus.hints``:
  is ``--set_column`` right?).
- A Parquet float column of whole numbers (integer ids with nulls) reads as integers:
  ``10.0`` is the element ``"10"``.
"""

import csv
import dataclasses
import gzip
import io
import pathlib
import unicodedata
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tfrs_emb.core import csv_records

FORMATS = ("baskets", "long")
# A "set" this large almost always means a wrong --set_column (e.g. a constant column).
MAX_SET_ELEMENTS = 10_000
# More rows per set than this on average hints at a wrong --set_column (a store, a date).
FEW_SETS_ROWS_PER_SET = 100
# Delimiters a basket file whose lines never split on --delimiter may use instead.
OTHER_DELIMITERS = {"\t": "a tab (--delimiter=$'\\t' in bash)", ";": "';'", "|": "'|'",
                    " ": "a space"}
BOM = "\ufeff"


class SetFormatError(ValueError):
  """A set file that cannot be read as asked (names the file, and line or column)."""


@dataclasses.dataclass
class SetCorpus:
  """Sets as CSR element ids.

  Attributes:
    vocab: element strings, indexed by element id (first-appearance order).
    indptr: int64 [num_sets + 1]; set i is ``indices[indptr[i]:indptr[i+1]]``.
    indices: int32 [total] element ids, unique within a set, in set order.
    set_ids: str [num_sets] set id (``long``) or 1-based line number (``baskets``).
    ordered: True when the order within a set comes from an order column.
    skipped: what was not loaded or was cut, by reason → count.
    source: the file read (or a description of generated data).
    aliases: element spelling as written in the file → its element, for every spelling
      that differs from the element (NFKC form or surrounding whitespace), so a model
      can resolve queries spelled like the user's data.
    hints: what looks wrong in how the file was read (e.g. very few sets for its rows).
  """
  vocab: List[str]
  indptr: np.ndarray
  indices: np.ndarray
  set_ids: List[str]
  ordered: bool = False
  skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  source: str = ""
  aliases: Dict[str, str] = dataclasses.field(default_factory=dict)
  hints: List[str] = dataclasses.field(default_factory=list)

  def __len__(self) -> int:
    return len(self.set_ids)

  @property
  def lengths(self) -> np.ndarray:
    """int [num_sets]: elements per set."""
    return np.diff(self.indptr)

  def summary(self) -> str:
    lines = [f"{self.source}: {len(self):,d} sets, {len(self.indices):,d} set-elements, "
             f"vocabulary {len(self.vocab):,d}"]
    lines += [f"  {reason}: {n:,d}" for reason, n in sorted(self.skipped.items())]
    lines += [f"  note: {hint}" for hint in self.hints]
    return "\n".join(lines)


def token_lists(indptr: np.ndarray, indices: np.ndarray, vocab: Sequence[str],
                seed: int = 0) -> List[List[str]]:
  """Each set as a list of element strings in a random (seeded) order (gensim's input)."""
  indptr = np.asarray(indptr, np.int64)
  rng = np.random.default_rng(seed)
  voc = np.asarray(vocab, dtype=object)
  perm = np.asarray(indices)[np.argsort(np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
                                        + rng.random(len(indices)), kind="stable")]
  toks = voc[perm].tolist()
  ptr = indptr.tolist()
  return [toks[ptr[i]:ptr[i + 1]] for i in range(len(ptr) - 1)]


def _norm(text: str) -> str:
  return unicodedata.normalize("NFKC", text).strip()


def _read_text(path: pathlib.Path, skipped: Dict[str, int]) -> str:
  """The whole file as text (gunzipped when .gz), byte order marks inside it removed and
  counted in ``skipped``; clear errors for a bad gzip, non-UTF-8 or an empty file."""
  if not path.is_file():
    raise SetFormatError(f"{path}: no such file")
  raw = path.read_bytes()
  if path.suffix == ".gz":
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise SetFormatError(f"{path}: truncated or not a valid gzip file ({e})") from None
  if raw.startswith(b"PAR1"):
    rename = "" if path.suffix == ".parquet" else " and name the file .parquet"
    raise SetFormatError(f"{path}: this is a Parquet file, not text: Parquet is read as a "
                         "long table, pass --format=long (with --set_column and "
                         f"--element_column){rename}")
  try:
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise SetFormatError(f"{path}: line {line}: not UTF-8 (byte 0x{raw[e.start]:02x}); "
                         "convert the file to UTF-8") from None
  if not text.strip():
    raise SetFormatError(f"{path}: the file is empty (expected one set per line or a "
                         "header row and rows)")
  boms = text.count(BOM)
  if boms:
    line = _line_of(text, text.index(BOM))
    skipped[f"byte order marks inside the file, removed (first on line {line})"] = boms
    text = text.replace(BOM, "")
  return text


def _line_of(text: str, offset: int) -> int:
  """File line (1-based; only \\n, \\r\\n and \\r end a line) of a character offset."""
  return len(io.StringIO(text[:offset + 1], newline=None).readlines())


def _rows(path: pathlib.Path, text: str, delimiter: str):
  """(file line, fields) of every CSV record of ``text`` (RFC 4180 quoting); a record
  running over a line end is an error naming its line."""
  reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
  line = 1
  try:
    for row in reader:
      if reader.line_num > line:
        raise SetFormatError(
            f"{path}: line {line}: a quoted field runs over {reader.line_num - line + 1} "
            "lines (a stray or unbalanced quote?); quote a field that holds the delimiter "
            'as "a,b" and double quotes inside it ("")')
      yield line, row
      line = reader.line_num + 1
  except csv.Error as e:
    raise SetFormatError(f"{path}: line {line}: {e} (a stray quote joining many "
                         "lines?)") from None


def _check_set_size(path, lengths: np.ndarray, names: Sequence[str], what: str):
  big = np.nonzero(lengths > MAX_SET_ELEMENTS)[0]
  if len(big):
    i = big[0]
    raise SetFormatError(
        f"{path}: {what} {names[i]!r} has {lengths[i]:,d} elements (limit "
        f"{MAX_SET_ELEMENTS:,d}); is the set column right?")


def _from_pairs(path, set_codes: np.ndarray, set_names: Sequence[str], elements: np.ndarray,
                ordered: bool, max_len: Optional[int], skipped: Dict[str, int],
                what: str) -> SetCorpus:
  """CSR corpus from (set code, element string) pairs already in set order."""
  lengths = np.bincount(set_codes, minlength=len(set_names))
  _check_set_size(path, lengths, set_names, what)
  elem_codes, vocab = pd.factorize(pd.Series(elements, dtype=object), sort=False)
  frame = pd.DataFrame({"s": set_codes, "e": elem_codes})
  dup = frame.duplicated()
  if dup.any():
    skipped["repeated element within a set (kept once)"] = int(dup.sum())
  frame = frame[~dup.to_numpy()]
  frame = frame.iloc[np.argsort(frame["s"].to_numpy(), kind="stable")]
  s = frame["s"].to_numpy()
  e = frame["e"].to_numpy()
  lengths = np.bincount(s, minlength=len(set_names))
  start = np.concatenate([[0], np.cumsum(lengths)])
  pos_from_end = lengths[s] - (np.arange(len(s)) - start[s])   # 1 = last of its set
  if max_len is not None:
    long_sets = int((lengths > max_len).sum())
    if long_sets:
      skipped[f"sets longer than max_len={max_len} (kept their last {max_len})"] = long_sets
      keep = pos_from_end <= max_len
      s, e = s[keep], e[keep]
      lengths = np.minimum(lengths, max_len)
  short = lengths < 2
  for n, label in ((0, "empty sets"), (1, "one-element sets (no context)")):
    if (lengths == n).any():
      skipped[f"{label}, skipped"] = int((lengths == n).sum())
  keep_sets = np.nonzero(~short)[0]
  keep = ~short[s]
  s, e = s[keep], e[keep]
  new_code = np.full(len(set_names), -1, np.int64)
  new_code[keep_sets] = np.arange(len(keep_sets))
  indptr = np.concatenate([[0], np.cumsum(np.bincount(new_code[s], minlength=len(keep_sets)))])
  # Elements only in skipped sets leave the vocabulary.
  used, indices = np.unique(e, return_inverse=True)   # codes are first-appearance order
  return SetCorpus(vocab=[str(vocab[u]) for u in used], indptr=indptr.astype(np.int64),
                   indices=indices.astype(np.int32), set_ids=[str(set_names[i]) for i in keep_sets],
                   ordered=ordered, skipped=skipped, source=str(path))


def corpus_from_csr(vocab: Sequence[str], indptr: np.ndarray, indices: np.ndarray,
                    set_ids: Sequence[str], source: str, max_len: Optional[int] = None,
                    ordered: bool = False) -> SetCorpus:
  """A SetCorpus from CSR sets already in memory, with the same repeat / length / skip
  rules as the files (e.g. the cases of a JADER release)."""
  indptr = np.asarray(indptr, np.int64)
  codes = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
  elements = np.asarray(vocab, dtype=object)[np.asarray(indices, np.int64)]
  return _from_pairs(source, codes, list(set_ids), elements, ordered, max_len, {}, "set")


def _load_baskets(path: pathlib.Path, delimiter: str, max_len: Optional[int]) -> SetCorpus:
  skipped: Dict[str, int] = {}
  text = _read_text(path, skipped)
  set_codes, elements, names = [], [], []
  aliases: Dict[str, str] = {}
  blank_items = 0
  widest = 0
  for code, (line, row) in enumerate(_rows(path, text, delimiter)):
    names.append(str(line))
    widest = max(widest, len(row))
    items = [_norm(item) for item in row]
    for raw, item in zip(row, items):
      if item:
        set_codes.append(code)
        elements.append(item)
        if raw != item:
          aliases[raw] = item
    if any(items):
      blank_items += items.count("")
  if blank_items:
    skipped["empty element between delimiters"] = blank_items
  corpus = _from_pairs(path, np.asarray(set_codes, np.int64), names,
                       np.asarray(elements, dtype=object), False, max_len, skipped, "line")
  corpus.aliases = aliases
  if widest <= 1:
    corpus.hints.append(_delimiter_hint(text, delimiter))
  return corpus


def _delimiter_hint(text: str, delimiter: str) -> str:
  """Why no line split on ``delimiter``, naming the other delimiter most lines hold."""
  lines = text.splitlines()[:1000]
  seen = {d: sum(d in line for line in lines) for d in OTHER_DELIMITERS if d != delimiter}
  likely = max(seen, key=seen.get)
  if seen[likely] * 2 < len(lines):
    return f"no line splits on --delimiter={delimiter!r}: every line is one element"
  return (f"no line splits on --delimiter={delimiter!r}, but {seen[likely]:,d} of the "
          f"first {len(lines):,d} lines hold {OTHER_DELIMITERS[likely]}: is --delimiter "
          "right?")


@dataclasses.dataclass
class _Table:
  """A read ``long`` or label table: string cells (Parquet: its values) and where each
  row is: file line (CSV, header = line 1) or 1-based row (Parquet)."""
  frame: pd.DataFrame
  places: np.ndarray
  unit: str

  def where(self, row: int) -> str:
    return f"{self.unit} {int(self.places[row])}"


def _read_table(path: pathlib.Path, skipped: Dict[str, int]) -> _Table:
  suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
  if suffixes and suffixes[-1] == ".parquet":
    if not path.is_file():
      raise SetFormatError(f"{path}: no such file")
    try:
      frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a bad file
      raise SetFormatError(f"{path}: not a readable Parquet file ({e})") from None
    return _Table(frame, np.arange(1, len(frame) + 1), "row")
  text = _read_text(path, skipped)
  sep = "\t" if suffixes and suffixes[-1] in (".tsv", ".tab") else ","
  try:
    records = csv_records.scan(io.StringIO(text, newline=""), header=True, delimiter=sep)
  except ValueError as e:
    raise SetFormatError(f"{path}: {e}") from None
  for mask, reason in records.malformed():
    if reason != "blank line" and mask.any():
      raise SetFormatError(f"{path}: line {records.lines[np.argmax(mask)]}: {reason}")
  # One pandas row per record (blank ones too), so row i is at records.lines[i].
  frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                      skip_blank_lines=False, index_col=False)
  blank = records.fields == 0
  return _Table(frame[~blank].reset_index(drop=True), records.lines[~blank], "line")


def _text(column: pd.Series) -> np.ndarray:
  """object [rows]: the cells as written (str); "" for empty and missing (null, NaN).
  A float column whose values are all whole numbers is an integer id column that nulls
  made float (Parquet / Arrow): its values read "10", not "10.0"."""
  missing = column.isna().to_numpy()
  if pd.api.types.is_float_dtype(column):
    values = column.to_numpy(np.float64)[~missing]
    # Only exact integers (|x| < 2^53) convert; larger doubles are not ids written as ints.
    if (np.isfinite(values).all() and (values == np.round(values)).all()
        and (np.abs(values) < 2.0 ** 53).all()):
      column = column.astype("Int64")
  return column.astype(object).where(~missing, "").astype(str).to_numpy(dtype=object)


def _normalized(text: np.ndarray) -> np.ndarray:
  """object [rows]: ``_text`` cells NFKC-normalised and stripped."""
  return np.asarray([_norm(t) for t in text], dtype=object)


def _cells(column: pd.Series) -> np.ndarray:
  """object [rows]: NFKC-normalised stripped strings; "" for empty and missing cells."""
  return _normalized(_text(column))


def _aliases(raw: np.ndarray, cells: np.ndarray) -> Dict[str, str]:
  """Spelling as written (``_text``) → normalised cell (``_normalized``), where they
  differ."""
  differ = (raw != cells) & (cells != "")
  return dict(zip(raw[differ].tolist(), cells[differ].tolist()))


def _utc_seconds(when: pd.Series) -> np.ndarray:
  """float64 [rows]: seconds since 1970-01-01 UTC of tz-aware datetimes (NaT → nan)."""
  return ((when - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64)


def _order_key(path, table: "_Table", name: str, column: pd.Series):
  """(sort key float64 [rows], bad bool [rows], why each bad value is bad) of an order
  column: numbers, or ISO-8601 datetimes compared in UTC. Text values are numbers when
  every one is (or when numbers outnumber datetimes), else datetimes; the outvoted kind
  is a bad value. Text that is neither is an error naming the column and a sample."""
  if pd.api.types.is_datetime64_any_dtype(column):   # naive (taken as UTC) or zoned
    seconds = _utc_seconds(pd.to_datetime(column, utc=True))
    bad = np.isnan(seconds)
    return np.where(bad, 0.0, seconds), bad, "missing value"
  if pd.api.types.is_numeric_dtype(column):
    bad = column.isna().to_numpy()
    return np.where(bad, 0, column.to_numpy()).astype(np.float64), bad, "missing value"
  text = _cells(column)
  missing = text == ""
  numbers = pd.to_numeric(pd.Series(text).where(~missing), errors="coerce").to_numpy(np.float64)
  is_number = ~np.isnan(numbers)
  # Mixed offsets (Z, +09:00) compare in UTC; a value without an offset counts as UTC.
  when = pd.to_datetime(pd.Series(text).where(~missing & ~is_number), format="ISO8601",
                        utc=True, errors="coerce")
  seconds = _utc_seconds(when)
  is_time = ~np.isnan(seconds)
  if is_number.sum() >= is_time.sum() and is_number.any():
    return (np.nan_to_num(numbers), ~is_number,
            "missing value or not a number (the column's other values are numbers)")
  if is_time.any():
    return (np.nan_to_num(seconds), ~is_time, "missing value or not an ISO-8601 datetime "
            "(the column's other values are datetimes)")
  if missing.all():
    return np.zeros(len(text)), missing, "missing value"
  i = int(np.argmax(~missing))
  raise SetFormatError(
      f"{path}: --order_column {name!r}: its values are neither numbers nor ISO-8601 "
      f"datetimes (e.g. {text[i]!r} on {table.where(i)}), so they cannot be ordered; give "
      "numbers or YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM] (other date formats order wrongly as "
      "text)")


def _load_long(path: pathlib.Path, set_column: str, element_column: str,
               order_column: Optional[str], max_len: Optional[int],
               skip_bad_order: bool) -> SetCorpus:
  skipped: Dict[str, int] = {}
  table = _read_table(path, skipped)
  frame = table.frame
  for role, col in (("--set_column", set_column), ("--element_column", element_column),
                    ("--order_column", order_column)):
    if col and col not in frame.columns:
      raise SetFormatError(f"{path}: missing column {col!r} ({role}); the file has "
                           f"{', '.join(map(repr, frame.columns))}")
  if not len(frame):
    raise SetFormatError(f"{path}: the file has a header but no rows")
  sets = _cells(frame[set_column])
  raw_elems = _text(frame[element_column])   # as written: the export's aliases
  elems = _normalized(raw_elems)
  valid = (sets != "") & (elems != "")
  for col, vals in ((set_column, sets), (element_column, elems)):
    if (vals == "").any():
      skipped[f"rows with an empty {col}"] = int((vals == "").sum())
  rows = np.nonzero(valid)[0]
  if order_column:
    key, bad, why = _order_key(path, table, order_column, frame[order_column])
    bad = bad & valid
    if bad.any() and not skip_bad_order:
      i = int(np.argmax(bad))
      raise SetFormatError(
          f"{path}: {table.where(i)}: --order_column {order_column!r}: {why}, got "
          f"{frame[order_column].iloc[i]!r}; fix the value, or pass --skip_bad_order to "
          "skip such rows (counted)")
    if bad.any():
      skipped[f"rows with a bad {order_column} ({why}), skipped"] = int(bad.sum())
      rows = np.nonzero(valid & ~bad)[0]
    rows = rows[np.argsort(key[rows], kind="stable")]
  set_codes, names = pd.factorize(pd.Series(sets[rows], dtype=object), sort=False)
  corpus = _from_pairs(path, set_codes.astype(np.int64), list(names), elems[rows],
                       bool(order_column), max_len, skipped, f"set ({set_column})")
  corpus.aliases = _aliases(raw_elems, elems)
  if len(rows) >= FEW_SETS_ROWS_PER_SET * max(len(names), 1):
    corpus.hints.append(f"{len(rows):,d} rows fall in only {len(names):,d} set(s) of "
                        f"{set_column!r}: is --set_column right?")
  return corpus


def load_sets(path: "str | pathlib.Path", format: str = "baskets",  # pylint: disable=redefined-builtin
              set_column: str = "set", element_column: str = "element",
              order_column: Optional[str] = None, delimiter: str = ",",
              max_len: Optional[int] = None, skip_bad_order: bool = False) -> SetCorpus:
  """Loads a set file (see the module docstring for the formats and behaviours).

  Args:
    path: CSV / TSV / Parquet (``long``) or text (``baskets``) file, optionally ``.gz``.
    format: "baskets" or "long".
    set_column, element_column: ``long`` columns holding the set id and the element.
    order_column: optional ``long`` column ordering a set's elements (numbers or ISO-8601
      datetimes).
    delimiter: ``baskets`` element separator (one character; CSV quoting applies).
    max_len: sets longer than this keep their last ``max_len`` elements (None: no cap).
    skip_bad_order: skip (and count) rows whose order value is missing or, in a numeric
      order column, not a number, instead of raising.

  Returns:
    SetCorpus.

  Raises:
    SetFormatError: missing file or column, empty, truncated-gzip or non-UTF-8 file, an
      unbalanced quote or a row of the wrong width (line named), a bad order value (line
      named), order text that is neither numbers nor ISO-8601 datetimes (column and a
      sample named), a set with more than MAX_SET_ELEMENTS elements, or no set of >= 2
      elements at all.
    ValueError: an unknown format, a delimiter that is not one character, or an
      order_column with format="baskets".
  """
  path = pathlib.Path(path)
  if format not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
  if format == "baskets":
    if order_column:
      raise ValueError(f"--order_column={order_column} applies to --format=long only; a "
                       "basket keeps the order of its line")
    if len(delimiter) != 1:
      raise ValueError(f"--delimiter must be one character (CSV quoting), got {delimiter!r}")
    corpus = _load_baskets(path, delimiter, max_len)
  else:
    corpus = _load_long(path, set_column, element_column, order_column, max_len,
                        skip_bad_order)
  if not len(corpus):
    raise SetFormatError(f"{path}: no set with at least 2 elements "
                         f"(skipped: {corpus.skipped})"
                         + "".join(f"; {hint}" for hint in corpus.hints))
  return corpus


def check_min_count(indptr: np.ndarray, indices: np.ndarray, vocab_size: int,
                    min_count: int, source: str, hints: Sequence[str] = ()) -> None:
  """Raises SetFormatError unless some set keeps 2 elements that occur in at least
  ``min_count`` sets: otherwise a CBOW trained with that ``min_count`` has no
  (context, target) pair at all.

  Args:
    indptr: int [num_sets + 1], indices: int [total] CSR sets (the training sets).
    vocab_size: elements in the vocabulary. min_count: the CBOW's ``--min_count``.
    source: the data's name, for the message. hints: ``SetCorpus.hints``, appended to it.
  """
  indptr = np.asarray(indptr, np.int64)
  counts = np.bincount(np.asarray(indices, np.int64), minlength=vocab_size)
  kept = counts[indices] >= min_count
  set_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
  if (np.bincount(set_of[kept], minlength=len(indptr) - 1) >= 2).any():
    return
  raise SetFormatError(
      f"{source}: no set has 2 elements occurring in >= --min_count={min_count} sets "
      f"({int((counts >= min_count).sum())} of {vocab_size} elements reach it; the most "
      f"frequent occurs in {int(counts.max(initial=0))} of {len(indptr) - 1} sets); "
      "lower --min_count or give more sets" + "".join(f"; {hint}" for hint in hints))


def load_element_labels(path: "str | pathlib.Path", vocab: Sequence[str],
                        skipped: Optional[Dict[str, int]] = None) -> List[frozenset]:
  """Label set of every vocabulary element from a CSV with header ``element,label``.

  An element may have several rows (several labels). Rows naming an element outside
  ``vocab`` or with an empty label are counted in ``skipped`` (when given), as are byte
  order marks inside the file.

  Returns:
    frozenset of labels per vocabulary entry (empty = unlabelled).

  Raises:
    SetFormatError: missing file or column, empty or non-UTF-8 file, an unbalanced quote
      or a row of the wrong width (line named).
  """
  path = pathlib.Path(path)
  notes: Dict[str, int] = {}
  table = _read_table(path, notes)
  missing = [c for c in ("element", "label") if c not in table.frame.columns]
  if missing:
    raise SetFormatError(f"{path}: missing column {missing[0]!r}; an element-label file "
                         f"needs the header element,label (has "
                         f"{', '.join(map(repr, table.frame.columns))})")
  pos = {v: i for i, v in enumerate(vocab)}
  labels: List[set] = [set() for _ in vocab]
  unknown = 0
  for element, label in zip(_cells(table.frame["element"]), _cells(table.frame["label"])):
    i = pos.get(element)
    if i is None or not label:
      unknown += 1
      continue
    labels[i].add(label)
  if unknown:
    notes["label rows for elements not in the vocabulary or empty"] = unknown
  if skipped is not None:
    skipped.update((f"{path.name}: {reason}", n) for reason, n in notes.items())
  return [frozenset(s) for s in labels]
