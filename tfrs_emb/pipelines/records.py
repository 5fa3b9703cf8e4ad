"""Corpus records for the embedding pipeline: (id, input, position) from text or set files.

A record is ``Record(id, value, source, index)``: ``value`` is a text (str) or a set of
elements (tuple of str); ``source`` and ``index`` say where it came from (file and line,
Parquet row, or case position) and order duplicates.

Readers, one file at a time (so a Beam pipeline reads its files in parallel):

  for record, reason in read_text_file("posts.jsonl", id_field="id", text_field="text"):
    ...  # reason is None for a usable record, else why it is skipped (record None)

- JSON lines (``.jsonl`` / ``.json``): one object per line with ``id`` and ``text``.
- CSV (``.csv``, UTF-8, header row; ``.tsv`` tab-separated): columns ``id`` and ``text``.
- Parquet (``.parquet``): columns ``id`` and ``text``.

Set data is loaded in process through the project's loaders and handed on as records:
``jader_records(release_dir)`` (one record per case: 識別番号 → its ``kind:name``
elements) and ``set_records(path, format=...)`` (``tfrs_emb.data.sets``).

Bad input: a record without an id or text (missing, null, not a string or number, bad
JSON) or with an empty text is skipped and its reason returned (the pipeline counts them);
a missing file, a file of unknown type or a CSV / Parquet file without the id or text
column raises ``CorpusFormatError`` naming the file and what was expected.
"""

import csv
import json
import pathlib
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from tfrs_emb.core.log import Log, no_log
from tfrs_emb.data import jader
from tfrs_emb.data import sets

TEXT_FORMATS = ("jsonl", "csv", "tsv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv",
             ".parquet": "parquet"}
_PARQUET_BATCH_ROWS = 8192


class CorpusFormatError(ValueError):
  """A corpus file that cannot be read as asked (names the file and what was expected)."""


class Record(NamedTuple):
  """One input of the embedding model.

  Attributes:
    id: the record's id (str).
    value: a text (str) or a set's elements (tuple of str).
    source: the file or folder it came from.
    index: its line (JSON lines, CSV), row (Parquet) or position (sets), 1-based.
  """
  id: str
  value: Union[str, Tuple[str, ...]]
  source: str
  index: int


Read = Tuple[Optional[Record], Optional[str]]   # (record, None) or (None, skip reason)


def text_format(path: "str | pathlib.Path") -> str:
  """The text reader for ``path`` from its suffix (``.gz`` not supported)."""
  suffix = pathlib.Path(path).suffix.lower()
  if suffix not in _SUFFIXES:
    raise CorpusFormatError(f"{path}: unknown file type {suffix!r} (expected one of "
                            f"{', '.join(sorted(_SUFFIXES))})")
  return _SUFFIXES[suffix]


def _as_id(value) -> Optional[str]:
  if isinstance(value, bool) or value is None:
    return None
  if isinstance(value, (int, str)):
    text = str(value).strip()
    return text or None
  return None


def _checked(source: str, index: int, raw_id, raw_text) -> Read:
  """The record, or why it is skipped (no id, no text, empty text)."""
  rid = _as_id(raw_id)
  if rid is None:
    return None, f"{source}: record without an id (string or integer)"
  if not isinstance(raw_text, str):
    return None, f"{source}: record without a text (string)"
  if not raw_text.strip():
    return None, f"{source}: empty text"
  return Record(rid, raw_text, source, index), None


def _jsonl(path: pathlib.Path, id_field: str, text_field: str) -> Iterator[Read]:
  with open(path, encoding="utf-8", errors="strict") as f:
    for line_no, line in enumerate(f, 1):
      if not line.strip():
        yield None, f"{path.name}: blank line"
        continue
      try:
        obj = json.loads(line)
      except json.JSONDecodeError:
        yield None, f"{path.name}: line not a JSON object"
        continue
      if not isinstance(obj, dict):
        yield None, f"{path.name}: line not a JSON object"
        continue
      yield _checked(path.name, line_no, obj.get(id_field), obj.get(text_field))


def _missing_columns(path, header: Sequence[str], id_field: str, text_field: str):
  missing = [c for c in (id_field, text_field) if c not in header]
  if missing:
    raise CorpusFormatError(f"{path}: no column {', '.join(map(repr, missing))} (header: "
                            f"{list(header)}; expected the id and text columns)")


def _csv(path: pathlib.Path, id_field: str, text_field: str,
         delimiter: str) -> Iterator[Read]:
  with open(path, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
      raise CorpusFormatError(f"{path}: empty file (expected a header with "
                              f"{id_field!r} and {text_field!r})")
    header = [h.strip() for h in header]
    _missing_columns(path, header, id_field, text_field)
    id_col, text_col = header.index(id_field), header.index(text_field)
    width = max(id_col, text_col)
    for row in reader:
      line_no = reader.line_num
      if len(row) <= width:
        yield None, f"{path.name}: row with too few fields"
        continue
      yield _checked(path.name, line_no, row[id_col] or None, row[text_col])


def _parquet(path: pathlib.Path, id_field: str, text_field: str) -> Iterator[Read]:
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  pf = pq.ParquetFile(path)
  _missing_columns(path, pf.schema_arrow.names, id_field, text_field)
  row = 0
  for batch in pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=[id_field, text_field]):
    ids, texts = batch.column(0).to_pylist(), batch.column(1).to_pylist()
    for rid, text in zip(ids, texts):
      row += 1
      yield _checked(path.name, row, rid, text)


def read_text_file(path: "str | pathlib.Path", id_field: str = "id",
                   text_field: str = "text") -> Iterator[Read]:
  """Yields ``(Record, None)`` per usable record of one text file, ``(None, reason)`` per
  skipped one (see the module docstring).

  Raises:
    CorpusFormatError: missing or undecodable file, unknown type, missing column.
  """
  path = pathlib.Path(path)
  kind = text_format(path)
  if not path.is_file():
    raise CorpusFormatError(f"{path}: no such file (expected a {kind} file of id + text)")
  try:
    if kind == "jsonl":
      yield from _jsonl(path, id_field, text_field)
    elif kind == "parquet":
      yield from _parquet(path, id_field, text_field)
    else:
      yield from _csv(path, id_field, text_field, "\t" if kind == "tsv" else ",")
  except UnicodeDecodeError as e:
    raise CorpusFormatError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None


def expand_inputs(patterns: Sequence[str]) -> List[str]:
  """Files matching comma-split paths or globs, sorted; raises when one matches nothing."""
  out = []
  for pattern in patterns:
    path = pathlib.Path(pattern)
    matches = sorted(path.parent.glob(path.name)) if any(c in path.name for c in "*?[") \
        else [path]
    matches = [m for m in matches if m.is_file()]
    if not matches:
      raise CorpusFormatError(f"{pattern}: no such file")
    out.extend(str(m) for m in matches)
  return out


def jader_records(release_dir: "str | pathlib.Path", log: Log = no_log,
                  **load_kwargs) -> List[Record]:
  """One record per case of a JADER release: 識別番号 → its elements (``kind:name``).

  ``load_kwargs`` go to ``tfrs_emb.data.jader.load_cases`` (e.g. ``suspected_only``);
  its skips are logged with its summary.
  """
  cases = jader.load_cases(release_dir, log=log, **load_kwargs)
  log(cases.summary())
  vocab = cases.vocab
  ptr, ind = cases.indptr.tolist(), cases.indices.tolist()
  source = str(release_dir)
  return [Record(str(cid), tuple(vocab[j] for j in ind[ptr[i]:ptr[i + 1]]), source, i + 1)
          for i, cid in enumerate(cases.ids.tolist())]


def set_records(path: "str | pathlib.Path", log: Log = no_log, **load_kwargs) -> List[Record]:
  """One record per set of a set file (``tfrs_emb.data.sets.load_sets`` with
  ``load_kwargs``): set id → its elements in set order."""
  corpus = sets.load_sets(path, **load_kwargs)
  log(corpus.summary())
  vocab = corpus.vocab
  ptr, ind = corpus.indptr.tolist(), corpus.indices.tolist()
  return [Record(str(sid), tuple(vocab[j] for j in ind[ptr[i]:ptr[i + 1]]), str(path), i + 1)
          for i, sid in enumerate(corpus.set_ids)]
