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

Bad input: a missing file or column, or an undecodable file, raises ``JaderFormatError``
naming the file and what was expected. Malformed rows (wrong field count, empty
識別番号, non-integer 報告回数, empty element name, unknown case) are skipped, counted in
``skipped`` and printed (``verbose``).
"""

import codecs
import dataclasses
import pathlib
import unicodedata
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

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
  for enc in ("utf-8", "cp932"):
    try:
      codecs.getincrementaldecoder(enc)().decode(head, final=len(head) < probe_bytes)
      return enc
    except UnicodeDecodeError:
      continue
  raise JaderFormatError(f"{path}: unknown encoding; the first {len(head)} bytes decode "
                         "as neither cp932 (Shift_JIS, PMDA's encoding) nor UTF-8")


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


def _read_chunks(path: pathlib.Path, wanted: Sequence[str], chunk_rows: int,
                 skipped: Dict[str, int]):
  """Yields DataFrames with the canonical ``wanted`` columns (str), counting bad lines."""
  encoding = detect_encoding(path)
  try:
    header = pd.read_csv(path, encoding=encoding, nrows=0).columns.tolist()
  except UnicodeDecodeError as e:
    raise JaderFormatError(f"{path}: header does not decode as {encoding}: {e}") from e
  except pd.errors.EmptyDataError as e:
    raise JaderFormatError(f"{path}: empty file (expected a header row)") from e
  mapping = _match_columns(path, header, wanted)
  rename = {v: k for k, v in mapping.items()}
  # All columns are parsed: pandas detects rows with too many fields only without
  # usecols. A row with too few fields reads its missing trailing fields as "" (a missing
  # element name is then counted as empty by the caller).
  reader = pd.read_csv(path, encoding=encoding, dtype=object, keep_default_na=False,
                       chunksize=chunk_rows, on_bad_lines="warn")
  cols = list(mapping.values())
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", pd.errors.ParserWarning)
    try:
      for chunk in reader:
        bad = sum(str(w.message).count("Skipping line") for w in caught)
        if bad:
          key = f"{path.name}: malformed row (too many fields)"
          skipped[key] = skipped.get(key, 0) + bad
        caught.clear()
        yield chunk[cols].rename(columns=rename)
      bad = sum(str(w.message).count("Skipping line") for w in caught)
      if bad:
        key = f"{path.name}: malformed row (too many fields)"
        skipped[key] = skipped.get(key, 0) + bad
    except UnicodeDecodeError as e:
      raise JaderFormatError(f"{path}: bytes that are not valid {encoding} "
                             f"(detected from the file's start): {e}") from e
    except pd.errors.ParserError as e:
      raise JaderFormatError(f"{path}: CSV parse error: {e}") from e


def _count(skipped: Dict[str, int], key: str, n: int):
  if n:
    skipped[key] = skipped.get(key, 0) + int(n)


def _parse_int(text: str) -> int:
  try:
    value = float(text)
  except ValueError:
    return -1
  return int(value) if value == int(value) and value >= 0 else -1


def _clean_keys(chunk: pd.DataFrame, fname: str, skipped: Dict[str, int]):
  """Parses 識別番号 / 報告回数 of a chunk via their distinct values (hash, not per row).

  Returns:
    (uniq_ids: stripped distinct 識別番号 [u], id_codes: int [rows] into uniq_ids,
     rep: int64 [rows] 報告回数 (-1 when not an integer), valid: bool [rows]).
  """
  id_codes, uniq = pd.factorize(chunk[ID_COL], use_na_sentinel=False)
  uniq_ids = np.array([str(u).strip() for u in np.asarray(uniq, dtype=object)], dtype=object)
  rep_codes, rep_uniq = pd.factorize(chunk[REPORT_COL], use_na_sentinel=False)
  rep = np.array([_parse_int(str(u).strip()) for u in rep_uniq], np.int64)[rep_codes]
  empty_id = (uniq_ids == "")[id_codes] if len(uniq_ids) else np.zeros(0, bool)
  bad_rep = (rep < 0) & ~empty_id
  _count(skipped, f"{fname}: empty 識別番号", empty_id.sum())
  _count(skipped, f"{fname}: 報告回数 not an integer", bad_rep.sum())
  return uniq_ids, id_codes, rep, ~(empty_id | bad_rep)


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
  """
  ids: np.ndarray
  report_numbers: np.ndarray
  vocab: List[str]
  indptr: np.ndarray
  indices: np.ndarray
  latent_class: Optional[np.ndarray] = None
  latent_class_names: Optional[List[str]] = None
  skipped: Dict[str, int] = dataclasses.field(default_factory=dict)

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
      lines.append(f"  skipped {n:,d} rows: {reason}")
    return "\n".join(lines)


def load_cases(release_dir: "str | pathlib.Path", suspected_only: bool = False,
               chunk_rows: int = 500_000, verbose: bool = True,
               kinds: Sequence[str] = ("drug", "reac", "hist")) -> JaderCases:
  """Loads a JADER release directory into one element set per case.

  Args:
    release_dir: folder with demo*.csv, drug*.csv, reac*.csv, hist*.csv.
    suspected_only: keep only drugs whose 医薬品の関与 is 被疑薬 (suspected).
    chunk_rows: rows per streamed chunk (bounds memory).
    verbose: print the summary and every skip count.
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
  skipped: Dict[str, int] = {}

  # Pass 1: the latest 報告回数 of every 識別番号 from the demo file(s).
  id_parts, rep_parts = [], []
  for path in files["demo"]:
    for chunk in _read_chunks(path, [ID_COL, REPORT_COL], chunk_rows, skipped):
      uniq_ids, id_codes, rep, valid = _clean_keys(chunk, path.name, skipped)
      id_parts.append(uniq_ids[id_codes[valid]])
      rep_parts.append(rep[valid])
  demo = pd.DataFrame({"id": np.concatenate(id_parts) if id_parts else np.array([], object),
                       "rep": np.concatenate(rep_parts) if rep_parts else np.array([], int)})
  latest = demo.groupby("id", sort=False)["rep"].max()
  case_index = pd.Index(latest.index)
  latest_rep = latest.to_numpy().astype(np.int64)
  del demo, id_parts, rep_parts

  # Pass 2: element rows of the latest report of each case.
  vocab: Dict[str, int] = {}
  case_parts, elem_parts = [], []
  for kind in kinds:
    wanted = [ID_COL, REPORT_COL, ELEMENT_COLUMNS[kind]]
    if kind == "drug":
      wanted.append(ROLE_COL)
    for path in files[kind]:
      for chunk in _read_chunks(path, wanted, chunk_rows, skipped):
        uniq_ids, id_codes, rep, valid = _clean_keys(chunk, path.name, skipped)
        inverse, uniq = pd.factorize(chunk[ELEMENT_COLUMNS[kind]], use_na_sentinel=False)
        uniq = np.asarray(uniq, dtype=object)
        norm = np.array([nfkc(u) for u in uniq], dtype=object)
        empty = (norm == "")[inverse] & valid
        _count(skipped, f"{path.name}: empty {ELEMENT_COLUMNS[kind]}", empty.sum())
        valid &= ~empty
        case = case_index.get_indexer(uniq_ids)[id_codes]
        unknown = (case < 0) & valid
        _count(skipped, f"{path.name}: 識別番号 not in the demo file", unknown.sum())
        valid &= ~unknown
        stale = valid & (rep != latest_rep[np.maximum(case, 0)])
        _count(skipped, f"{path.name}: superseded by a later 報告回数 (expected)", stale.sum())
        valid &= ~stale
        if kind == "drug" and suspected_only:
          role = chunk[ROLE_COL].map(nfkc).to_numpy(dtype=object)
          concomitant = valid & (role != SUSPECTED)
          _count(skipped, f"{path.name}: not 被疑薬 (suspected_only)", concomitant.sum())
          valid &= ~concomitant
        elem_of_uniq = np.array([vocab.setdefault(f"{kind}:{n}", len(vocab)) if n else -1
                                 for n in norm], dtype=np.int64)
        case_parts.append(case[valid].astype(np.int64))
        elem_parts.append(elem_of_uniq[inverse[valid]])

  num_cases = len(case_index)
  vocab_list = list(vocab)
  case_arr = np.concatenate(case_parts) if case_parts else np.zeros(0, np.int64)
  elem_arr = np.concatenate(elem_parts) if elem_parts else np.zeros(0, np.int64)
  del case_parts, elem_parts
  key = np.sort(case_arr * max(len(vocab_list), 1) + elem_arr)
  key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
  dup = len(case_arr) - len(key)
  _count(skipped, "duplicate element within a case (kept once)", dup)
  del case_arr, elem_arr
  case_of = key // max(len(vocab_list), 1)
  indices = (key % max(len(vocab_list), 1)).astype(np.int32)
  indptr = np.zeros(num_cases + 1, np.int64)
  np.cumsum(np.bincount(case_of, minlength=num_cases), out=indptr[1:])

  latent, latent_names = None, None
  side = release_dir / LATENT_FILE
  if side.exists():
    lat = pd.read_csv(side, encoding=detect_encoding(side), dtype=str, keep_default_na=False)
    cols = _match_columns(side, lat.columns.tolist(), [ID_COL, "primary_class"])
    pos = case_index.get_indexer(lat[cols[ID_COL]].str.strip())
    cls = pd.to_numeric(lat[cols["primary_class"]], errors="coerce").fillna(-1).astype(int)
    latent = np.full(num_cases, -1, np.int64)
    latent[pos[pos >= 0]] = cls.to_numpy()[pos >= 0]
    if "primary_class_name" in lat.columns:
      pairs = dict(zip(cls.to_numpy(), lat["primary_class_name"]))
      latent_names = [pairs.get(c, "") for c in range(max(pairs, default=-1) + 1)]

  cases = JaderCases(ids=case_index.to_numpy(dtype=object), report_numbers=latest_rep,
                     vocab=vocab_list, indptr=indptr, indices=indices, latent_class=latent,
                     latent_class_names=latent_names, skipped=skipped)
  if verbose:
    print(f"JADER {release_dir}: {cases.summary()}")
  return cases
