"""Keras CBOW vs gensim CBOW: throughput and quality in the same run, on one corpus.

Loads a (cached) synthetic JADER release, holds one seeded random element out of each of
``eval_sets`` sampled cases with >= 3 elements (removed from training;
``metrics.set_embeddings.hold_out``), then trains gensim (``workers`` threads) and each
Keras variant of ``keras_grid`` on the same corpus in ``repeats`` interleaved rounds (the
order alternating; from 5 rounds on, ``speed_ratios``: Keras ÷ gensim tokens/s). Each
trained method gets a row: train_seconds, tokens_per_s (training case-elements × epochs /
whole training seconds), heldout_recall@k (SPEC.md: mean of the remaining elements' input
vectors · every output vector, remaining elements excluded) and class_agreement@k (mean
case embeddings of the training sets, exact search from the held-out cases, self
excluded); then the popularity and random baselines of heldout_recall@k. The load
average before and after is returned with the table. Nothing is written.
Tune on a development release (``synthetic_seed=1``), never on the evaluation one (0).
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb import reporting
from tfrs_emb.core import timing
from tfrs_emb.data import jader
from tfrs_emb.data import sets
from tfrs_emb.data import synthetic_jader
from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.experiments import set_compare
from tfrs_emb.experiments import set_methods
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import comparison
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow_training
from tfrs_emb.models import gensim_cbow
from tfrs_emb.models.cbow import NOISE_EXPONENT, CbowConfig

GENSIM, KERAS = "gensim", "keras"


@dataclasses.dataclass
class Config:
  """Flags of ``python -m trainers.bench_cbow``: the Keras CBOW's settings (``cbow``,
  whose dim, negatives, epochs, min_count and sample gensim uses too; its seed, threads
  and max_len follow ``seed``, ``workers`` and ``window + 1``), each ``keras_grid``
  variant overriding some of them."""
  cbow: CbowConfig = set_methods.cbow_field()
  synthetic_cases: int = field(30_000, "Cases of the generated release.", lower=1)
  synthetic_seed: int = field(1, "Seed of the release (1 = development).")
  cache_dir: str = field("runs/cache/jader", "Where generated releases are kept.")
  eval_sets: int = field(2000, "Cases with one held-out element (and queries).", lower=1)
  k: int = field(10, "Cut-off of both metrics.", lower=1)
  window: int = field(64, "gensim window; Keras max_len = window + 1.", lower=1)
  workers: int = field(2, "gensim workers, Keras' fused-op threads and TF intra-op "
                       "threads.", lower=1)
  repeats: int = field(1, "Timed rounds (gensim + every Keras variant each).", lower=0)
  run_gensim: bool = field(True, "Also train gensim.")
  gensim_noise_exponents: str = field(f"{NOISE_EXPONENT:g}", "gensim rows: "
                                      "comma-separated ns_exponent values, one row each "
                                      "(0.75 = gensim's default).")
  keras_grid: str = field("", "Keras variants: ';'-separated lists of name=value overrides "
                          "of the CBOW settings (empty = one variant, the settings).")
  seed: int = field(0, "Seed of training, held-out elements and queries.")
  compare: bool = field(False, "Also the harness's compared table (experiments.set_compare, "
                        "with the fused ease+cbow row): --repeats repeats, each with "
                        "training seed seed + r on its own release "
                        "(experiments.harness.release_seed).")
  tune: str = field("off", "Compared table: on = --trials configurations per method chosen "
                    "on a validation hold-out of the training sets; off = the flags' "
                    "settings, one trial each.", choices=set_compare.TUNE)
  trials: int = field(8, "Compared table with --tune=on: trials per method (equal for all).",
                      lower=1, upper=len(set_compare.KNN_NEIGHBORS))

  def __post_init__(self):
    self.cbow = set_methods.derive_cbow(self.cbow, self.seed, self.workers, self.window + 1)


@dataclasses.dataclass
class BenchCbowResult:
  """Outcome of ``run``: one row per trained method (and per baseline), the printed table,
  the machine conditions before and after (``conditions``: their one-line summary), the
  compared table, and ``speed_ratios`` (empty under 5 rounds)."""
  rows: List[Dict[str, Any]]
  table: str
  conditions: str
  before: Dict[str, Any]
  after: Dict[str, Any]
  release: str
  compared: Optional[set_compare.SetComparison] = None
  speed: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


def columns(k: int) -> List[str]:
  return ["method", "variant", "kernel", "epochs", "train_seconds", "tokens_per_s",
          f"heldout_recall@{k}", f"class_agreement@{k}"]


SPEED_COLUMNS = ["variant", "rounds", "keras tokens_per_s (median)",
                 "gensim tokens_per_s (median)", "keras ÷ gensim tokens/s"]


def speed_ratios(rows: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
  """Each Keras variant's tokens/s against gensim's over the interleaved rounds.

  gensim is its first variant (the first noise exponent). Both train on the same corpus
  for the same epochs, so ``comparison.timing_ratio`` of their seconds per token gives
  Keras ÷ gensim tokens/s: the ratio of the medians, with the min–max of the per-round
  ratios. A Keras variant that diverged in a round (fewer timed runs than gensim) gets
  no row.

  Args:
    rows: ``run``'s rows in training order (one per method, variant and round).

  Returns:
    One dict per Keras variant: ``SPEED_COLUMNS`` and ``ratio``
    (``TimingRatio.as_dict``); empty without gensim rows.

  Raises:
    ValueError: fewer than ``comparison.MIN_TIMING_ROUNDS`` rounds.
  """
  per_token: Dict[Tuple[str, str], List[float]] = {}
  for r in rows:
    if r.get("tokens_per_s"):
      per_token.setdefault((r["method"], r["variant"]), []).append(1.0 / r["tokens_per_s"])
  gensim = next((runs for (method, _), runs in per_token.items() if method == GENSIM), None)
  out: List[Dict[str, Any]] = []
  for (method, variant), runs in per_token.items():
    if gensim is None or method != KERAS or len(runs) != len(gensim):
      continue
    keras_t, gensim_t = timing.Timing(tuple(runs)), timing.Timing(tuple(gensim))
    ratio = comparison.timing_ratio(gensim_t, keras_t)
    out.append({"variant": variant, "rounds": ratio.rounds,
                "keras tokens_per_s (median)": 1.0 / keras_t.median,
                "gensim tokens_per_s (median)": 1.0 / gensim_t.median,
                "keras ÷ gensim tokens/s": ratio.text(), "ratio": ratio.as_dict()})
  return out


def _value(f: dataclasses.Field, item: str, text: str):
  """``text`` as the type of field ``f``'s default (bools: 1/0/true/false)."""
  text = text.strip()
  kind = type(f.default)
  try:
    if kind is bool:
      return {"1": True, "true": True, "0": False, "false": False}[text.lower()]
    return kind(text)
  except (KeyError, ValueError):
    raise ValueError(f"keras_grid item {item!r}: expected a value of type {kind.__name__} for "
                     f"{f.name}") from None


def parse_grid(text: str) -> List[Dict[str, Any]]:
  """``keras_grid`` → one dict of ``CbowConfig`` overrides per variant (empty text: one
  variant, no overrides). Values take the type of the field they set.

  Raises:
    ValueError: an item is not ``name=value``, names no CbowConfig field, or its value
      does not parse as the field's type.
  """
  known = {f.name: f for f in dataclasses.fields(CbowConfig)}
  out = []
  for entry in (text.split(";") if text else [""]):
    kw = {}
    for item in filter(None, (s.strip() for s in entry.split(","))):
      key, sep, value = item.partition("=")
      key = key.strip()
      if not sep or key not in known:
        raise ValueError(f"keras_grid item {item!r}: expected name=value with a CbowConfig "
                         f"field name")
      kw[key] = _value(known[key], item, value)
    out.append(kw)
  return out


def parse_exponents(text: str) -> List[float]:
  """``gensim_noise_exponents`` → floats ≥ 0.

  Raises:
    ValueError: an item is not a number ≥ 0.
  """
  out = []
  for item in filter(None, (t.strip() for t in text.split(","))):
    try:
      value = float(item)
    except ValueError:
      value = -1.0
    if not value >= 0.0:
      raise ValueError(f"gensim_noise_exponents item {item!r}: expected a number >= 0")
    out.append(value)
  return out


def run(config: Config, log: common.Log = common.no_log) -> BenchCbowResult:
  """Trains gensim and every Keras variant on the held-out corpus and scores them."""
  common.check_config(config)
  common.check_output_dirs(config, "cache_dir")
  grid = parse_grid(config.keras_grid)
  gensim_exponents = (parse_exponents(config.gensim_noise_exponents) if config.run_gensim
                      else [])
  k = config.k
  before = reporting.machine_conditions()
  release = synthetic_jader.cached_release(config.cache_dir, config.synthetic_cases,
                                           seed=config.synthetic_seed, log=log)
  cases = jader.load_cases(release)
  held = set_embeddings.hold_out(cases.indptr, cases.indices, config.eval_sets,
                                 seed=config.seed)
  case_sets = cases.element_sets()   # rank_dice's S(·); only class_agreement is reported
  log(f"{release}: {len(cases):,d} cases, {len(held.train_indices):,d} training "
      f"case-elements, {len(held):,d} held-out sets")
  rows: List[Dict[str, Any]] = []

  def add(method: set_methods.TrainedElements, epochs: int, variant: str = "") -> None:
    element_rows = case_encoder.map_elements(cases.vocab, method.vocab)
    emb = case_encoder.case_embeddings(held.train_indptr, element_rows[held.train_indices],
                                       method.vectors, "mean")
    agree = set_embeddings.evaluate_case_search(emb, case_sets, held.set_ids,
                                                cases.latent_class, k=k)
    recall = set_embeddings.heldout_recall(
        held, set_embeddings.cbow_scorer(element_rows, method.vectors,
                                         method.output_vectors), k)
    rows.append({"method": method.name, "variant": variant, "epochs": epochs,
                 **method.speed(),
                 f"heldout_recall@{k}": recall[f"heldout_recall@{k}"],
                 f"class_agreement@{k}": agree[f"class_agreement@{k}"]})
    log(", ".join(f"{c}={reporting.format_number(rows[-1][c])}" for c in columns(k)
                  if c in rows[-1]))

  token_lists = (sets.token_lists(held.train_indptr, held.train_indices, cases.vocab,
                                  seed=config.seed) if config.run_gensim else [])
  knobs = config.cbow

  def train_gensim() -> None:
    for exponent in gensim_exponents:
      g = gensim_cbow.train_gensim_cbow(
          token_lists, dim=knobs.dim, window=config.window, negatives=knobs.negatives,
          epochs=knobs.epochs, min_count=knobs.min_count, sample=knobs.sample,
          workers=config.workers, seed=config.seed, noise_exponent=exponent)
      add(set_methods.TrainedElements(GENSIM, g.vocab, g.vectors, g.output_vectors,
                                      g.train_seconds, g.tokens_per_s), knobs.epochs,
          "" if exponent == NOISE_EXPONENT else f"noise_exponent={exponent:g}")
      del g

  def train_keras() -> None:
    for kw in grid:
      variant = dataclasses.replace(knobs, **kw)
      name = ",".join(f"{a}={b}" for a, b in kw.items()) or "defaults"
      try:
        res = cbow_training.train_cbow(held.train_indptr, held.train_indices, cases.vocab,
                                       variant)
      except FloatingPointError as e:   # a grid may cross the stability limit
        rows.append({"method": KERAS, "variant": name + " (diverged)"})
        log(str(e))
        continue
      add(set_methods.TrainedElements(KERAS, res.vocab, res.vectors, res.output_vectors,
                                      res.train_seconds, res.tokens_per_s, res.kernel),
          variant.epochs, name)
      del res
      tf.keras.backend.clear_session()

  # Interleaved rounds, the order alternating: gensim first in even rounds, Keras in odd.
  for round_ in range(config.repeats):
    for train in ((train_gensim, train_keras) if round_ % 2 == 0
                  else (train_keras, train_gensim)):
      train()

  # Peers and baselines: EASE (λ chosen on validation), item-kNN, training popularity
  # and random scores (no embedding).
  baselines = set_methods.heldout_scores(held, [], cases.vocab, k, seed=config.seed,
                                         min_count=knobs.min_count, log=log)
  for name in (set_methods.EASE, set_methods.ITEM_KNN, set_methods.POPULARITY,
               set_methods.RANDOM):
    rows.append({"method": name, "variant": set_methods.peer_variant(baselines[name]),
                 f"heldout_recall@{k}": baselines[name][f"heldout_recall@{k}"]})
  table = reporting.markdown_table(rows, columns(k))
  speed = []
  if gensim_exponents and grid:
    if config.repeats >= comparison.MIN_TIMING_ROUNDS:
      speed = speed_ratios(rows)
      table += "\n\n" + reporting.markdown_table(speed, SPEED_COLUMNS)
    else:
      table += (f"\n\nkeras ÷ gensim tokens/s: needs --repeats >= "
                f"{comparison.MIN_TIMING_ROUNDS} interleaved rounds (ran {config.repeats})")
  compared = None
  if config.compare and config.repeats:
    compared = _compared(config, cases, held, log)
    table += "\n\n" + reporting.markdown_table(compared.rows(k), compared.columns(k)) + \
        "\n" + "\n".join(compared.notes(k))
  after = reporting.machine_conditions()
  return BenchCbowResult(rows, table, reporting.describe_conditions(before, after), before,
                         after, str(release), compared, speed)


def _compared(config: Config, cases: jader.JaderCases, held: set_embeddings.HeldOut,
              log: common.Log) -> set_compare.SetComparison:
  """The compared table over ``config.repeats`` releases
  (seed ``harness.release_seed(synthetic_seed, r)``)."""
  def corpus(repeat: int) -> set_compare.Corpus:
    if repeat == 0:
      return set_compare.Corpus(tuple(cases.vocab), held, config.synthetic_seed)
    seed = harness.release_seed(config.synthetic_seed, repeat)
    other = jader.load_cases(synthetic_jader.cached_release(
        config.cache_dir, config.synthetic_cases, seed=seed, log=log))
    return set_compare.Corpus(tuple(other.vocab), set_embeddings.hold_out(
        other.indptr, other.indices, config.eval_sets, seed=config.seed), seed)

  trials = config.trials if config.tune == "on" else 1
  methods = set_compare.set_methods_list(config.cbow, config.window, config.workers,
                                         config.k, trials, config.seed, config.run_gensim,
                                         log=log)
  return set_compare.compare_sets(methods, set_methods.cached(corpus), config.repeats,
                                  trials, config.seed, fused_k=config.k, log=log)
