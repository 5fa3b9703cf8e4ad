"""What jader_w2v and set2vec share: their config (the Keras CBOW's ``CbowConfig`` nested,
how it runs, the evaluation), training Keras CBOW and gensim side by side on the same
corpus, and the held-out next-element evaluation with its baselines."""

import dataclasses
import pathlib
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from tfrs_emb.core import distribute
from tfrs_emb.data import sets
from tfrs_emb.experiments import common
from tfrs_emb.experiments import set_compare
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow_training
from tfrs_emb.models import ease
from tfrs_emb.models import gensim_cbow
from tfrs_emb.models import item_knn
from tfrs_emb.models import set_softmax
from tfrs_emb.models.cbow import NOISE_EXPONENT, CbowConfig

KERAS, GENSIM, POPULARITY, RANDOM = "keras_cbow", "gensim_cbow", "popularity", "random"
# The peer recommenders every set table carries (no embedding: heldout_recall only).
EASE, ITEM_KNN = "ease", "item_knn"


# CbowConfig fields the set experiments set from their own flags (no flag of their own).
CBOW_DERIVED = ("seed", "threads", "max_len")


def cbow_field(default: CbowConfig = CbowConfig()):
  """The ``cbow`` field of a set experiment's config: the Keras CBOW's settings, flags of
  their own names except ``CBOW_DERIVED`` (set in ``SetMethodsConfig.__post_init__``)."""
  return common.nested(default, "Keras CBOW settings (gensim shares dim, negatives, "
                      "noise_exponent, epochs, min_count, sample).", derived=CBOW_DERIVED)


def derive_cbow(config: CbowConfig, seed: int, workers: int, max_len: int) -> CbowConfig:
  """``config`` with the ``CBOW_DERIVED`` fields set from an experiment's flags."""
  return dataclasses.replace(config, seed=seed, threads=workers, max_len=max_len)


@dataclasses.dataclass
class SetMethodsConfig:
  """What the set experiments share: the Keras CBOW's config (``cbow``, whose dim,
  negatives, noise_exponent, epochs, min_count and sample gensim uses too), how it runs,
  and the held-out evaluation.

  ``cbow.seed`` is ``seed``, ``cbow.threads`` is ``workers`` and ``cbow.max_len`` is
  ``keras_max_len()``: set here whatever ``cbow`` was given.
  """
  cbow: CbowConfig = cbow_field()
  keras_negatives: int = field(0, "Keras: negative samples per target (0 = --negatives, "
                               "which gensim uses).", lower=0)
  checkpoint_dir: str = field("", "Keras: checkpoint after every epoch here and resume an "
                              "interrupted run from it (empty: no checkpoints).")
  strategy: str = field("default", "tf.distribute strategy (multi_worker reads TF_CONFIG).",
                        choices=distribute.STRATEGIES)
  cpu_replicas: int = field(0, "Split the CPU into this many logical devices (to exercise "
                            "--strategy=mirrored on one machine); 0 = leave.", lower=0)
  workers: int = field(2, "Threads: gensim workers, the fused op's Hogwild threads and TF "
                       "intra-op threads.", lower=1)
  run_gensim: bool = field(True, "Also train and evaluate the gensim baseline.")
  eval_sets: int = field(2000, "Sets (of >= 3 elements) whose held-out element is removed "
                         "before training and predicted after (heldout_recall@k); 0 = none.",
                         lower=0)
  k: int = field(10, "Cut-off of every @k metric.", lower=1)
  seed: int = field(0, "Seed of training, evaluation sets and query sampling.")
  repeats: int = field(0, "Compared table through the harness (experiments.set_compare): "
                       "repeats, training seeds seed, seed+1, ... and on synthetic data a "
                       "release per repeat; 0 = no compared table.", lower=0)
  tune: str = field("off", "Compared table: on = every method gets --trials "
                    "configurations of its own search space, chosen on a validation "
                    "hold-out of the training sets, and the Keras CBOW trains with its "
                    "chosen one; off = one trial each, the flags' settings.",
                    choices=set_compare.TUNE)
  softmax: bool = field(True, "Compared table: the leave-one-out set softmax "
                        "(models.set_softmax) is a candidate for the exported model too.")
  fused: bool = field(True, "Compared table: the fused scorer ease+cbow (EASE's x·B plus "
                      "a validation-chosen weight times the Keras CBOW's prior-adjusted "
                      "score) is a candidate for the exported model too.")
  trials: int = field(8, "Compared table with --tune=on: trials per method (equal for all).",
                      lower=1, upper=len(set_compare.KNN_NEIGHBORS))
  verbose: int = field(1, "Keras fit verbosity (0 silent, 1 progress bar, 2 per epoch).",
                       lower=0, upper=2)

  def __post_init__(self):
    self.cbow = derive_cbow(self.cbow, self.seed, self.workers, self.keras_max_len())

  def keras_max_len(self) -> int:
    """Longest set the Keras CBOW uses (each experiment says how it follows its flags)."""
    raise NotImplementedError


@dataclasses.dataclass
class TableResult:
  """Outcome of a set experiment's ``run``: table rows, the printed table and its notes,
  and what was written (metrics.json path, SavedModel folder or "", the JSON payload)."""
  rows: List[Dict[str, Any]]
  table: str
  notes: List[str]
  metrics_path: pathlib.Path
  export_path: str
  payload: Dict[str, Any]


@dataclasses.dataclass
class TrainedElements:
  """The element tables one method trained: input vectors (the element embeddings) and
  output vectors (CBOW's prediction layer), rows indexed like ``vocab``; its speed."""
  name: str
  vocab: List[str]
  vectors: np.ndarray
  output_vectors: np.ndarray
  train_seconds: float
  tokens_per_s: float
  kernel: str = ""   # Keras: the update path that ran ("fused" or "tf")
  noise_exponent: float = NOISE_EXPONENT   # its noise distribution ∝ count ** this

  def speed(self) -> Dict[str, Any]:
    """The table's speed columns: train_seconds, tokens_per_s and, for Keras, kernel."""
    return {"train_seconds": self.train_seconds, "tokens_per_s": self.tokens_per_s,
            **({"kernel": self.kernel} if self.kernel else {})}


def train_methods(config: SetMethodsConfig, vocab: Sequence[str], indptr: np.ndarray,
                  indices: np.ndarray, window: int, log_dir: Optional[str] = None,
                  log: common.Log = common.no_log, knobs: Optional[CbowConfig] = None):
  """Trains the Keras CBOW (and gensim when ``config.run_gensim``) on one CSR corpus.

  Args:
    config: the experiment's config; the Keras CBOW trains with ``config.cbow`` (its
      negatives replaced by ``keras_negatives`` when set).
    vocab, indptr, indices: the training corpus (held-out elements already removed).
    window: gensim window (not shrunk): at least ``max_len - 1`` covers a whole set.
    log_dir: Keras TensorBoard folder.
    log: progress messages.
    knobs: the Keras CBOW's settings instead of ``config.cbow`` (``tuned_cbow``).

  Returns:
    (methods: [TrainedElements], keras CbowResult).
  """
  knobs = knobs or config.cbow
  result = cbow_training.train_cbow(
      indptr, indices, vocab,
      dataclasses.replace(knobs, negatives=config.keras_negatives or knobs.negatives),
      strategy=config.strategy, log_dir=log_dir,
      checkpoint_dir=config.checkpoint_dir or None, verbose=config.verbose, log=log)
  log(f"{KERAS} ({result.kernel} update): {result.train_seconds:.1f} s, "
      f"{result.tokens_per_s:,.0f} tokens/s")
  methods = [TrainedElements(KERAS, result.vocab, result.vectors, result.output_vectors,
                             result.train_seconds, result.tokens_per_s, result.kernel,
                             knobs.noise_exponent)]
  if config.run_gensim:
    g = gensim_cbow.train_gensim_cbow(
        sets.token_lists(indptr, indices, vocab, seed=config.seed), dim=knobs.dim,
        window=window, negatives=knobs.negatives, epochs=knobs.epochs,
        min_count=knobs.min_count, sample=knobs.sample, workers=config.workers,
        seed=config.seed, noise_exponent=knobs.noise_exponent)
    log(f"{GENSIM}: {g.train_seconds:.1f} s, {g.tokens_per_s:,.0f} tokens/s")
    methods.append(TrainedElements(GENSIM, g.vocab, g.vectors, g.output_vectors,
                                   g.train_seconds, g.tokens_per_s,
                                   noise_exponent=knobs.noise_exponent))
  return methods, result


def prior_key(k: int) -> str:
  """Key of heldout_recall@k with the noise prior added to the CBOW scores."""
  return f"heldout_recall@{k}+prior"


def heldout_scores(held: set_embeddings.HeldOut, methods: Sequence[TrainedElements],
                   vocab: Sequence[str], k: int, seed: int, min_count: int,
                   ease_max_items: int = ease.MAX_ITEMS,
                   log: common.Log = common.no_log) -> Dict[str, Dict[str, Any]]:
  """heldout_recall@k / ndcg@k of every method, of the EASE and item-kNN peers and of the
  popularity and random baselines.

  A CBOW method also gets ``heldout_recall@k+prior``: its scores plus the log of its
  negative-sampling noise distribution (its noise exponent · log training count),
  which turns the lift-like raw score into an estimate of log P(element | set).
  EASE's λ is chosen on a validation split of the training sets
  (``set_embeddings.validation_hold_out``, as many sets as ``held``; evaluation targets
  never enter) over ``ease.LAMBDA_GRID``, then EASE is refitted on all training sets. It
  models every element while the vocabulary fits ``ease_max_items``; beyond, those of
  >= ``min_count`` training sets (never fewer than ``ease.MIN_COUNT``), at most the
  ``ease_max_items`` most frequent; its row adds
  ``ease_lambda``, ``ease_validation`` (λ → validation recall), ``ease_validation_sets``,
  ``ease_min_count`` and ``ease_items`` (elements modelled; fewer than the vocabulary:
  ``ease_restricted``).

  Returns:
    method name → {"heldout_recall@k", "heldout_ndcg@k", "unanswered"[, prior key]
    [, EASE's keys]}.
  """
  counts = np.bincount(held.train_indices, minlength=len(vocab))
  out: Dict[str, Dict[str, Any]] = {}
  for m in methods:
    rows = case_encoder.map_elements(vocab, m.vocab)
    prior = set_embeddings.noise_log_prior(counts, m.noise_exponent)
    out[m.name] = set_embeddings.heldout_recall(
        held, set_embeddings.cbow_scorer(rows, m.vectors, m.output_vectors), k)
    out[m.name][prior_key(k)] = set_embeddings.heldout_recall(
        held, set_embeddings.cbow_scorer(rows, m.vectors, m.output_vectors, prior),
        k)[f"heldout_recall@{k}"]
  val = set_embeddings.validation_hold_out(held, len(held), seed=seed)
  ease_min_count = ease.modelled_min_count(min_count)
  lam, curve = ease.tune(
      val.train_indptr, val.train_indices, len(vocab),
      lambda s: set_embeddings.heldout_recall(val, s, k)[f"heldout_recall@{k}"],
      min_count=ease_min_count, max_items=ease_max_items, log=log)
  model = ease.fit(held.train_indptr, held.train_indices, len(vocab), lam,
                   min_count=ease_min_count, max_items=ease_max_items, log=log)
  out[EASE] = {**set_embeddings.heldout_recall(held, model.scorer(), k),
               "ease_lambda": lam, "ease_validation": curve, "ease_validation_sets": len(val),
               "ease_min_count": ease_min_count, "ease_items": len(model.items),
               "ease_restricted": model.restricted}
  out[ITEM_KNN] = set_embeddings.heldout_recall(
      held, item_knn.fit(held.train_indptr, held.train_indices, len(vocab)).scorer(), k)
  out[POPULARITY] = set_embeddings.heldout_recall(
      held, set_embeddings.popularity_scorer(held, len(vocab)), k)
  out[RANDOM] = set_embeddings.heldout_recall(
      held, set_embeddings.random_scorer(len(vocab), seed=seed), k)
  return out


def peer_variant(scores: Dict[str, Any]) -> str:
  """A peer row's settings in words ("λ=200", "λ=200, 30,000 most frequent elements"):
  EASE's chosen λ and, when it was restricted, how many elements it modelled; "" else."""
  if "ease_lambda" not in scores:
    return ""
  return f"λ={scores['ease_lambda']:g}" + (
      f", {scores['ease_items']:,d} most frequent elements"
      if scores.get("ease_restricted") else "")


def peer_note(heldout: Dict[str, Dict[str, Any]]) -> str:
  """The table note on the EASE and item-kNN rows (chosen λ, the validation split)."""
  return (f"{EASE}: Steck's closed-form linear set completion, {peer_variant(heldout[EASE])} "
          f"chosen on a validation hold-out of {heldout[EASE]['ease_validation_sets']:,d} "
          f"training sets (the evaluation sets' held-out elements never enter) over "
          f"{len(ease.LAMBDA_GRID)} values; beyond {ease.MAX_ITEMS:,d} elements (a dense "
          f"n² inverse) it models those of >= {heldout[EASE]['ease_min_count']} training "
          f"sets, at most the {ease.MAX_ITEMS:,d} most frequent, the rest ranked by "
          f"popularity below them. "
          f"{ITEM_KNN}: cosine co-occurrence neighbours, scores summed over the set.")


def random_vectors(num: int, dim: int, seed: int) -> np.ndarray:
  """float32 [num, dim] untrained element vectors: the reference of every similarity score."""
  return np.random.default_rng(seed).standard_normal((num, dim)).astype(np.float32)


def compared_table(config: SetMethodsConfig, corpus: Callable[[int], set_compare.Corpus],
                   window: int, log: common.Log = common.no_log
                   ) -> Optional[set_compare.SetComparison]:
  """The harness's compared table (``set_compare``) when ``config.repeats`` > 0.

  Args:
    corpus: repeat → its held-out Corpus (cached by the caller or cheap to rebuild).
    window: gensim's window in the flags' configuration.
  """
  if not config.repeats:
    return None
  trials = config.trials if config.tune == "on" else 1
  methods = set_compare.set_methods_list(
      config.cbow, window, config.workers, config.k, trials, config.seed, config.run_gensim,
      softmax_config(config) if config.softmax else None, log)
  result = set_compare.compare_sets(methods, corpus, config.repeats, trials, config.seed,
                                    fused_k=config.k if config.fused else None, log=log)
  log(f"compared: tuning {result.tune_seconds:.1f} s, final fits "
      f"{result.evaluate_seconds:.1f} s; ours {result.table.ours}, best peer "
      f"{result.table.best_peer}")
  return result


def softmax_config(config: SetMethodsConfig) -> set_softmax.SoftmaxConfig:
  """The set softmax's flags' configuration: the CBOW's dim, min_count and max_len."""
  return set_softmax.SoftmaxConfig(dim=config.cbow.dim, min_count=config.cbow.min_count,
                                   max_len=config.cbow.max_len, seed=config.seed)


def tuned_cbow(config: SetMethodsConfig,
               compared: Optional[set_compare.SetComparison]) -> CbowConfig:
  """``config.cbow`` with the compared table's chosen Keras values (``--tune=on``): those
  of the Keras CBOW row (raw or +prior) better on development data."""
  if compared is None or config.tune != "on":
    return config.cbow
  rows = [compared.table.row(n) for n in (set_compare.KERAS, set_compare.KERAS_PRIOR)]
  chosen = max(rows, key=lambda r: r.dev).config
  return dataclasses.replace(config.cbow, fused_learning_rate=0.0, **chosen)


def cached(make: Callable[[int], Any]) -> Callable[[int], Any]:
  """``make`` called once per repeat index."""
  memo: Dict[int, Any] = {}
  return lambda repeat: memo[repeat] if repeat in memo else memo.setdefault(
      repeat, make(repeat))
