"""What jader_w2v and set2vec share: the CBOW knobs, training Keras CBOW and gensim side by
side on the same corpus, and the held-out next-element evaluation with its baselines."""

import dataclasses
import pathlib
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from tfrs_emb.data import sets
from tfrs_emb.experiments import common
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow
from tfrs_emb.models import cbow_kernel
from tfrs_emb.models import ease
from tfrs_emb.models import gensim_cbow
from tfrs_emb.models import item_knn

KERAS, GENSIM, POPULARITY, RANDOM = "keras_cbow", "gensim_cbow", "popularity", "random"
# The peer recommenders every set table carries (no embedding: heldout_recall only).
EASE, ITEM_KNN = "ease", "item_knn"


@dataclasses.dataclass
class CbowConfig:
  """CBOW and evaluation knobs shared by the set experiments (both methods get the same,
  except --keras_negatives and the Keras-only knobs)."""
  dim: int = field(64, "Embedding dimension (both methods).", lower=1)
  negatives: int = field(5, "Negative samples per target (gensim; Keras too unless "
                         "--keras_negatives).", lower=1)
  keras_negatives: int = field(0, "Keras: negative samples per target (0 = --negatives).",
                               lower=0)
  noise_exponent: float = field(cbow.NOISE_EXPONENT, "Noise distribution ∝ count ** this "
                               "(both; word2vec's 0.75; lower ranks frequent elements "
                               "higher).", lower=0.0)
  shared_negatives: int = field(5, "Keras: noise elements drawn per set (noise_per_set) or "
                                "per batch, shared by its targets.", lower=1)
  noise_per_set: bool = field(True, "Keras: each set draws its own noise elements (one draw "
                              "per batch leaves rare elements almost never noise).")
  epochs: int = field(5, "Epochs (both methods).", lower=1)
  min_count: int = field(5, "Minimum number of sets of an element (both).", lower=1)
  sample: float = field(1e-3, "Subsampling threshold (both; 0 = off).", lower=0.0)
  learning_rate: float = field(0.07, "Keras initial learning rate (0.01 with word2vec "
                               "updates at ~700k sets; BUILD_NOTES.md, JADER CBOW).",
                               lower=0.0)
  min_learning_rate: float = field(2e-5, "Keras final learning rate (linear decay).",
                                   lower=0.0)
  optimizer: str = field("sgd", "Keras optimizer.", choices=("sgd", "adagrad"))
  input_update: str = field("exact", "Keras: each context vector gets dh/(L-1) (exact, the "
                            "gradient of the mean) or the whole dh (word2vec, as gensim).",
                            choices=cbow.INPUT_UPDATES)
  kernel: str = field("auto", "Keras update path: the fused C++ epoch op (fused; built by "
                      "`make install`), the pure-TF step (tf), or fused when it loads "
                      "(auto; a fallback is logged).", choices=cbow_kernel.KERNELS)
  noise_per_target: bool = field(False, "Keras, fused op: every target draws --negatives "
                                 "noise elements of its own (as gensim) instead of sharing "
                                 "its set's --shared_negatives.")
  fused_learning_rate: float = field(0.0, "Keras initial learning rate when the fused op "
                                     "runs (0 = --learning_rate, which the TF step keeps).",
                                     lower=0.0)
  fused_input_update: str = field("", "Keras input update when the fused op runs (empty = "
                                  "--input_update, which the TF step keeps).",
                                  choices=("",) + cbow.INPUT_UPDATES)
  fused_tokens_per_batch: int = field(0, "Keras, fused op: elements per batch of its epoch "
                                      "plan, which only orders the sets (smaller = finer "
                                      "mix of set lengths; 0 = --tokens_per_batch).", lower=0)
  tokens_per_batch: int = field(8192, "Keras: elements per batch (rows × set length).",
                                lower=2)
  steps_per_execution: int = field(8, "Keras train steps per tf.function call.", lower=1)
  checkpoint_dir: str = field("", "Keras: checkpoint after every epoch here and resume an "
                              "interrupted run from it (empty: no checkpoints).")
  row_multiple: int = field(0, "Keras: batch rows a multiple of this (0: the replicas).",
                            lower=0)
  strategy: str = field("default", "tf.distribute strategy (multi_worker reads TF_CONFIG).",
                        choices=("default", "mirrored", "multi_worker"))
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
  verbose: int = field(1, "Keras fit verbosity (0 silent, 1 progress bar, 2 per epoch).",
                       lower=0, upper=2)


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
class Method:
  """A trained element embedding: input vectors (embeddings) and output vectors (CBOW's
  prediction layer), rows indexed like ``vocab``."""
  name: str
  vocab: List[str]
  vectors: np.ndarray
  output_vectors: np.ndarray
  train_seconds: float
  tokens_per_s: float
  kernel: str = ""   # Keras: the update path that ran ("fused" or "tf")
  noise_exponent: float = cbow.NOISE_EXPONENT   # its noise distribution ∝ count ** this

  def speed(self) -> Dict[str, Any]:
    """The table's speed columns: train_seconds, tokens_per_s and, for Keras, kernel."""
    return {"train_seconds": self.train_seconds, "tokens_per_s": self.tokens_per_s,
            **({"kernel": self.kernel} if self.kernel else {})}


def train_methods(config: CbowConfig, vocab: Sequence[str], indptr: np.ndarray,
                  indices: np.ndarray, max_len: int, window: int,
                  log_dir: Optional[str] = None, log: common.Log = common.no_log):
  """Trains the Keras CBOW (and gensim when ``config.run_gensim``) on one CSR corpus.

  Args:
    config: the knobs.
    vocab, indptr, indices: the training corpus (held-out elements already removed).
    max_len: Keras: longest set used (longer ones keep a random subset per epoch).
    window: gensim window (not shrunk): at least ``max_len - 1`` covers a whole set.
    log_dir: Keras TensorBoard folder.
    log: progress messages.

  Returns:
    (methods: [Method], keras CbowResult).
  """
  result = cbow.train_cbow(
      indptr, indices, vocab, dim=config.dim,
      negatives=config.keras_negatives or config.negatives,
      shared_negatives=config.shared_negatives, epochs=config.epochs,
      min_count=config.min_count, sample=config.sample,
      learning_rate=config.learning_rate, min_learning_rate=config.min_learning_rate,
      optimizer=config.optimizer, tokens_per_batch=config.tokens_per_batch,
      max_len=max_len, seed=config.seed, strategy=config.strategy, log_dir=log_dir,
      verbose=config.verbose, steps_per_execution=config.steps_per_execution,
      noise_per_set=config.noise_per_set, input_update=config.input_update,
      kernel=config.kernel, threads=config.workers, noise_per_target=config.noise_per_target,
      fused_learning_rate=config.fused_learning_rate or None,
      fused_input_update=config.fused_input_update or None,
      fused_tokens_per_batch=config.fused_tokens_per_batch or None,
      noise_exponent=config.noise_exponent, checkpoint_dir=config.checkpoint_dir or None,
      row_multiple=config.row_multiple, log=log)
  log(f"{KERAS} ({result.kernel} update): {result.train_seconds:.1f} s, "
      f"{result.tokens_per_s:,.0f} tokens/s")
  methods = [Method(KERAS, result.vocab, result.vectors,
                    result.output_vectors, result.train_seconds,
                    result.tokens_per_s, result.kernel, config.noise_exponent)]
  if config.run_gensim:
    g = gensim_cbow.train_gensim_cbow(
        sets.token_lists(indptr, indices, vocab, seed=config.seed), dim=config.dim,
        window=window, negatives=config.negatives, epochs=config.epochs,
        min_count=config.min_count, sample=config.sample, workers=config.workers,
        seed=config.seed, noise_exponent=config.noise_exponent)
    log(f"{GENSIM}: {g.train_seconds:.1f} s, {g.tokens_per_s:,.0f} tokens/s")
    methods.append(Method(GENSIM, g.vocab, g.vectors, g.output_vectors, g.train_seconds,
                          g.tokens_per_s, noise_exponent=config.noise_exponent))
  return methods, result


def prior_key(k: int) -> str:
  """Key of heldout_recall@k with the noise prior added to the CBOW scores."""
  return f"heldout_recall@{k}+prior"


def heldout_scores(held: set_embeddings.HeldOut, methods: Sequence[Method],
                   vocab: Sequence[str], k: int, seed: int,
                   ease_max_items: int = ease.MAX_ITEMS,
                   log: common.Log = common.no_log) -> Dict[str, Dict[str, Any]]:
  """heldout_recall@k / ndcg@k of every method, of the EASE and item-kNN peers and of the
  popularity and random baselines.

  A CBOW method also gets ``heldout_recall@k+prior``: its scores plus the log of its
  negative-sampling noise distribution (its noise exponent · log training count),
  which turns the lift-like raw score into an estimate of log P(element | set).
  EASE's λ is chosen on a validation split of the training sets
  (``set_embeddings.validation_hold_out``, as many sets as ``held``; evaluation targets
  never enter) over ``ease.LAMBDA_GRID``, then EASE is refitted on all training sets; its
  row adds ``ease_lambda``, ``ease_validation`` (λ → validation recall),
  ``ease_validation_sets`` and ``ease_items`` (elements modelled: fewer than the
  vocabulary beyond ``ease_max_items``, then ``ease_restricted``).

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
  lam, curve = ease.tune(
      val.train_indptr, val.train_indices, len(vocab),
      lambda s: set_embeddings.heldout_recall(val, s, k)[f"heldout_recall@{k}"],
      max_items=ease_max_items, log=log)
  model = ease.fit(held.train_indptr, held.train_indices, len(vocab), lam,
                   max_items=ease_max_items)
  out[EASE] = {**set_embeddings.heldout_recall(held, model.scorer(), k),
               "ease_lambda": lam, "ease_validation": curve, "ease_validation_sets": len(val),
               "ease_items": len(model.items), "ease_restricted": model.restricted}
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
          f"{len(ease.LAMBDA_GRID)} values; beyond {ease.MAX_ITEMS:,d} elements "
          f"only the most frequent are modelled, the rest ranked by popularity below them. "
          f"{ITEM_KNN}: cosine co-occurrence neighbours, scores summed over the set.")


def random_vectors(num: int, dim: int, seed: int) -> np.ndarray:
  """float32 [num, dim] untrained element vectors: the reference of every similarity score."""
  return np.random.default_rng(seed).standard_normal((num, dim)).astype(np.float32)
