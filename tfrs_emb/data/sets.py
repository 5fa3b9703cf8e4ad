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
UTF-8; element names are NFKC-normalised and stripped. Within a set, elements keep the
order of the order column (``long``) or of the line; a repeated element is kept once.
Sets left with fewer than 2 elements are skipped, sets longer than ``max_len`` keep their
last ``max_len`` elements, and both are counted in ``SetCorpus.skipped``.
"""

import dataclasses
import gzip
import io
import pathlib
import unicodedata
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

FORMATS = ("baskets", "long")
# A "set" this large almost always means a wrong --set_column (e.g. a constant column).
MAX_SET_ELEMENTS = 10_000


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
  """
  vocab: List[str]
  indptr: np.ndarray
  indices: np.ndarray
  set_ids: List[str]
  ordered: bool = False
  skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  source: str = ""

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


def _read_text(path: pathlib.Path) -> str:
  """The whole file as text (gunzipped when .gz); clear errors for non-UTF-8 or empty."""
  if not path.is_file():
    raise SetFormatError(f"{path}: no such file")
  raw = path.read_bytes()
  if path.suffix == ".gz":
    try:
      raw = gzip.decompress(raw)
    except OSError as e:
      raise SetFormatError(f"{path}: not a valid gzip file ({e})") from None
  try:
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise SetFormatError(f"{path}: line {line}: not UTF-8 (byte 0x{raw[e.start]:02x}); "
                         "convert the file to UTF-8") from None
  if not text.strip():
    raise SetFormatError(f"{path}: the file is empty (expected one set per line or a "
                         "header row and rows)")
  return text


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
  text = _read_text(path)
  lines = text.splitlines()
  set_codes, elements = [], []
  skipped: Dict[str, int] = {}
  blank_items = 0
  for i, line in enumerate(lines):
    for item in line.split(delimiter):
      item = _norm(item)
      if item:
        set_codes.append(i)
        elements.append(item)
      elif line.strip():
        blank_items += 1
  if blank_items:
    skipped["empty element between delimiters"] = blank_items
  names = [str(i + 1) for i in range(len(lines))]
  return _from_pairs(path, np.asarray(set_codes, np.int64), names,
                     np.asarray(elements, dtype=object), False, max_len, skipped, "line")


def _read_table(path: pathlib.Path) -> pd.DataFrame:
  suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
  if suffixes and suffixes[-1] == ".parquet":
    if not path.is_file():
      raise SetFormatError(f"{path}: no such file")
    try:
      return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a bad file
      raise SetFormatError(f"{path}: not a readable Parquet file ({e})") from None
  text = _read_text(path)
  sep = "\t" if suffixes and suffixes[-1] in (".tsv", ".tab") else ","
  try:
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
  except pd.errors.ParserError as e:
    raise SetFormatError(f"{path}: not a {'TSV' if sep == chr(9) else 'CSV'} table ({e})") \
        from None


def _load_long(path: pathlib.Path, set_column: str, element_column: str,
               order_column: Optional[str], max_len: Optional[int]) -> SetCorpus:
  table = _read_table(path)
  for role, col in (("--set_column", set_column), ("--element_column", element_column),
                    ("--order_column", order_column)):
    if col and col not in table.columns:
      raise SetFormatError(f"{path}: missing column {col!r} ({role}); the file has "
                           f"{', '.join(map(repr, table.columns))}")
  if not len(table):
    raise SetFormatError(f"{path}: the file has a header but no rows")
  skipped: Dict[str, int] = {}
  sets = table[set_column].astype(str).map(_norm).to_numpy(dtype=object)
  elems = table[element_column].astype(str).map(_norm).to_numpy(dtype=object)
  valid = (sets != "") & (elems != "")
  for col, vals in ((set_column, sets), (element_column, elems)):
    if (vals == "").any():
      skipped[f"rows with an empty {col}"] = int((vals == "").sum())
  order = np.arange(len(table))
  if order_column:
    key = pd.to_numeric(table[order_column], errors="coerce")
    if key.isna().any():   # not all numbers: ISO dates and times sort as text
      key = table[order_column].astype(str)
    order = np.asarray(pd.Series(key).rank(method="first").to_numpy(), np.float64)
  rows = np.nonzero(valid)[0]
  rows = rows[np.argsort(order[rows], kind="stable")]
  set_codes, names = pd.factorize(pd.Series(sets[rows], dtype=object), sort=False)
  return _from_pairs(path, set_codes.astype(np.int64), list(names), elems[rows],
                     bool(order_column), max_len, skipped, f"set ({set_column})")


def load_sets(path: "str | pathlib.Path", format: str = "baskets",  # pylint: disable=redefined-builtin
              set_column: str = "set", element_column: str = "element",
              order_column: Optional[str] = None, delimiter: str = ",",
              max_len: Optional[int] = None) -> SetCorpus:
  """Loads a set file (see the module docstring for the formats).

  Args:
    path: CSV / TSV / Parquet (``long``) or text (``baskets``) file, optionally ``.gz``.
    format: "baskets" or "long".
    set_column, element_column: ``long`` columns holding the set id and the element.
    order_column: optional ``long`` column ordering a set's elements (numbers or text).
    delimiter: ``baskets`` element separator.
    max_len: sets longer than this keep their last ``max_len`` elements (None: no cap).

  Returns:
    SetCorpus.

  Raises:
    SetFormatError: missing file or column, empty or non-UTF-8 file, a set with more than
      MAX_SET_ELEMENTS elements, or no set of ≥ 2 elements at all.
  """
  path = pathlib.Path(path)
  if format not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
  if format == "baskets":
    if not delimiter:
      raise ValueError("delimiter must be a non-empty string")
    corpus = _load_baskets(path, delimiter, max_len)
  else:
    corpus = _load_long(path, set_column, element_column, order_column, max_len)
  if not len(corpus):
    raise SetFormatError(f"{path}: no set with at least 2 elements "
                         f"(skipped: {corpus.skipped})")
  return corpus


def load_element_labels(path: "str | pathlib.Path", vocab: Sequence[str],
                        skipped: Optional[Dict[str, int]] = None) -> List[frozenset]:
  """Label set of every vocabulary element from a CSV with header ``element,label``.

  An element may have several rows (several labels). Rows naming an element outside
  ``vocab`` are counted in ``skipped`` (when given).

  Returns:
    frozenset of labels per vocabulary entry (empty = unlabelled).

  Raises:
    SetFormatError: missing file or column, empty or non-UTF-8 file.
  """
  path = pathlib.Path(path)
  table = _read_table(path)
  missing = [c for c in ("element", "label") if c not in table.columns]
  if missing:
    raise SetFormatError(f"{path}: missing column {missing[0]!r}; an element-label file "
                         f"needs the header element,label (has "
                         f"{', '.join(map(repr, table.columns))})")
  pos = {v: i for i, v in enumerate(vocab)}
  labels: List[set] = [set() for _ in vocab]
  unknown = 0
  for element, label in zip(table["element"].astype(str).map(_norm),
                            table["label"].astype(str).map(_norm)):
    i = pos.get(element)
    if i is None or not label:
      unknown += 1
      continue
    labels[i].add(label)
  if skipped is not None and unknown:
    skipped[f"{path.name}: label rows for elements not in the vocabulary or empty"] = unknown
  return [frozenset(s) for s in labels]
