"""Keras CBOW vs gensim CBOW: throughput and quality in the same run, on one corpus.

Loads a (cached) synthetic JADER release, holds one seeded random element out of each of
``eval_sets`` sampled cases with >= 3 elements (removed from training;
``metrics.set_embeddings.hold_out``), then trains gensim (``workers`` threads) and each
Keras variant of ``keras_grid`` on the same corpus, alternating, ``repeats`` times. Each
trained method gets a row: train_seconds, tokens_per_s (training case-elements × epochs /
whole training seconds), heldout_recall@k (SPEC.md: mean of the remaining elements' input
vectors · every output vector, remaining elements excluded) and class_agreement@k (mean
case embeddings of the training sets, exact search from the held-out cases, self
excluded); then the popularity and random baselines of heldout_recall@k. The load
average before and after is returned with the table. Nothing is written.
Tune on a development release (``synthetic_seed=1``), never on the evaluation one (0).
"""

import dataclasses
import inspect
from typing import Any, Dict, List

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb import reporting
from tfrs_emb.data import jader
from tfrs_emb.data import sets
from tfrs_emb.data import synthetic_jader
from tfrs_emb.experiments import common
from tfrs_emb.experiments import set_methods
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow
from tfrs_emb.models import gensim_cbow

GENSIM, KERAS = "gensim", "keras"


@dataclasses.dataclass
class Config:
  """Flags of ``python -m trainers.bench_cbow``."""
  synthetic_cases: int = field(30_000, "Cases of the generated release.", lower=1)
  synthetic_seed: int = field(1, "Seed of the release (1 = development).")
  cache_dir: str = field("runs/cache/jader", "Where generated releases are kept.")
  eval_sets: int = field(2000, "Cases with one held-out element (and queries).", lower=1)
  k: int = field(10, "Cut-off of both metrics.", lower=1)
  dim: int = field(64, "Embedding dimension (both).", lower=1)
  window: int = field(64, "gensim window; Keras max_len = window + 1.", lower=1)
  negatives: int = field(5, "Negative samples per target (both).", lower=1)
  epochs: int = field(5, "Epochs (both; a grid entry may override Keras').", lower=1)
  min_count: int = field(5, "Minimum number of cases of an element (both).", lower=1)
  sample: float = field(1e-3, "Subsampling threshold (both).", lower=0.0)
  workers: int = field(2, "gensim workers, Keras' fused-op threads and TF intra-op "
                       "threads.", lower=1)
  repeats: int = field(1, "Timed rounds (gensim + every Keras variant each).", lower=0)
  run_gensim: bool = field(True, "Also train gensim.")
  gensim_noise_exponents: str = field(f"{cbow.NOISE_EXPONENT:g}", "gensim rows: "
                                      "comma-separated ns_exponent values, one row each "
                                      "(0.75 = gensim's default).")
  keras_grid: str = field("", "Keras variants: ';'-separated lists of name=value overrides "
                          "of train_cbow's arguments (empty = defaults).")
  seed: int = field(0, "Seed of training, held-out elements and queries.")


@dataclasses.dataclass
class BenchCbowResult:
  """Outcome of ``run``: one row per trained method (and per baseline), the printed table,
  and the machine conditions before and after (``conditions``: their one-line summary)."""
  rows: List[Dict[str, Any]]
  table: str
  conditions: str
  before: Dict[str, Any]
  after: Dict[str, Any]
  release: str


def columns(k: int) -> List[str]:
  return ["method", "variant", "kernel", "epochs", "train_seconds", "tokens_per_s",
          f"heldout_recall@{k}", f"class_agreement@{k}"]


def _value(text: str):
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text.strip()


def parse_grid(text: str) -> List[Dict[str, Any]]:
  """``keras_grid`` → one dict of train_cbow overrides per variant (empty text: one variant,
  train_cbow's defaults). Numbers become int or float; other values stay strings.

  Raises:
    ValueError: an item is not ``name=value`` or names no train_cbow argument.
  """
  known = set(inspect.signature(cbow.train_cbow).parameters)
  out = []
  for entry in (text.split(";") if text else [""]):
    kw = {}
    for item in filter(None, (s.strip() for s in entry.split(","))):
      key, sep, value = item.partition("=")
      key = key.strip()
      if not sep or key not in known:
        raise ValueError(f"keras_grid item {item!r}: expected name=value with a train_cbow "
                         f"argument name")
      kw[key] = _value(value)
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

  def add(method: set_methods.Method, epochs: int, variant: str = "") -> None:
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
  for _ in range(config.repeats):
    for exponent in gensim_exponents:
      g = gensim_cbow.train_gensim_cbow(
          token_lists, dim=config.dim, window=config.window, negatives=config.negatives,
          epochs=config.epochs, min_count=config.min_count, sample=config.sample,
          workers=config.workers, seed=config.seed, noise_exponent=exponent)
      add(set_methods.Method(GENSIM, g.vocab, g.vectors, g.output_vectors, g.train_seconds,
                             g.tokens_per_s), config.epochs,
          "" if exponent == cbow.NOISE_EXPONENT else f"noise_exponent={exponent:g}")
      del g
    for kw in grid:
      args = dict(dim=config.dim, negatives=config.negatives, epochs=config.epochs,
                  min_count=config.min_count, sample=config.sample,
                  max_len=config.window + 1, seed=config.seed, verbose=0,
                  threads=config.workers)
      args.update(kw)
      name = ",".join(f"{a}={b}" for a, b in kw.items()) or "defaults"
      try:
        res = cbow.train_cbow(held.train_indptr, held.train_indices, cases.vocab, **args)
      except FloatingPointError as e:   # a grid may cross the stability limit
        rows.append({"method": KERAS, "variant": name + " (diverged)"})
        log(str(e))
        continue
      add(set_methods.Method(KERAS, res.vocab, res.vectors, res.output_vectors,
                             res.train_seconds, res.tokens_per_s, res.kernel),
          args["epochs"], name)
      del res
      tf.keras.backend.clear_session()

  # Baselines: training popularity and random scores (no model).
  baselines = set_methods.heldout_scores(held, [], cases.vocab, k, seed=config.seed)
  for name in (set_methods.POPULARITY, set_methods.RANDOM):
    rows.append({"method": name,
                 f"heldout_recall@{k}": baselines[name][f"heldout_recall@{k}"]})
  after = reporting.machine_conditions()
  return BenchCbowResult(rows, reporting.markdown_table(rows, columns(k)),
                         reporting.describe_conditions(before, after), before, after,
                         str(release))
