"""Sampling synthetic JADER cases: the element universe (``Vocabulary``), Zipf draws from
it (``Sampler``), the drug / reaction / history rows of a chunk of cases with their latent
classes (``chunk_rows``), and NFKC-foldable spelling variants of names.

Latent structure (what a clinician would recognise):
  * therapeutic classes (statins, ARBs, kinase inhibitors, ...) each own drugs named with
    their INN stem (…スタチン, …サルタン, …チニブ), indications (hist, 原疾患等) and
    class-typical adverse events (横紋筋融解症 for statins, 間質性肺疾患 for kinase
    inhibitors, ...);
  * Zipf-like popularity of classes and of drugs within a class;
  * polypharmacy: a case has a primary class (its 被疑薬) and 0-3 concomitant classes;
  * noise: general adverse events and comorbidities from a long Zipf tail, random
    concomitant drugs;
  * name variants: half-width katakana, full-width ASCII, stray spaces (NFKC + strip in
    the loader folds them).

Every draw comes from the ``rng`` passed in, in a fixed order: a release is a deterministic
function of its seed and sizes.
"""

import dataclasses
import unicodedata
from typing import Dict, List, Sequence, Tuple

import numpy as np

from tfrs_emb.data import synthetic_jader_tables as tables


def _half_width_table() -> Dict[str, str]:
  """Maps full-width katakana (and voiced forms) to their half-width spelling."""
  table = {}
  halves = [chr(c) for c in range(0xFF66, 0xFF9E)]
  for h in halves:
    full = unicodedata.normalize("NFKC", h)
    if len(full) == 1:
      table.setdefault(full, h)
    for mark in ("\uff9e", "\uff9f"):
      voiced = unicodedata.normalize("NFKC", h + mark)
      if len(voiced) == 1:
        table.setdefault(voiced, h + mark)
  table["ー"] = "\uff70"
  return table


_HALF = _half_width_table()


def _variant(name: str, rng: np.random.Generator) -> str:
  """A spelling of ``name`` that NFKC + strip folds back (half-width kana, ASCII, spaces)."""
  choice = rng.integers(3)
  if choice == 0 and any(ch in _HALF for ch in name):
    return "".join(_HALF.get(ch, ch) for ch in name)
  if choice == 1 and any("!" <= ch <= "~" for ch in name):
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in name)
  return (" " if rng.random() < 0.5 else "") + name + " "


@dataclasses.dataclass
class Vocabulary:
  """The generator's element universe (canonical NFKC names) and its class structure."""
  class_names: List[str]
  drugs: List[str]                 # canonical generic names
  drug_class: np.ndarray           # int [num_drugs]
  class_drugs: List[np.ndarray]    # per class: drug indices, most popular first
  class_events: List[List[str]]    # per class: typical adverse events
  class_hist: List[List[str]]      # per class: indications
  tail_events: List[str]           # long-tail noise events, most frequent first
  tail_hist: List[str]             # long-tail comorbidities, most frequent first


def build_vocabulary(seed: int = 0, drugs_per_class: int = 60) -> Vocabulary:
  """Builds the class → drugs / indications / events universe (deterministic in seed).

  With the defaults: 30 classes, 1,800 drugs, ~780 tail events, ~450 comorbidities.
  """
  rng = np.random.default_rng(seed + 7919)
  seen = set()
  drugs, drug_class, class_drugs = [], [], []
  for c, (_, stem, real, _, _) in enumerate(tables.THERAPEUTIC_CLASSES):
    names = [n for n in real if n not in seen]
    seen.update(names)
    while len(names) < drugs_per_class:
      k = rng.integers(2, 4)
      pre = "".join(rng.choice(tables.KANA, size=k)) + rng.choice(tables.KANA_TAIL)
      name = unicodedata.normalize("NFKC", stem + pre if stem.startswith("セフ") else pre + stem)
      if name not in seen:
        seen.add(name)
        names.append(name)
    idx = np.arange(len(drugs), len(drugs) + len(names))
    drugs.extend(names)
    drug_class.extend([c] * len(names))
    class_drugs.append(idx)
  combos = [o + f for o in tables.ORGANS for f in tables.FINDINGS]
  rng.shuffle(combos)
  tail_events = list(dict.fromkeys(tables.GENERAL_EVENTS + combos))
  tail_hist = list(dict.fromkeys(tables.COMORBIDITIES + [o + f for o in tables.ORGANS[:18]
                                                         for f in tables.FINDINGS]))
  for name in drugs + tail_events + tail_hist:
    if "," in name or '"' in name:
      raise ValueError(f"generator vocabulary name needs CSV quoting: {name!r}")
  classes = tables.THERAPEUTIC_CLASSES
  return Vocabulary(
      class_names=list(tables.class_names()), drugs=drugs, drug_class=np.asarray(drug_class),
      class_drugs=class_drugs, class_events=[list(c[4]) for c in classes],
      class_hist=[list(c[3]) for c in classes], tail_events=tail_events, tail_hist=tail_hist)


def _zipf_cdf(n: int, s: float) -> np.ndarray:
  w = 1.0 / np.arange(1, n + 1) ** s
  return np.cumsum(w) / w.sum()


class Sampler:
  """Vectorised draws from the vocabulary (Zipf within each class and in the tails)."""

  def __init__(self, vocab: Vocabulary):
    self.vocab = vocab
    self.num_classes = len(vocab.class_names)
    self.class_cdf = _zipf_cdf(self.num_classes, 0.8)
    self.drug_sizes = np.array([len(d) for d in vocab.class_drugs])
    self.drug_offsets = np.array([d[0] for d in vocab.class_drugs])
    self.drug_cdfs = [_zipf_cdf(n, 1.1) for n in self.drug_sizes]
    # Class-typical events / indications as global string tables with offsets.
    self.event_names = [e for evs in vocab.class_events for e in evs]
    self.event_offsets = np.cumsum([0] + [len(e) for e in vocab.class_events])
    self.hist_names = [h for hs in vocab.class_hist for h in hs]
    self.hist_offsets = np.cumsum([0] + [len(h) for h in vocab.class_hist])
    self.tail_event_cdf = _zipf_cdf(len(vocab.tail_events), 1.05)
    self.tail_hist_cdf = _zipf_cdf(len(vocab.tail_hist), 1.05)
    self.all_drug_cdf = _zipf_cdf(len(vocab.drugs), 1.0)
    self.all_drug_perm = np.random.default_rng(11).permutation(len(vocab.drugs))

  def classes(self, rng, n):
    return np.searchsorted(self.class_cdf, rng.random(n))

  def drugs_of(self, rng, classes):
    """One drug per entry of ``classes`` (Zipf within the class)."""
    out = np.empty(len(classes), np.int64)
    u = rng.random(len(classes))
    for c in np.unique(classes):
      m = classes == c
      out[m] = self.drug_offsets[c] + np.minimum(
          np.searchsorted(self.drug_cdfs[c], u[m]), self.drug_sizes[c] - 1)
    return out

  def uniform_in(self, rng, offsets, classes):
    lo, hi = offsets[classes], offsets[classes + 1]
    return lo + (rng.random(len(classes)) * (hi - lo)).astype(np.int64)


def _pick(names: Sequence[str], idx: np.ndarray) -> np.ndarray:
  return np.asarray(names, dtype=object)[idx]


def _zipf_pick(rng: np.random.Generator, names: Sequence[str], cdf: np.ndarray,
               count: int) -> np.ndarray:
  """``count`` draws from ``names`` with the cumulative distribution ``cdf``."""
  return _pick(names, np.minimum(np.searchsorted(cdf, rng.random(count)), len(names) - 1))


@dataclasses.dataclass
class CaseClasses:
  """Latent classes of n cases: ``primary`` int [n] (the class of the suspected drugs),
  ``extra`` int [n, 3] candidate concomitant classes, ``extra_mask`` bool [n, 3] which of
  them the case has (0-3, never the primary class)."""
  primary: np.ndarray
  extra: np.ndarray
  extra_mask: np.ndarray

  def extra_pairs(self) -> Tuple[np.ndarray, np.ndarray]:
    """(case, slot) int [E] of every concomitant class of every case."""
    return np.nonzero(self.extra_mask)

  def describe(self) -> List[str]:
    """Per case: its classes as "primary;extra;..." (the latent file's ``classes``)."""
    return [";".join(str(c) for c in [p] + list(e[m])) for p, e, m in
            zip(self.primary, self.extra, self.extra_mask)]


@dataclasses.dataclass
class ChunkRows:
  """The element rows of a chunk of cases (case numbers 0..n-1 within the chunk).

  drug: (case int [D], generic name object [D], role int8 [D]: 0 被疑薬, 1 併用薬,
  2 相互作用); reac / hist: (case int [R], name object [R]); classes: the latent classes.
  """
  classes: CaseClasses
  drug: Tuple[np.ndarray, np.ndarray, np.ndarray]
  reac: Tuple[np.ndarray, np.ndarray]
  hist: Tuple[np.ndarray, np.ndarray]


def case_classes(sampler: Sampler, rng: np.random.Generator, n: int) -> CaseClasses:
  """A primary class per case and 0-3 concomitant classes (Poisson(0.9), capped)."""
  primary = sampler.classes(rng, n)
  n_extra = np.minimum(rng.poisson(0.9, n), 3)
  extra = sampler.classes(rng, n * 3).reshape(n, 3)
  extra_mask = np.arange(3)[None, :] < n_extra[:, None]
  extra_mask &= extra != primary[:, None]
  return CaseClasses(primary, extra, extra_mask)


def drug_rows(sampler: Sampler, rng: np.random.Generator, cls: CaseClasses
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Drug rows: 1-2 suspected drugs of the primary class, one drug per concomitant class
  (mostly 併用薬), 0-6 random concomitant drugs (noise). Returns (case, name, role)."""
  n = len(cls.primary)
  case = np.arange(n)
  n_prim = 1 + (rng.random(n) < 0.3)
  d_case = [np.repeat(case, n_prim)]
  d_cls = [np.repeat(cls.primary, n_prim)]
  d_role = [np.zeros(n_prim.sum(), np.int8)]
  ec, ek = cls.extra_pairs()
  d_case.append(ec)
  d_cls.append(cls.extra[ec, ek])
  d_role.append(np.where(rng.random(len(ec)) < 0.15, 0,
                         np.where(rng.random(len(ec)) < 0.05, 2, 1)).astype(np.int8))
  drug_ids = [sampler.drugs_of(rng, np.concatenate(d_cls))]
  n_noise = np.minimum(rng.poisson(1.5, n), 6)
  nc = np.repeat(case, n_noise)
  drug_ids.append(sampler.all_drug_perm[np.minimum(
      np.searchsorted(sampler.all_drug_cdf, rng.random(len(nc))),
      len(sampler.vocab.drugs) - 1)])
  d_case.append(nc)
  d_role.append(np.ones(len(nc), np.int8))
  names = np.asarray(sampler.vocab.drugs, dtype=object)[np.concatenate(drug_ids)]
  return np.concatenate(d_case), names, np.concatenate(d_role)


def reaction_rows(sampler: Sampler, rng: np.random.Generator, cls: CaseClasses
                  ) -> Tuple[np.ndarray, np.ndarray]:
  """Reaction rows: 1-3 typical events of the primary class, 0-1 of the first concomitant
  class, and 0-4 general events from the Zipf tail. Returns (case, name)."""
  n = len(cls.primary)
  case = np.arange(n)
  n_typ = 1 + rng.binomial(2, 0.45, n)
  rc = np.repeat(case, n_typ)
  r_names = [_pick(sampler.event_names, sampler.uniform_in(rng, sampler.event_offsets,
                                                           cls.primary[rc]))]
  r_case = [rc]
  xc = case[cls.extra_mask[:, 0] & (rng.random(n) < 0.35)]
  r_names.append(_pick(sampler.event_names,
                       sampler.uniform_in(rng, sampler.event_offsets, cls.extra[xc, 0])))
  r_case.append(xc)
  tc = np.repeat(case, np.minimum(rng.poisson(1.0, n), 4))
  r_names.append(_zipf_pick(rng, sampler.vocab.tail_events, sampler.tail_event_cdf, len(tc)))
  r_case.append(tc)
  return np.concatenate(r_case), np.concatenate(r_names)


def history_rows(sampler: Sampler, rng: np.random.Generator, cls: CaseClasses
                 ) -> Tuple[np.ndarray, np.ndarray]:
  """History rows: the primary class's indication (p=0.75), each concomitant class's
  (p=0.5), and 0-3 comorbidities from the Zipf tail. Returns (case, name)."""
  n = len(cls.primary)
  case = np.arange(n)
  hp = case[rng.random(n) < 0.75]
  h_names = [_pick(sampler.hist_names, sampler.uniform_in(rng, sampler.hist_offsets,
                                                          cls.primary[hp]))]
  h_case = [hp]
  ec, ek = cls.extra_pairs()
  keep = rng.random(len(ec)) < 0.5
  h_names.append(_pick(sampler.hist_names, sampler.uniform_in(
      rng, sampler.hist_offsets, cls.extra[ec[keep], ek[keep]])))
  h_case.append(ec[keep])
  cc = np.repeat(case, np.minimum(rng.poisson(0.7, n), 3))
  h_names.append(_zipf_pick(rng, sampler.vocab.tail_hist, sampler.tail_hist_cdf, len(cc)))
  h_case.append(cc)
  return np.concatenate(h_case), np.concatenate(h_names)


def chunk_rows(sampler: Sampler, rng: np.random.Generator, n: int) -> ChunkRows:
  """The latent classes and the drug / reaction / history rows of n cases."""
  cls = case_classes(sampler, rng, n)
  drug = drug_rows(sampler, rng, cls)
  reac = reaction_rows(sampler, rng, cls)
  hist = history_rows(sampler, rng, cls)
  return ChunkRows(cls, drug, reac, hist)


def apply_variants(names: np.ndarray, rng: np.random.Generator, rate: float,
                    cache: Dict[str, List[str]]) -> np.ndarray:
  """Replaces a ``rate`` fraction of names with NFKC-foldable spelling variants."""
  pick = np.nonzero(rng.random(len(names)) < rate)[0]
  if len(pick):
    names = names.copy()
    for i in pick:
      v = cache.setdefault(names[i], [])
      if len(v) < 3:
        v.append(_variant(names[i], rng))
      names[i] = v[rng.integers(len(v))]
  return names
