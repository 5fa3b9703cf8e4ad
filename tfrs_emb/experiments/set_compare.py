"""The set experiments' compared table: every set recommender through ``harness.compare``.

Rows: the Keras CBOW scored raw and with its noise prior, optionally the
leave-one-out set softmax (``models.set_softmax``) and the fused scorer ``ease+cbow``
(x·B_EASE + w · (CBOW score + log prior), below): what the exported ``SetRecommender``
can serve ("ours" is the one better on development data, except that ``ease+cbow``,
the conservative candidate (with two or more trials its weights include w = 0, EASE
alone), stays "ours" unless another beats it there by more than one standard error:
``harness.prefer_within_one_se``); gensim's
CBOW (raw and with its prior), EASE, item-kNN and popularity. Each method with
hyper-parameters gets the same number of trials over its own documented search space
(``KERAS_SPACE``, ``SOFTMAX_SPACE``, ``GENSIM_SPACE``, ``ease_space``, ``KNN_NEIGHBORS``;
trial 0 is the configuration the flags give, the others a seeded Latin hypercube,
``draw_space``), fitted on the training sets of a validation hold-out carved from the
training sets (``set_embeddings.validation_hold_out``:
the evaluation sets' held-out elements never enter) and scored there. The chosen
configurations are then refitted per repeat (training seed ``seed + repeat``; on
synthetic data a release per repeat) on all training sets and scored on the evaluation
sets: per set 1 when its held-out element is in the top k (heldout_recall@k), mean
[95 % CI] over repeats × sets, and ours − best peer with its verdict.

An item is one (release, set row, held-out element); a training split's ids are its set
rows, so the harness's check that no evaluation item reached a choosing step is exact.

The fused scorer is built on two other rows' choices: after ``keras_cbow+prior`` and
``ease`` are tuned (their trials), it takes their chosen configuration and λ (the same
memoized fits) and chooses only the weight w of the CBOW term on the same validation
hold-out, among ``trials`` values of ``FUSION_WEIGHTS`` (w = 0 is EASE alone; a tie goes
to the smaller w). w is relative: the CBOW term is first scaled to the spread of the EASE
term on training sets (``FUSION_SCALE_SETS`` of them). Its EASE term covers at most
``FUSED_MAX_ITEMS`` elements (the most frequent; the export's B is n² float32) and only the
CBOW's vocabulary.
"""

import dataclasses
import itertools
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.data import sets
from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.metrics import comparison
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow_training
from tfrs_emb.models import ease
from tfrs_emb.models import gensim_cbow
from tfrs_emb.models import item_knn
from tfrs_emb.models import set_recommender
from tfrs_emb.models import set_softmax
from tfrs_emb.models.cbow import CbowConfig

KERAS, KERAS_PRIOR = "keras_cbow", "keras_cbow+prior"
SOFTMAX = "keras_softmax"   # models.set_softmax: leave-one-out full softmax
GENSIM, GENSIM_PRIOR = "gensim_cbow", "gensim_cbow+prior"
EASE, ITEM_KNN, POPULARITY = "ease", "item_knn", "popularity"
FUSED = "ease+cbow"   # x·B_EASE + w · (Keras CBOW score + log prior)
# Rows that may be "ours": what the exported SetRecommender can serve.
OURS = (KERAS, KERAS_PRIOR, SOFTMAX, FUSED)
TUNE = ("on", "off")

# Documented search spaces (one value per key drawn per trial).
KERAS_SPACE: Mapping[str, Tuple[Any, ...]] = {
    "learning_rate": (0.005, 0.01, 0.025, 0.05, 0.1),
    "epochs": (5, 10, 20),
    "max_len": (8, 16, 32, 64),
    "negatives": (3, 5, 10, 15),
    "noise_exponent": (0.3, 0.5, 0.75, 1.0),
    "sample": (0.0, 1e-4, 1e-3),
}
GENSIM_SPACE: Mapping[str, Tuple[Any, ...]] = {
    "alpha": (0.0125, 0.025, 0.05, 0.1),
    "negative": (3, 5, 10, 15),
    "window": (4, 8, 16, 32, 64),
    "sample": (0.0, 1e-4, 1e-3),
    "ns_exponent": (0.3, 0.5, 0.75, 1.0),
    "epochs": (5, 10, 20),
}
SOFTMAX_SPACE: Mapping[str, Tuple[Any, ...]] = {
    "learning_rate": (0.001, 0.003, 0.01),
    "epochs": (5, 10, 20),
    "dim": (32, 64, 128),
    "dropout": (0.0, 0.2, 0.5),
}
# EASE: λ on a log grid of as many points as the budget (the flags' λ first).
EASE_DEFAULT_LAMBDA = 200.0
EASE_LAMBDA_RANGE = (1.0, 1e4)
# item-kNN: neighbours kept per element (0 = all), the default first.
KNN_NEIGHBORS = (0, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000)
# Fused scorer: relative CBOW weights, coarse to fine (any prefix spreads over the range;
# 0 = EASE alone). A budget of T tries the first T, smallest first, so a validation tie
# goes to the smaller CBOW weight: the CBOW term must earn its place.
FUSION_WEIGHTS = (0.5, 0.0, 0.1, 2.0, 0.25, 1.0, 0.05, 4.0, 0.15, 0.75, 0.02, 8.0)
FUSION_SCALE_SETS = 256   # training sets whose score spreads scale the CBOW term
FUSED_MAX_ITEMS = 10_000  # EASE term of the fused scorer: B ≤ 400 MB float32


@dataclasses.dataclass(frozen=True)
class SetTrain:
  """A training split's data: CSR sets over ``vocab``."""
  vocab: Tuple[str, ...]
  indptr: np.ndarray
  indices: np.ndarray


@dataclasses.dataclass(frozen=True)
class SetItems:
  """An evaluated split's data: the held-out sets (``held.ctx_*``, ``held.targets``)."""
  vocab: Tuple[str, ...]
  held: set_embeddings.HeldOut


@dataclasses.dataclass(frozen=True)
class Corpus:
  """One release's held-out split: ``release`` tags its items (synthetic repeats)."""
  vocab: Tuple[str, ...]
  held: set_embeddings.HeldOut
  release: Any = 0


def _train_split(vocab, held: set_embeddings.HeldOut, rows: np.ndarray, release) -> harness.Split:
  return harness.Split([(release, int(r)) for r in rows],
                       SetTrain(tuple(vocab), held.train_indptr, held.train_indices))


def _item_split(vocab, held: set_embeddings.HeldOut, rows: np.ndarray,
                release) -> harness.Split:
  return harness.Split([(release, int(r), int(t)) for r, t in zip(rows, held.targets)],
                       SetItems(tuple(vocab), held))


def evaluation_split(corpus: Corpus) -> harness.Evaluation:
  """All training sets to fit on, the evaluation sets as items."""
  rows = np.arange(len(corpus.held.train_indptr) - 1)
  return harness.Evaluation(_train_split(corpus.vocab, corpus.held, rows, corpus.release),
                            _item_split(corpus.vocab, corpus.held, corpus.held.set_ids,
                                        corpus.release))


def development_split(corpus: Corpus, seed: int) -> harness.Development:
  """The validation hold-out of ``corpus``'s training sets (as many sets as it evaluates),
  its items named by the corpus rows they came from."""
  held = corpus.held
  val = set_embeddings.validation_hold_out(held, len(held), seed=seed)
  rest = np.ones(len(held.train_indptr) - 1, bool)
  rest[held.set_ids] = False
  # validation corpus rows: every non-evaluation set, then every evaluation set's remainder
  source_rows = np.concatenate([np.nonzero(rest)[0], held.set_ids])
  return harness.Development(
      _train_split(corpus.vocab, val, source_rows, corpus.release),
      _item_split(corpus.vocab, val, source_rows[val.set_ids], corpus.release))


def draw_space(default: Mapping[str, Any], grid: Mapping[str, Sequence[Any]], trials: int,
               seed: int) -> Tuple[Dict[str, Any], ...]:
  """``trials`` distinct configurations: ``default`` first, then ``trials − 1`` from a
  seeded Latin hypercube over ``grid`` (fewer when the product is smaller).

  Each key's values are dealt in seeded rounds (every value once per round, as many
  rounds as the draws need) and the keys' columns shuffled independently, so within the
  draws a key's values appear as evenly as the budget allows: with 3 draws, a key of 3
  values tries each once (random draws from the product can miss one). A draw that
  repeats another configuration (rare in a large product) is replaced by a seeded unused
  point of the product, which can unbalance that spread.

  Raises:
    ValueError: ``trials`` < 1, or a key of ``grid`` has no value.
  """
  if trials < 1:
    raise ValueError(f"trials={trials} must be >= 1")
  empty = [k for k, values in grid.items() if not len(values)]
  if empty:
    raise ValueError(f"search-space keys without values: {empty}")
  keys = list(grid)
  first = tuple(default[k] for k in keys)
  product = list(itertools.product(*(grid[k] for k in keys)))
  n = min(max(0, trials - 1), len(product) - (first in product))
  rng = np.random.default_rng(seed)
  columns = []
  for k in keys:
    dealt = [i for _ in range(-(-n // len(grid[k]))) for i in rng.permutation(len(grid[k]))]
    columns.append([grid[k][i] for i in rng.permutation(dealt[:n])])
  drawn, seen = [], {first}
  for c in zip(*columns):
    if c not in seen:
      drawn.append(c)
      seen.add(c)
  unused = [c for c in product if c not in seen]
  for i in rng.permutation(len(unused))[:n - len(drawn)]:
    drawn.append(unused[i])
  return tuple(dict(zip(keys, c)) for c in [first] + drawn)


def ease_space(trials: int) -> Tuple[Dict[str, float], ...]:
  """EASE's λ: the default, then ``trials − 1`` points of a log grid over the range."""
  lo, hi = np.log10(EASE_LAMBDA_RANGE)
  grid = [float(f"{v:.3g}") for v in np.logspace(lo, hi, max(trials - 1, 0))]
  return tuple({"lam": v} for v in [EASE_DEFAULT_LAMBDA] + grid)


def hits(scorer: set_embeddings.Scorer, items: SetItems, k: int) -> np.ndarray:
  """float [n]: 1 where the held-out element ranks in the top k."""
  return (set_embeddings.heldout_ranks(items.held, scorer) < k).astype(np.float64)


@dataclasses.dataclass
class _Elements:
  """A trained CBOW's tables (the Keras model itself is not kept)."""
  vocab: List[str]
  vectors: np.ndarray
  output_vectors: np.ndarray
  noise_exponent: float
  counts: np.ndarray   # training count per corpus element


def _cbow_score(k: int, prior: bool):
  def score(model: Optional[_Elements], split: harness.Split) -> np.ndarray:
    if model is None:   # the trial diverged: it predicts nothing
      return np.zeros(len(split.ids))
    items: SetItems = split.data
    rows = case_encoder.map_elements(list(items.vocab), model.vocab)
    log_prior = (set_embeddings.noise_log_prior(model.counts, model.noise_exponent)
                 if prior else None)
    return hits(set_embeddings.cbow_scorer(rows, model.vectors, model.output_vectors,
                                           log_prior), items, k)
  return score


def keras_fit(base: CbowConfig, log: common.Log = common.no_log):
  """``(trial, SetTrain, seed) -> _Elements`` (None when training diverged): the Keras
  CBOW with ``base`` updated by the trial's ``KERAS_SPACE`` values (its learning rate
  whichever update path runs)."""
  def fit(trial, data: SetTrain, seed: int) -> Optional[_Elements]:
    config = dataclasses.replace(base, seed=seed, fused_learning_rate=0.0, **trial)
    try:
      r = cbow_training.train_cbow(data.indptr, data.indices, list(data.vocab), config)
    except FloatingPointError as e:
      log(f"{KERAS} {dict(trial)}: {e}")
      return None
    counts = np.bincount(data.indices, minlength=len(data.vocab))
    return _Elements(r.vocab, r.vectors, r.output_vectors, config.noise_exponent,
                     counts)
  return fit


def gensim_fit(base: CbowConfig, workers: int):
  """``(trial, SetTrain, seed) -> _Elements``: gensim's CBOW with the trial's
  ``GENSIM_SPACE`` values, dim and min_count from ``base``."""
  def fit(trial, data: SetTrain, seed: int) -> _Elements:
    g = gensim_cbow.train_gensim_cbow(
        sets.token_lists(data.indptr, data.indices, list(data.vocab), seed=seed),
        dim=base.dim, window=trial["window"], negatives=trial["negative"],
        epochs=trial["epochs"], min_count=base.min_count, sample=trial["sample"],
        workers=workers, seed=seed, noise_exponent=trial["ns_exponent"],
        alpha=trial["alpha"])
    return _Elements(g.vocab, g.vectors, g.output_vectors, trial["ns_exponent"],
                     np.bincount(data.indices, minlength=len(data.vocab)))
  return fit


def softmax_fit(base: set_softmax.SoftmaxConfig):
  """``(trial, Split, seed) -> SoftmaxResult``: ``base`` with the trial's
  ``SOFTMAX_SPACE`` values."""
  def fit(trial, train: harness.Split, seed: int) -> set_softmax.SoftmaxResult:
    d: SetTrain = train.data
    return set_softmax.train_set_softmax(d.indptr, d.indices, list(d.vocab),
                                         dataclasses.replace(base, seed=seed, **trial))
  return fit


def softmax_scorer(model: set_softmax.SoftmaxResult, vocab: Sequence[str]
                   ) -> set_embeddings.Scorer:
  """The exported SetRecommender's scores of ``model`` over corpus ``vocab``."""
  rows = case_encoder.map_elements(list(vocab), model.vocab)
  prior = np.zeros(len(vocab), np.float32)
  prior[model.source_ids] = model.bias
  return set_embeddings.cbow_scorer(rows, model.vectors, model.output_vectors, prior)


def on_sets(fit: Callable[[Mapping[str, Any], SetTrain, int], Any]
            ) -> Callable[[Mapping[str, Any], harness.Split, int], Any]:
  """``fit`` over a training Split's ``SetTrain`` as a harness fit."""
  return lambda trial, train, seed: fit(trial, train.data, seed)


@dataclasses.dataclass
class Fused:
  """The fused scorer x·B + w · scale · (CBOW score + log prior).

  Attributes:
    cbow: the Keras CBOW's tables (its vocab: the scorer's elements).
    items: int64 [n] corpus element ids with EASE weights (in the CBOW's vocab, at most
      ``FUSED_MAX_ITEMS``, the most frequent).
    weights: float32 [n, n] EASE's B over ``items``.
    scale: spread of the EASE term / spread of the CBOW term on training sets.
    w: the relative weight of the CBOW term.
  """
  cbow: _Elements
  items: np.ndarray
  weights: np.ndarray
  scale: float
  w: float

  @property
  def cbow_weight(self) -> float:
    """The CBOW term's factor in the scores: w · scale."""
    return self.w * self.scale

  def rows(self, vocab: Sequence[str]) -> np.ndarray:
    """int [len(vocab)]: each corpus element's CBOW row (-1: not in its vocab)."""
    return case_encoder.map_elements(list(vocab), self.cbow.vocab)

  def log_prior(self) -> np.ndarray:
    """float32 [corpus vocab]: the CBOW's noise log prior per corpus element."""
    return set_embeddings.noise_log_prior(self.cbow.counts, self.cbow.noise_exponent)


def _ease_term(items: np.ndarray, weights: np.ndarray, vocab_size: int
               ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
  """``(ctx_indptr, ctx_indices)`` -> float32 [num_sets, len(items)]: x·B, x the sets'
  binary rows over ``items`` (other context elements ignored, repeats count once)."""
  col = np.full(vocab_size, -1, np.int64)
  col[items] = np.arange(len(items))

  return lambda ctx_indptr, ctx_indices: np.asarray(
      ease.context_matrix(ctx_indptr, ctx_indices, col) @ weights, np.float32)


def _spread(scores: np.ndarray) -> float:
  """Median over rows of the standard deviation of a row's finite scores (0 if none)."""
  stds = [np.std(r[np.isfinite(r)]) for r in scores if np.isfinite(r).sum() > 1]
  return float(np.median(stds)) if stds else 0.0


def fuse(cbow: _Elements, model: ease.Ease, data: SetTrain, seed: int,
         max_items: int = FUSED_MAX_ITEMS) -> Fused:
  """The fused scorer of a CBOW and an EASE fit on ``data`` (w = 1): EASE's elements in the
  CBOW's vocabulary (the ``max_items`` most frequent), the CBOW term scaled to the EASE
  term's spread on up to ``FUSION_SCALE_SETS`` training sets (drawn with ``seed``)."""
  rows = case_encoder.map_elements(list(data.vocab), cbow.vocab)
  pos = np.nonzero(rows[model.items] >= 0)[0]
  if len(pos) > max_items:
    pos = np.sort(pos[np.argsort(-model.counts[model.items[pos]], kind="stable")[:max_items]])
  items = model.items[pos]
  weights = model.weights[np.ix_(pos, pos)]
  n = len(data.indptr) - 1
  sample = np.sort(np.random.default_rng(seed).choice(n, min(n, FUSION_SCALE_SETS),
                                                      replace=False))
  lengths = np.diff(data.indptr)[sample]
  ctx_indptr = np.concatenate([[0], np.cumsum(lengths)])
  ctx = (np.concatenate([data.indices[data.indptr[r]:data.indptr[r + 1]] for r in sample])
         if len(sample) else np.zeros(0, np.int64))
  known = np.nonzero(rows >= 0)[0]
  prior = set_embeddings.noise_log_prior(cbow.counts, cbow.noise_exponent)
  cbow_spread = _spread(set_embeddings.cbow_scorer(rows, cbow.vectors, cbow.output_vectors,
                                                   prior)(ctx_indptr, ctx)[:, known])
  ease_spread = _spread(_ease_term(items, weights, len(data.vocab))(ctx_indptr, ctx))
  scale = ease_spread / cbow_spread if cbow_spread > 0 and ease_spread > 0 else 1.0
  return Fused(cbow, items, weights, float(scale), 1.0)


def fused_scorer(model: Fused, vocab: Sequence[str]) -> set_embeddings.Scorer:
  """numpy scores of ``model`` over corpus ``vocab``: x·B + w·scale·(CBOW + log prior) for
  the CBOW's elements (x·B on ``items`` only), −inf for the others and for sets without a
  known element (as the exported SetRecommender)."""
  cbow = set_embeddings.cbow_scorer(model.rows(vocab), model.cbow.vectors,
                                    model.cbow.output_vectors, model.log_prior())
  term = _ease_term(model.items, model.weights, len(vocab))

  def score(ctx_indptr, ctx_indices):
    s = cbow(ctx_indptr, ctx_indices)
    s[np.isfinite(s)] *= np.float32(model.cbow_weight)   # −inf (no answer) stays
    s[:, model.items] += term(ctx_indptr, ctx_indices)
    return s
  return score


def fused_recommender(model: Fused, vocab: Sequence[str], k: int,
                      aliases: Optional[Mapping[str, str]] = None
                      ) -> set_recommender.SetRecommender:
  """The exported ``SetRecommender`` of ``model`` (corpus ``vocab``): the CBOW's vocab and
  tables, its log prior, EASE's B over ``items``, the CBOW factor and the corpus's
  spelling ``aliases``."""
  rows = model.rows(vocab)
  corpus_of = case_encoder.map_elements(model.cbow.vocab, list(vocab))
  return set_recommender.SetRecommender(
      model.cbow.vocab, model.cbow.vectors, model.cbow.output_vectors, k=k,
      log_prior=model.log_prior()[corpus_of], item_ids=rows[model.items],
      item_weights=model.weights, cbow_weight=model.cbow_weight, aliases=aliases)


def fusion_weights(trials: int) -> Tuple[float, ...]:
  """The fused row's w values in trial order: ``FUSION_WEIGHTS``' first ``trials`` sorted
  ascending (ties on validation go to the first listed, here the smaller weight), then
  the rest."""
  return tuple(sorted(FUSION_WEIGHTS[:trials])) + FUSION_WEIGHTS[trials:]


def fused_method(methods: Sequence[harness.Method], tuned: Mapping[str, harness.Tuned],
                 k: int, trials: int) -> harness.Method:
  """The ``ease+cbow`` row over ``methods``' ``keras_cbow+prior`` and ``ease`` rows and their
  ``tuned`` choices: one configuration per ``fusion_weights(trials)`` value (the CBOW's
  values, λ, w); its fits reuse theirs (one CBOW and one EASE fit per training data and
  seed)."""
  by_name = {m.name: m for m in methods}
  cbow_config = dict(tuned[KERAS_PRIOR].config)
  lam = tuned[EASE].config["lam"]

  def base_fit(config, train: harness.Split, seed: int) -> Optional[Fused]:
    cbow = by_name[KERAS_PRIOR].fit(cbow_config, train, seed)
    if cbow is None:   # the CBOW diverged
      return None
    return fuse(cbow, by_name[EASE].fit({"lam": config["lam"]}, train, seed), train.data,
                seed)
  base, _ = harness.memoized(base_fit)

  def fit(config, train: harness.Split, seed: int) -> Optional[Fused]:
    model = base({"lam": config["lam"]}, train, seed)
    return None if model is None else dataclasses.replace(model, w=config["w"])

  def score(model: Optional[Fused], split: harness.Split) -> np.ndarray:
    if model is None:
      return np.zeros(len(split.ids))
    return hits(fused_scorer(model, split.data.vocab), split.data, k)
  space = tuple({**cbow_config, "lam": lam, "w": w} for w in fusion_weights(trials))
  return harness.Method(FUSED, space, fit, score)


def softmax_default(base: set_softmax.SoftmaxConfig) -> Dict[str, Any]:
  """``base``'s values of ``SOFTMAX_SPACE``'s keys."""
  return {k: getattr(base, k) for k in SOFTMAX_SPACE}


def keras_default(base: CbowConfig) -> Dict[str, Any]:
  """The flags' values of ``KERAS_SPACE``'s keys (the learning rate of the path that runs)."""
  fused = base.fused() if base.kernel != "tf" else base
  return {"learning_rate": fused.learning_rate, "epochs": base.epochs,
          "max_len": base.max_len, "negatives": base.negatives,
          "noise_exponent": base.noise_exponent, "sample": base.sample}


def gensim_default(base: CbowConfig, window: int) -> Dict[str, Any]:
  """The flags' values of ``GENSIM_SPACE``'s keys (gensim's own default alpha)."""
  return {"alpha": 0.025, "negative": base.negatives, "window": window,
          "sample": base.sample, "ns_exponent": base.noise_exponent, "epochs": base.epochs}


def set_methods_list(base: CbowConfig, window: int, workers: int, k: int, trials: int,
                     seed: int, run_gensim: bool = True,
                     softmax: Optional[set_softmax.SoftmaxConfig] = None,
                     log: common.Log = common.no_log) -> List[harness.Method]:
  """The compared rows, each tunable one with at least ``trials`` configurations
  (``softmax``: also the set-softmax row, from these settings)."""
  keras, _ = harness.memoized(on_sets(keras_fit(base, log)))
  keras_space = draw_space(keras_default(base), KERAS_SPACE, trials, seed)
  methods = [harness.Method(KERAS, keras_space, keras, _cbow_score(k, False)),
             harness.Method(KERAS_PRIOR, keras_space, keras, _cbow_score(k, True))]
  if softmax is not None:
    methods.append(harness.Method(
        SOFTMAX, draw_space(softmax_default(softmax), SOFTMAX_SPACE, trials, seed),
        harness.memoized(softmax_fit(softmax))[0],
        lambda model, split: hits(softmax_scorer(model, split.data.vocab), split.data, k)))
  if run_gensim:
    gensim, _ = harness.memoized(on_sets(gensim_fit(base, workers)))
    gensim_space = draw_space(gensim_default(base, window), GENSIM_SPACE, trials, seed)
    methods += [harness.Method(GENSIM, gensim_space, gensim, _cbow_score(k, False)),
                harness.Method(GENSIM_PRIOR, gensim_space, gensim, _cbow_score(k, True))]

  def ease_fit(trial, train: harness.Split, seed: int):
    del seed   # closed form
    d: SetTrain = train.data
    return ease.fit(d.indptr, d.indices, len(d.vocab), trial["lam"],
                    min_count=ease.modelled_min_count(base.min_count))

  def knn_fit(trial, train: harness.Split, seed: int):
    del seed
    d: SetTrain = train.data
    return item_knn.fit(d.indptr, d.indices, len(d.vocab), trial["neighbors"])

  def popularity_fit(trial, train: harness.Split, seed: int):
    del trial, seed
    d: SetTrain = train.data
    counts = np.bincount(d.indices, minlength=len(d.vocab)).astype(np.float32)
    return lambda ptr, ctx: np.broadcast_to(counts, (len(ptr) - 1, len(counts))).copy()

  def scorer_score(model, split: harness.Split) -> np.ndarray:
    return hits(model.scorer(), split.data, k)

  methods += [
      harness.Method(EASE, ease_space(trials), ease_fit, scorer_score),
      harness.Method(ITEM_KNN, tuple({"neighbors": n} for n in KNN_NEIGHBORS), knn_fit,
                     scorer_score),
      harness.Method(POPULARITY, harness.NO_HYPERPARAMETERS, popularity_fit,
                     lambda model, split: hits(model, split.data, k))]
  return methods


@dataclasses.dataclass
class SetComparison:
  """The compared table, the extra comparisons, the tuning's wall time and the
  evaluation's; ``methods`` (every row, the fused one included) and ``evaluation``
  (repeat → its Evaluation, cached) give back a row's final fits (``final_model``)."""
  table: harness.Comparison
  extra: Dict[str, comparison.Difference]
  tune_seconds: float
  evaluate_seconds: float
  methods: Dict[str, harness.Method]
  evaluation: Callable[[int], harness.Evaluation]
  seed: int

  def final_model(self, name: str, repeat: int = 0) -> Any:
    """Row ``name``'s chosen configuration fitted on repeat ``repeat``'s training sets with
    its training seed: the fit that was evaluated (memoized rows return it, others refit)."""
    return self.methods[name].fit(self.table.row(name).config,
                                  self.evaluation(repeat).train, self.seed + repeat)

  def recommender(self, vocab: Sequence[str], k: int,
                  aliases: Optional[Mapping[str, str]] = None
                  ) -> set_recommender.SetRecommender:
    """The exported SetRecommender of "ours" when it is the set softmax or the fused
    scorer (the repeat-0 final fit over corpus ``vocab``; ``aliases``: its spellings)."""
    ours = self.table.ours
    if ours == SOFTMAX:
      model = self.final_model(ours)
      return set_recommender.SetRecommender(model.vocab, model.vectors,
                                            model.output_vectors, k=k, log_prior=model.bias,
                                            aliases=aliases)
    if ours == FUSED:
      return fused_recommender(self.final_model(ours), vocab, k, aliases)
    raise ValueError(f"ours is {ours!r}: its tables are the Keras CBOW's")

  def columns(self, k: int) -> List[str]:
    return harness.Comparison.columns(f"heldout_recall@{k}")

  def rows(self, k: int) -> List[Dict[str, Any]]:
    return self.table.table_rows(f"heldout_recall@{k}")

  def notes(self, k: int) -> List[str]:
    t = self.table
    chosen = "; ".join(f"{r.method}: " + (", ".join(f"{a}={b:g}" if isinstance(b, float)
                                                   else f"{a}={b}"
                                                   for a, b in r.config.items()) or "-")
                       for r in t.rows)
    fused = []
    if FUSED in self.methods:
      cbow, lam, w = t.row(KERAS_PRIOR).trials, t.row(EASE).trials, t.row(FUSED).trials
      fused = [f"{FUSED}: x·B_EASE + w · scale · ({KERAS_PRIOR} score + log prior) on "
               f"{KERAS_PRIOR}'s chosen configuration and {EASE}'s chosen λ (their "
               f"{cbow} and {lam} trials, the same fits), w chosen on the same validation "
               f"hold-out among {list(fusion_weights(w)[:w])} (ties to the smaller w; w = 0: "
               f"EASE alone; scale puts "
               f"the CBOW term on the EASE term's spread): its search saw {cbow} CBOW and "
               f"{lam} EASE fits and {w} weights, each other row its own trials' fits."]
    return [f"compared (harness): heldout_recall@{k} per evaluation set, mean [95 % CI] "
            f"over {t.repeats} repeat(s) × sets; each method's configuration chosen on a "
            f"validation hold-out of the training sets ({self.tune_seconds:.1f} s of "
            f"tuning, {self.evaluate_seconds:.1f} s of final fits); ours = {t.ours} "
            f"(the exported scoring better on validation"
            + (f"; {FUSED} unless beaten there by more than one standard error"
               if FUSED in self.methods else "") + f"), best peer = {t.best_peer}.",
            "chosen: " + chosen,
            "also: " + "; ".join(f"{name}: {d.text()} {d.verdict}"
                                 for name, d in self.extra.items())] + fused

  def as_dict(self) -> Dict[str, Any]:
    return {**self.table.as_dict(), "tune_seconds": self.tune_seconds,
            "evaluate_seconds": self.evaluate_seconds,
            "extra": {n: {**d.as_dict(), "verdict": d.verdict} for n, d in self.extra.items()}}


def compare_sets(methods: Sequence[harness.Method], corpus: Callable[[int], Corpus],
                 repeats: int, trials: int, seed: int,
                 chooser: harness.Chooser = harness.best_mean,
                 fused_k: Optional[int] = None,
                 log: common.Log = common.no_log) -> SetComparison:
  """Tunes on ``corpus(0)``'s validation hold-out, evaluates ``corpus(r)`` per repeat.

  Args:
    methods: ``set_methods_list`` (or any rows over ``SetTrain`` / ``SetItems`` splits).
    corpus: repeat → its Corpus (the same one on real data; a release per repeat on
      synthetic data, each with its own ``release`` tag).
    repeats, trials, seed, chooser: as ``harness.compare``.
    fused_k: also the fused row ``ease+cbow`` (``fused_method``, scored at this k) over
      ``methods``' ``keras_cbow+prior`` and ``ease`` rows; None: not.
  """
  t0 = time.perf_counter()
  marks: List[float] = []
  splits: Dict[int, harness.Evaluation] = {}

  def evaluation(repeat: int) -> harness.Evaluation:
    if not marks:
      marks.append(time.perf_counter())
    if repeat not in splits:   # one Split per repeat: memoized fits are found again
      splits[repeat] = evaluation_split(corpus(repeat))
    return splits[repeat]

  rows = {m.name: m for m in methods}
  derived = []
  if fused_k is not None:
    def make_fused(tuned):
      rows[FUSED] = fused_method(methods, tuned, fused_k, trials)
      return rows[FUSED]
    derived.append(make_fused)
  names = [m.name for m in methods] + ([FUSED] if derived else [])
  table = harness.compare(methods, development_split(corpus(0), seed), evaluation,
                          repeats=repeats, seed=seed, trials=trials,
                          ours=[n for n in OURS if n in names], chooser=chooser,
                          ours_chooser=harness.prefer_within_one_se([FUSED], chooser),
                          derived=derived, log=log)
  end = time.perf_counter()
  # Keras CBOW (its scoring better on development data) vs gensim and popularity, and
  # ours vs every peer.
  cbow = max((n for n in (KERAS, KERAS_PRIOR) if n in names),
             key=lambda n: table.row(n).dev)
  pairs = [(cbow, p) for p in (GENSIM, GENSIM_PRIOR, POPULARITY)]
  pairs += [(table.ours, p) for p in names if p not in OURS]
  pairs += [(FUSED, EASE)]
  extra = {f"{a} − {b}": table.difference(a, b)
           for a, b in dict.fromkeys(pairs) if a in names and b in names}
  return SetComparison(table, extra, marks[0] - t0, end - marks[0], rows, evaluation, seed)
