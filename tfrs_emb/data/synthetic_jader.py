"""Synthetic JADER releases: the four PMDA CSV files with a latent clinical structure.

Real JADER (PMDA's Japanese Adverse Drug Event Report database) is a manual download, so
tests and demos use a generated release written in exactly the real layout (column
names, cp932 encoding, one row per drug / event / disease, several 報告回数 per case).

Usage::

  from tfrs_emb.data import synthetic_jader
  info = synthetic_jader.write_release("runs/jader_syn", num_cases=20_000, seed=0)
  # -> demo*.csv, drug*.csv, reac*.csv, hist*.csv (cp932) + latent_classes.csv (utf-8)

or ``python -m trainers.make_synthetic_jader --cases=692821 --out=DIR --seed=0``.

This module writes the files (and caches whole releases, ``cached_release``); the cases
are drawn by ``synthetic_jader_sampler`` from the vocabularies of
``synthetic_jader_tables``. Follow-up reports (報告回数 2) supersede a first report that
holds part of the rows and a stale event. The side file ``latent_classes.csv``
(識別番号, primary_class, primary_class_name, classes) records the ground truth:
``primary_class`` is the class of the case's suspected drugs. Memory is bounded by
``chunk_cases`` (cases generated and written per step).
"""

import contextlib
import numbers
import os
import pathlib
import time
from typing import Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np
import pandas as pd

from tfrs_emb.core.log import Log, no_log
from tfrs_emb.data import synthetic_jader_tables as tables
from tfrs_emb.data.synthetic_jader_sampler import (CaseClasses, Sampler, Vocabulary,
                                                   apply_variants, build_vocabulary,
                                                   chunk_rows)

# Bump whenever a change to the tables, the sampler or the writer changes the files written
# for a given seed: ``cached_release`` then generates a new release instead of reusing one.
GENERATOR_VERSION = 1

DEMO_COLUMNS = ["識別番号", "報告回数", "性別", "年齢", "体重", "身長", "報告年度・四半期",
                "状況", "報告の種類", "報告者の資格", "E2B"]
DRUG_COLUMNS = ["識別番号", "報告回数", "医薬品連番", "医薬品の関与", "医薬品（一般名）",
                "医薬品（販売名）", "投与経路", "投与開始日", "投与終了日", "投与量", "投与単位",
                "分割投与回数", "使用理由", "医薬品の処置", "再投与による再発の有無", "リスク区分等"]
REAC_COLUMNS = ["識別番号", "報告回数", "有害事象連番", "有害事象", "転帰", "有害事象の発現日"]
HIST_COLUMNS = ["識別番号", "報告回数", "患者情報連番", "原疾患等"]
LATENT_FILE = "latent_classes.csv"
_COLUMNS = {"demo": DEMO_COLUMNS, "drug": DRUG_COLUMNS, "reac": REAC_COLUMNS,
            "hist": HIST_COLUMNS}
_LATENT_HEADER = "識別番号,primary_class,primary_class_name,classes\n"
_ROLES = np.array(tables.DRUG_ROLES, dtype=object)


def write_release(out_dir: "str | os.PathLike", num_cases: int, seed: int = 0,
                  encoding: str = "cp932", chunk_cases: int = 100_000,
                  variant_rate: float = 0.03, followup_rate: float = 0.08,
                  suffix: str = "202401", vocab: Optional[Vocabulary] = None) -> dict:
  """Writes a synthetic JADER release (demo/drug/reac/hist CSVs + latent_classes.csv).

  Args:
    out_dir: folder to create / overwrite the five files in.
    num_cases: number of distinct 識別番号 (the talk: 692,821).
    seed: random seed (the release is a deterministic function of it and the sizes).
    encoding: "cp932" (real PMDA files), "utf-8" or "utf-8-sig".
    chunk_cases: cases generated and written per step (bounds memory).
    variant_rate: fraction of element cells written as a spelling variant.
    followup_rate: fraction of cases that also have an earlier, superseded report
      (報告回数 1 with a partial element set; the latest 報告回数 is the truth).
    suffix: file name suffix (``demo{suffix}.csv`` ...).
    vocab: element universe; ``build_vocabulary(seed)`` when None.

  Returns:
    dict with the file paths, number of rows per file, num_cases and seconds taken.

  Raises:
    ValueError: num_cases or chunk_cases below 1 (nothing is written).
  """
  _check_sizes(num_cases=num_cases, chunk_cases=chunk_cases)
  t0 = time.time()
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  sampler = Sampler(vocab or build_vocabulary(seed))
  rng = np.random.default_rng(seed)
  paths = {k: out / f"{k}{suffix}.csv" for k in _COLUMNS}
  rows = {k: 0 for k in paths}
  variant_cache: Dict[str, List[str]] = {}
  with _open_release(paths, out / LATENT_FILE, encoding) as (handles, latent):
    for first in range(0, num_cases, chunk_cases):
      counts = _write_chunk(handles, latent, sampler, rng, first,
                            min(chunk_cases, num_cases - first), variant_rate,
                            followup_rate, variant_cache)
      for k, m in counts.items():
        rows[k] += m
  return dict(paths={k: str(p) for k, p in paths.items()}, latent=str(out / LATENT_FILE),
              rows=rows, num_cases=num_cases, seconds=time.time() - t0, encoding=encoding)


def _check_sizes(**sizes: int) -> None:
  """Raises ValueError naming the first size that is not an integer >= 1."""
  for name, value in sizes.items():
    if not isinstance(value, numbers.Integral) or value < 1:
      raise ValueError(f"{name} must be an integer >= 1 (a release needs at least one "
                       f"case), got {value!r}")


@contextlib.contextmanager
def _open_release(paths: Dict[str, pathlib.Path], latent_path: pathlib.Path, encoding: str
                  ) -> Iterator[Tuple[Dict[str, TextIO], TextIO]]:
  """The four release files (header rows written, CRLF, ``encoding``) and the latent file
  (utf-8, header written), closed on exit."""
  with contextlib.ExitStack() as stack:
    handles = {k: stack.enter_context(open(p, "w", encoding=encoding, newline=""))
               for k, p in paths.items()}
    latent = stack.enter_context(open(latent_path, "w", encoding="utf-8", newline=""))
    latent.write(_LATENT_HEADER)
    for k, h in handles.items():
      h.write(",".join(_COLUMNS[k]) + "\r\n")
    yield handles, latent


def _write_chunk(handles: Dict[str, TextIO], latent: TextIO, sampler: Sampler,
                 rng: np.random.Generator, first: int, n: int, variant_rate: float,
                 followup_rate: float, variant_cache: Dict[str, List[str]]
                 ) -> Dict[str, int]:
  """Cases JD{first + 1} .. JD{first + n}: their rows in the four files and their latent
  classes. Follow-up reports: version 2 is the complete case; version 1 holds a subset of
  its rows plus a stale event that must not survive loading. Returns rows written per
  file."""
  g = chunk_rows(sampler, rng, n)
  ids = np.array([f"JD{first + i + 1:08d}" for i in range(n)], dtype=object)
  followed_up = rng.random(n) < followup_rate
  rep = np.where(followed_up, 2, 1)
  _write_demo(handles["demo"], rng, ids, rep, followed_up)
  d_case, d_name, d_role = g.drug
  r_case, r_name = g.reac
  h_case, h_name = g.hist
  d_name = apply_variants(d_name, rng, variant_rate, variant_cache)
  r_name = apply_variants(r_name, rng, variant_rate, variant_cache)
  h_name = apply_variants(h_name, rng, variant_rate, variant_cache)
  old_d = followed_up[d_case] & (rng.random(len(d_case)) < 0.6)
  old_r = followed_up[r_case] & (rng.random(len(r_case)) < 0.5)
  stale = np.nonzero(followed_up)[0]
  stale_names = np.asarray(sampler.vocab.tail_events, dtype=object)[
      rng.integers(len(sampler.vocab.tail_events), size=len(stale))]
  counts = {"demo": n + int(followed_up.sum())}
  counts["drug"] = _write_drug(handles["drug"], rng, ids, rep, d_case, d_name, d_role, old_d)
  counts["reac"] = _write_table(
      handles["reac"], ids, np.r_[rep[r_case], np.ones(old_r.sum() + len(stale), np.int64)],
      np.r_[r_case, r_case[old_r], stale], np.r_[r_name, r_name[old_r], stale_names],
      extra=lambda m: {"転帰": _draw(rng, tables.OUTCOMES, m),
                       "有害事象の発現日": np.full(m, "", dtype=object)},
      seq_col="有害事象連番", name_col="有害事象", columns=REAC_COLUMNS)
  counts["hist"] = _write_table(
      handles["hist"], ids, rep[h_case], h_case, h_name, extra=lambda m: {},
      seq_col="患者情報連番", name_col="原疾患等", columns=HIST_COLUMNS)
  _write_latent(latent, ids, g.classes, sampler.vocab)
  return counts


def _write_latent(handle: TextIO, ids: np.ndarray, classes: CaseClasses,
                  vocab: Vocabulary) -> None:
  """latent_classes.csv rows: 識別番号, primary class id and name, every class."""
  pd.DataFrame({"識別番号": ids, "primary_class": classes.primary,
                "primary_class_name": np.asarray(vocab.class_names,
                                                 dtype=object)[classes.primary],
                "classes": classes.describe()}).to_csv(handle, header=False, index=False)


def _seq(case: np.ndarray) -> np.ndarray:
  """1-based running number of each row within its case (rows grouped by case)."""
  order = np.argsort(case, kind="stable")
  c = case[order]
  starts = np.r_[0, np.nonzero(np.diff(c))[0] + 1]
  run = np.arange(len(c)) - np.repeat(starts, np.diff(np.r_[starts, len(c)]))
  out = np.empty(len(c), np.int64)
  out[order] = run + 1
  return out


def _write_rows(handle, columns: Sequence[np.ndarray], tail: str = ""):
  """Writes CSV rows (fields joined by ",", CRLF), each followed by the constant ``tail``.

  Joins the fields as strings in one ``write`` per call instead of quoting each cell:
  fields never need quoting (``build_vocabulary`` guarantees names without "," or '"').
  """
  cols = [c.tolist() if c.dtype == object else c.astype(str).tolist() for c in columns]
  end = tail + "\r\n"
  handle.write(end.join(map(",".join, zip(*cols))) + end if len(cols[0]) else "")


def _draw(rng: np.random.Generator, choices: tables.Choices, m: int) -> np.ndarray:
  """m draws (object [m]) from a (values, probabilities) table."""
  values, p = choices
  return rng.choice(np.array(values, dtype=object), m, p=None if p is None else list(p))


def _write_demo(handle: TextIO, rng: np.random.Generator, ids: np.ndarray, rep: np.ndarray,
                followed_up: np.ndarray) -> None:
  """demo rows: one per case at its 報告回数 ``rep``, then a 報告回数 1 row per case
  ``followed_up``; 体重, 身長 and E2B empty."""
  n = len(ids)
  idx = np.r_[np.arange(n), np.nonzero(followed_up)[0]]
  rep_all = np.r_[rep, np.ones(int(followed_up.sum()), np.int64)]
  m = len(idx)
  _write_rows(handle, [
      ids[idx], rep_all, _draw(rng, tables.SEXES, m), _draw(rng, tables.AGE_GROUPS, m),
      np.full(m, ",", dtype=object),   # 体重, 身長 (empty)
      _draw(rng, tables.REPORT_QUARTERS, m), _draw(rng, tables.REPORT_STATUSES, m),
      _draw(rng, tables.REPORT_TYPES, m), _draw(rng, tables.REPORTERS, m)],
      tail=",")                        # E2B (empty)


def _write_drug(handle: TextIO, rng: np.random.Generator, ids: np.ndarray, rep: np.ndarray,
                d_case: np.ndarray, d_name: np.ndarray, d_role: np.ndarray,
                old: np.ndarray) -> int:
  """drug rows: each drug at its case's 報告回数, and the rows ``old`` again under
  報告回数 1, grouped by case and report; returns the rows written."""
  case = np.r_[d_case, d_case[old]]
  name = np.r_[d_name, d_name[old]]
  role = np.r_[d_role, d_role[old]]
  r = np.r_[rep[d_case], np.ones(int(old.sum()), np.int64)]
  m = len(case)
  order = np.lexsort((r, case))
  case, name, role, r = case[order], name[order], role[order], r[order]
  seq = _seq(case * 4 + r)
  routes = _draw(rng, tables.ROUTES, m)
  # 販売名 empty, then 投与経路, then 9 empty columns (投与開始日 … リスク区分等).
  _write_rows(handle, [ids[case], r, seq, _ROLES[role], name, np.full(m, "", dtype=object),
                       routes], tail="," * 9)
  return m


def _write_table(handle: TextIO, ids: np.ndarray, rep: np.ndarray, case: np.ndarray,
                 name: np.ndarray, extra, seq_col: str, name_col: str,
                 columns: Sequence[str]) -> int:
  """reac / hist rows grouped by case and report: 識別番号, 報告回数, the running number
  ``seq_col``, the name ``name_col`` and the columns ``extra(rows)`` returns; returns the
  rows written."""
  order = np.lexsort((rep, case))
  case, name, rep = case[order], name[order], rep[order]
  m = len(case)
  data = {"識別番号": ids[case], "報告回数": rep, seq_col: _seq(case * 4 + rep),
          name_col: name}
  data.update(extra(m))
  _write_rows(handle, [np.asarray(data[c]) for c in columns])
  return m


def cached_release(cache_dir: "str | os.PathLike", num_cases: int, seed: int = 0,
                   log: Log = no_log) -> pathlib.Path:
  """The synthetic release of ``num_cases`` cases and ``seed``, generated once per cache
  and generator version.

  Every experiment shares one folder scheme
  (``CACHE/synthetic_{cases}_s{seed}_g{GENERATOR_VERSION}``), so a release is never
  generated twice. A ``.complete`` marker holding the generator version is written last:
  an interrupted generation, or a folder whose marker names another generator version, is
  generated again, never reused.

  Returns:
    The release folder.
  """
  if num_cases < 1:
    raise ValueError(f"num_cases must be a positive number of cases, got {num_cases}")
  out = pathlib.Path(cache_dir) / f"synthetic_{num_cases}_s{seed}_g{GENERATOR_VERSION}"
  done = out / ".complete"
  stamp = f"generator_version={GENERATOR_VERSION}\n"
  if done.exists() and done.read_text(encoding="utf-8") == stamp:
    log(f"reusing the synthetic JADER release in {out}")
    return out
  if done.exists():
    log(f"{done} names another generator version ({done.read_text().strip()!r}, "
        f"this is {GENERATOR_VERSION}): generating the release again")
    done.unlink()
  log(f"generating a synthetic JADER release of {num_cases:,d} cases in {out}")
  info = write_release(out, num_cases, seed=seed)
  log(f"  written in {info['seconds']:.1f} s: {info['rows']}")
  done.write_text(stamp, encoding="utf-8")
  return out
