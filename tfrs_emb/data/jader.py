"""JADER (PMDA) release loader: four CSV files → one element set per case.

Usage::

  from tfrs_emb.data import jader
  cases = jader.load_cases("path/to/release", suspected_only=False)
  len(cases), cases.vocab[:3]           # cases, element strings ("drug:…", "reac:…", "hist:…")
  cases.elements(0)                      # element strings of case 0
  sets = cases.element_sets()            # list of frozenset of element ids (for rank_dice)
  cases.latent_class                     # int [num_cases] from latent_classes.csv, or None
  cases.skipped                          # {reason: rows} of everything not loaded

A release directory holds ``demo*.csv``, ``drug*.csv``, ``reac*.csv`` and ``hist*.csv``
(cp932 as PMDA ships them; UTF-8 with or without BOM also accepted, detected per file).
Columns are matched by NFKC-normalised name (full-width parentheses in the real headers).
A case is a 識別番号 at its latest 報告回数 (taken from the demo file): rows of earlier
reports are superseded. Element names are NFKC-normalised and stripped, then prefixed with
their kind. Files are streamed in chunks (``chunk_rows``), so memory is bounded by the
chunk plus the compact int32 result.

Bad input: a missing file or column, an empty or undecodable file, a quote never closed,
or a demo file without one usable row raises ``JaderFormatError`` naming the file (and
line) and what was expected. Malformed rows are skipped, counted by true reason in
``skipped`` (first file line of each in ``skipped_first_line``) and printed
(``log``): blank line, too few fields, a non-empty field past the header's width, a
row spanning several lines (a stray quote joined them; each lost line counted), empty
識別番号 or one with a control character, 報告回数 not an integer in 0..2^31-1 (nan, inf,
1e40), empty element name or one with a line break / tab / control character (never in
the vocabulary, so never in a TSV), 識別番号 not in the demo file, duplicate demo rows.
Empty fields past the header's width are accepted when most rows have them (a delimiter
ending every row); on fewer rows they are too many fields (a stray comma shifted them).
"""

import codecs
import dataclasses
import math
import pathlib
import re
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tfrs_emb.core import csv_records
from tfrs_emb.core.log import Log, no_log

KINDS = ("demo", "drug", "reac", "hist")
ID_COL = "識別番号"
REPORT_COL = "報告回数"
ROLE_COL = "医薬品の関与"
SUSPECTED = "被疑薬"
ELEMENT_COLUMNS = {"drug": "医薬品（一般名）", "reac": "有害事象", "hist": "原疾患等"}
LATENT_FILE = "latent_classes.csv"


class JaderFormatError(ValueError):
  """A JADER file is missing, undecodable or lacks an expected column."""


def nfkc(text: str) -> str:
  """NFKC-normalises and strips a name (folds half-/full-width variants)."""
  return unicodedata.normalize("NFKC", text).strip()


def detect_encoding(path: "str | pathlib.Path", probe_bytes: int = 1 << 20) -> str:
  """Returns "utf-8-sig", "utf-8" or "cp932" for a CSV file.

  Raises:
    JaderFormatError: the first ``probe_bytes`` decode as neither UTF-8 nor cp932.
  """
  with open(path, "rb") as f:
    head = f.read(probe_bytes)
  if head.startswith(codecs.BOM_UTF8):
    return "utf-8-sig"
  if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
    raise JaderFormatError(f"{path}: UTF-16 is not supported; expected cp932 (Shift_JIS) "
                           "or UTF-8")
  failed = 0   # where the encoding that decoded the most of the file failed
  for enc in ("utf-8", "cp932"):
    try:
      codecs.getincrementaldecoder(enc)().decode(head, final=len(head) < probe_bytes)
      return enc
    except UnicodeDecodeError as e:
      failed = max(failed, e.start)
  line = head[:failed].count(b"\n") + 1
  shown = " ".join(f"0x{b:02x}" for b in head[failed:failed + 2])
  raise JaderFormatError(f"{path}: line {line}: unknown encoding: bytes {shown} decode as "
                         "neither cp932 (Shift_JIS, PMDA's encoding) nor UTF-8 (in the "
                         f"first {len(head):,d} bytes, which decide the file's encoding)")


def _match_columns(path, header: Sequence[str], wanted: Sequence[str]) -> Dict[str, str]:
  """Maps each wanted column (canonical name) to the file's spelling, via NFKC."""
  found = {nfkc(h).replace(" ", ""): h for h in header}
  out = {}
  for w in wanted:
    key = nfkc(w).replace(" ", "")
    if key not in found:
      raise JaderFormatError(
          f"{path}: missing column {w!r} (matched after NFKC normalisation as {key!r}); "
          f"found columns: {list(header)}")
    out[w] = found[key]
  return out


def _find_files(release_dir: pathlib.Path, kind: str) -> List[pathlib.Path]:
  files = sorted(p for p in release_dir.iterdir()
                 if p.is_file() and p.name.lower().startswith(kind)
                 and p.suffix.lower() == ".csv")
  if not files:
    raise JaderFormatError(f"{release_dir}: no {kind}*.csv file (a JADER release has "
                           "demo*.csv, drug*.csv, reac*.csv and hist*.csv)")
  return files


# Control characters (line breaks, tabs, NUL, C1) and the Unicode line/paragraph
# separators: a name holding one would break the TSV files written from the vocabulary.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_REPORT = 2 ** 31 - 1


class _Skips:
  """Skipped rows by reason, and the file line of the first row of each reason."""

  def __init__(self):
    self.counts: Dict[str, int] = {}
    self.first_line: Dict[str, int] = {}

  def add(self, key: str, mask: np.ndarray, lines: np.ndarray, weight=None):
    """Counts the rows of ``mask`` (each ``weight`` physical rows when given)."""
    n = int(mask.sum() if weight is None else weight[mask].sum())
    if n:
      self.counts[key] = self.counts.get(key, 0) + n
      line = int(lines[np.argmax(mask)])
      self.first_line[key] = min(self.first_line.get(key, line), line)


def _scan(path: pathlib.Path, encoding: str) -> csv_records.Records:
  try:
    with open(path, encoding=encoding, newline="") as f:
      records = csv_records.scan(f)
  except UnicodeDecodeError:
    with open(path, "rb") as f:
      where = csv_records.undecodable_line(f, encoding)
    raise JaderFormatError(f"{path}: {where} (encoding detected from the file's "
                           "start)") from None
  except ValueError as e:
    raise JaderFormatError(f"{path}: {e}") from None
  if records is None:
    raise JaderFormatError(f"{path}: empty file (expected a header row)")
  return records


def _read_chunks(path: pathlib.Path, wanted: Sequence[str], chunk_rows: int,
                 skips: _Skips):
  """Yields (DataFrame with the canonical ``wanted`` columns (str), file line per row)
  for the well-formed records; malformed ones are counted in ``skips``.

  Malformed: see ``csv_records.Records.malformed``; each is counted per physical line
  (a stray quote that joined three lines loses three rows).
  """
  encoding = detect_encoding(path)
  rec = _scan(path, encoding)
  header = pd.read_csv(path, encoding=encoding, nrows=0).columns.tolist()
  mapping = _match_columns(path, header, wanted)
  # Names as wide as the longest record: pandas then never guesses an index column
  # from a longer row nor drops one, so its records align with the scan's.
  names = [f"column{i}" for i in range(rec.max_fields)]
  cols = [names[header.index(mapping[w])] for w in wanted]
  reader = pd.read_csv(path, encoding=encoding, dtype=object, keep_default_na=False,
                       header=0, names=names, usecols=cols, index_col=False,
                       skip_blank_lines=False, chunksize=chunk_rows)
  malformed = rec.malformed()
  start = 0
  try:
    for chunk in reader:
      part = slice(start, start + len(chunk))
      start += len(chunk)
      good = np.ones(len(chunk), bool)
      for mask, reason in malformed:
        skips.add(f"{path.name}: malformed row, {reason}", mask[part], rec.lines[part],
                  weight=rec.spans[part])
        good &= ~mask[part]
      yield (chunk.loc[good, cols].set_axis(list(wanted), axis=1),
             rec.lines[part][good])
  except pd.errors.ParserError as e:
    if "EOF inside string" in str(e):  # the scan's last record runs to the end of file
      raise JaderFormatError(f"{path}: line {rec.lines[-1]}: a field opened with a quote "
                             "is never closed (unbalanced '\"')") from None
    raise JaderFormatError(f"{path}: CSV parse error: {e}") from e
  if start != len(rec.lines):
    raise JaderFormatError(f"{path}: pandas read {start} records but the csv module "
                           f"{len(rec.lines)}; the file's quoting is ambiguous")


def _parse_int(text: str) -> int:
  """A non-negative integer below 2^31 (e.g. "2", "2.0"), or -1 (also for nan, inf)."""
  try:
    value = float(text)
  except ValueError:
    return -1
  if not math.isfinite(value) or value != int(value) or not 0 <= value <= _MAX_REPORT:
    return -1
  return int(value)


def _clean_keys(chunk: pd.DataFrame, lines: np.ndarray, fname: str, skips: _Skips):
  """Parses 識別番号 / 報告回数 of a chunk via their distinct values (hash, not per row).

  Returns:
    (uniq_ids: stripped distinct 識別番号 [u], id_codes: int [rows] into uniq_ids,
     rep: int64 [rows] 報告回数 (-1 when not an integer), valid: bool [rows]).
  """
  id_codes, uniq = pd.factorize(chunk[ID_COL], use_na_sentinel=False)
  uniq_ids = np.array([str(u).strip() for u in np.asarray(uniq, dtype=object)], dtype=object)
  rep_codes, rep_uniq = pd.factorize(chunk[REPORT_COL], use_na_sentinel=False)
  rep = np.array([_parse_int(str(u).strip()) for u in rep_uniq], np.int64)[rep_codes]
  bad_uniq = np.array([u == "" or bool(_CONTROL.search(u)) for u in uniq_ids], bool)
  bad_id = bad_uniq[id_codes] if len(uniq_ids) else np.zeros(0, bool)
  bad_rep = (rep < 0) & ~bad_id
  skips.add(f"{fname}: empty 識別番号 or one with a control character", bad_id, lines)
  skips.add(f"{fname}: 報告回数 not an integer in 0..{_MAX_REPORT}", bad_rep, lines)
  return uniq_ids, id_codes, rep, ~(bad_id | bad_rep)


@dataclasses.dataclass
class JaderCases:
  """Cases of a JADER release as a CSR matrix of element ids.

  Attributes:
    ids: str array [num_cases], 識別番号.
    report_numbers: int array [num_cases], the latest 報告回数 used.
    vocab: element strings (``kind:name``), indexed by element id.
    indptr: int64 [num_cases + 1]; case i's elements are ``indices[indptr[i]:indptr[i+1]]``.
    indices: int32 [num_elements_total], sorted unique element ids per case.
    latent_class: int [num_cases] primary latent class from ``latent_classes.csv``
      (-1 where unknown), or None when the release has no side file.
    latent_class_names: class names indexed by class id (when known).
    skipped: rows not loaded, by reason (file: reason → count).
    skipped_first_line: file line of the first row skipped for each reason.
  """
  ids: np.ndarray
  report_numbers: np.ndarray
  vocab: List[str]
  indptr: np.ndarray
  indices: np.ndarray
  latent_class: Optional[np.ndarray] = None
  latent_class_names: Optional[List[str]] = None
  skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  skipped_first_line: Dict[str, int] = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.ids)

  @property
  def lengths(self) -> np.ndarray:
    """int [num_cases]: number of elements per case."""
    return np.diff(self.indptr)

  def element_ids(self, i: int) -> np.ndarray:
    return self.indices[self.indptr[i]:self.indptr[i + 1]]

  def elements(self, i: int) -> List[str]:
    """Element strings of case i."""
    return [self.vocab[j] for j in self.element_ids(i)]

  def element_sets(self) -> List[frozenset]:
    """frozenset of element ids per case (the S(·) of rank_dice)."""
    ind = self.indices.tolist()
    ptr = self.indptr.tolist()
    return [frozenset(ind[ptr[i]:ptr[i + 1]]) for i in range(len(self.ids))]

  def summary(self) -> str:
    kinds = {}
    for v in self.vocab:
      k = v.split(":", 1)[0]
      kinds[k] = kinds.get(k, 0) + 1
    lines = [f"{len(self):,d} cases, {len(self.indices):,d} case-elements, vocabulary "
             f"{len(self.vocab):,d} ({', '.join(f'{k} {n:,d}' for k, n in kinds.items())})"]
    for reason, n in sorted(self.skipped.items()):
      line = self.skipped_first_line.get(reason)
      lines.append(f"  skipped {n:,d} rows: {reason}"
                   + (f" (first at line {line})" if line else ""))
    return "\n".join(lines)


def load_cases(release_dir: "str | pathlib.Path", suspected_only: bool = False,
               chunk_rows: int = 500_000,
               log: Log = no_log,
               kinds: Sequence[str] = ("drug", "reac", "hist")) -> JaderCases:
  """Loads a JADER release directory into one element set per case.

  Args:
    release_dir: folder with demo*.csv, drug*.csv, reac*.csv, hist*.csv.
    suspected_only: keep only drugs whose 医薬品の関与 is 被疑薬 (suspected).
    chunk_rows: rows per streamed chunk (bounds memory).
    log: called with the summary (skip counts included).
    kinds: element files to use (subset of drug, reac, hist).

  Returns:
    JaderCases (cases ordered by first appearance in the demo file).

  Raises:
    JaderFormatError: missing directory, file or column, or an undecodable file.
  """
  release_dir = pathlib.Path(release_dir)
  if not release_dir.is_dir():
    raise JaderFormatError(f"{release_dir}: not a directory (expected a JADER release "
                           "folder with demo*.csv, drug*.csv, reac*.csv, hist*.csv)")
  files = {k: _find_files(release_dir, k) for k in ("demo",) + tuple(kinds)}
  skips = _Skips()
  case_index, latest_rep = _latest_reports(files["demo"], chunk_rows, skips)
  elements = _ElementRows(case_index, latest_rep, suspected_only, skips)
  for kind in kinds:
    for path in files[kind]:
      elements.read(kind, path, chunk_rows)
  indptr, indices = elements.to_csr()
  latent, latent_names = _read_latent_classes(release_dir / LATENT_FILE, case_index, skips)
  cases = JaderCases(ids=case_index.to_numpy(dtype=object), report_numbers=latest_rep,
                     vocab=list(elements.vocab), indptr=indptr, indices=indices,
                     latent_class=latent, latent_class_names=latent_names,
                     skipped=skips.counts, skipped_first_line=skips.first_line)
  log(f"JADER {release_dir}: {cases.summary()}")
  return cases


def _latest_reports(demo_files: Sequence[pathlib.Path], chunk_rows: int, skips: _Skips
                    ) -> Tuple[pd.Index, np.ndarray]:
  """Pass 1: the latest 報告回数 of every 識別番号 of the demo file(s).

  Returns (case ids in order of first appearance, their latest 報告回数 int64 [cases]).
  Raises JaderFormatError when no row is usable.
  """
  id_parts, rep_parts, line_parts = [], [], []
  for path in demo_files:
    for chunk, lines in _read_chunks(path, [ID_COL, REPORT_COL], chunk_rows, skips):
      uniq_ids, id_codes, rep, valid = _clean_keys(chunk, lines, path.name, skips)
      id_parts.append(uniq_ids[id_codes[valid]])
      rep_parts.append(rep[valid])
      line_parts.append(lines[valid])
  demo = pd.DataFrame({"id": np.concatenate(id_parts) if id_parts else np.array([], object),
                       "rep": np.concatenate(rep_parts) if rep_parts else np.array([], int)})
  demo_names = ", ".join(p.name for p in demo_files)
  dup = demo.duplicated().to_numpy()
  if dup.any():
    skips.add(f"{demo_names}: duplicate 識別番号 + 報告回数 row (first kept)", dup,
              np.concatenate(line_parts))
  latest = demo.groupby("id", sort=False)["rep"].max()
  if latest.empty:
    raise JaderFormatError(
        f"{demo_names}: no usable data row (expected one row per report with 識別番号 and "
        f"報告回数); skipped: {skips.counts or 'nothing, the file has only its header'}")
  return pd.Index(latest.index), latest.to_numpy().astype(np.int64)


class _ElementRows:
  """Pass 2: the element rows of the latest report of each case, as (case, element id)
  pairs, and the element vocabulary (``kind:name`` → id, in order of first sight)."""

  def __init__(self, case_index: pd.Index, latest_rep: np.ndarray, suspected_only: bool,
               skips: _Skips):
    self.case_index = case_index
    self.latest_rep = latest_rep
    self.suspected_only = suspected_only
    self.skips = skips
    self.vocab: Dict[str, int] = {}
    self.case_parts: List[np.ndarray] = []
    self.elem_parts: List[np.ndarray] = []

  def read(self, kind: str, path: pathlib.Path, chunk_rows: int) -> None:
    """Adds the usable rows of one element file (``kind``: drug, reac or hist)."""
    column = ELEMENT_COLUMNS[kind]
    wanted = [ID_COL, REPORT_COL, column] + ([ROLE_COL] if kind == "drug" else [])
    for chunk, lines in _read_chunks(path, wanted, chunk_rows, self.skips):
      self._add_chunk(kind, column, path.name, chunk, lines)

  def _add_chunk(self, kind: str, column: str, fname: str, chunk: pd.DataFrame,
                 lines: np.ndarray) -> None:
    """Normalises a chunk's element names (via their distinct values), counts every
    skipped row by reason and keeps the rest."""
    uniq_ids, id_codes, rep, valid = _clean_keys(chunk, lines, fname, self.skips)
    inverse, uniq = pd.factorize(chunk[column], use_na_sentinel=False)
    norm = np.array([nfkc(u) for u in np.asarray(uniq, dtype=object)], dtype=object)
    empty_u = norm == ""
    control_u = np.array([bool(_CONTROL.search(n)) for n in norm], bool)
    case = self.case_index.get_indexer(uniq_ids)[id_codes]
    for reason, bad in (
        (f"empty {column}", empty_u[inverse]),
        (f"{column} contains a line break, tab or other control character",
         control_u[inverse]),
        ("識別番号 not in the demo file", case < 0),
        ("superseded by a later 報告回数 (expected)",
         rep != self.latest_rep[np.maximum(case, 0)]),
        ("not 被疑薬 (suspected_only)", self._concomitant(kind, chunk))):
      bad = bad & valid
      self.skips.add(f"{fname}: {reason}", bad, lines)
      valid &= ~bad
    elem_of_uniq = np.array([-1 if bad else self.vocab.setdefault(f"{kind}:{n}",
                                                                  len(self.vocab))
                             for n, bad in zip(norm, empty_u | control_u)], np.int64)
    self.case_parts.append(case[valid].astype(np.int64))
    self.elem_parts.append(elem_of_uniq[inverse[valid]])

  def _concomitant(self, kind: str, chunk: pd.DataFrame) -> np.ndarray:
    """bool [rows]: drug rows that are not 被疑薬, when only suspected drugs are kept."""
    if kind != "drug" or not self.suspected_only:
      return np.zeros(len(chunk), bool)
    return chunk[ROLE_COL].map(nfkc).to_numpy(dtype=object) != SUSPECTED

  def to_csr(self) -> Tuple[np.ndarray, np.ndarray]:
    """(indptr int64 [cases + 1], indices int32): sorted unique element ids per case;
    a repeated element of a case is counted as skipped and kept once."""
    num_cases, width = len(self.case_index), max(len(self.vocab), 1)
    case_arr = (np.concatenate(self.case_parts) if self.case_parts
                else np.zeros(0, np.int64))
    elem_arr = (np.concatenate(self.elem_parts) if self.elem_parts
                else np.zeros(0, np.int64))
    key = np.sort(case_arr * width + elem_arr)
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    dup = len(case_arr) - len(key)
    if dup:
      self.skips.counts["duplicate element within a case (kept once)"] = dup
    indptr = np.zeros(num_cases + 1, np.int64)
    np.cumsum(np.bincount(key // width, minlength=num_cases), out=indptr[1:])
    return indptr, (key % width).astype(np.int32)


def _read_latent_classes(side: pathlib.Path, case_index: pd.Index, skips: _Skips
                         ) -> Tuple[Optional[np.ndarray], Optional[List[str]]]:
  """The primary latent class per case (-1 where unknown) and the class names from the
  side file ``latent_classes.csv``; (None, None) when the release has none."""
  if not side.exists():
    return None, None
  try:
    lat = pd.read_csv(side, encoding=detect_encoding(side), dtype=str,
                      keep_default_na=False, index_col=False)
  except pd.errors.EmptyDataError:
    raise JaderFormatError(f"{side}: empty file (expected a header row)") from None
  except (pd.errors.ParserError, UnicodeDecodeError) as e:
    raise JaderFormatError(f"{side}: CSV parse error: {e}") from None
  num_cases = len(case_index)
  cols = _match_columns(side, lat.columns.tolist(), [ID_COL, "primary_class"])
  pos = case_index.get_indexer(lat[cols[ID_COL]].str.strip())
  # A class id beyond the case count cannot be real (and would size the name list).
  cls = np.array([_parse_int(v.strip()) for v in lat[cols["primary_class"]]], np.int64)
  cls[cls > num_cases] = -1
  skips.add(f"{LATENT_FILE}: primary_class not an integer in 0..{num_cases} (class "
            "unknown)", cls < 0, np.arange(len(cls)) + 2)
  latent = np.full(num_cases, -1, np.int64)
  latent[pos[pos >= 0]] = cls[pos >= 0]
  latent_names = None
  if "primary_class_name" in lat.columns:
    pairs = {c: n for c, n in zip(cls, lat["primary_class_name"]) if c >= 0}
    latent_names = [pairs.get(c, "") for c in range(max(pairs, default=-1) + 1)]
  return latent, latent_names
