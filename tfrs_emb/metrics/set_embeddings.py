"""Metrics of learned set embeddings (SPEC.md): heldout_recall@k, class_agreement@k,
label_agreement@k, and the similar-case search score (rank_dice@k + class_agreement@k).

Usage::

  from tfrs_emb.metrics import set_embeddings as se
  held = se.hold_out(indptr, indices, num_sets=2000, seed=0)      # train on held.train_*
  rows = case_encoder.map_elements(vocab, result.vocab)            # corpus id -> row or -1
  se.heldout_recall(held, se.cbow_scorer(rows, result.vectors, output_vectors), k=10)
  se.heldout_recall(held, se.popularity_scorer(held, len(vocab)), k=10)
  se.heldout_recall(held, se.random_scorer(len(vocab), seed=0), k=10)

A *scorer* maps the evaluation sets' remaining elements (CSR ``ctx_indptr, ctx_indices``
over the corpus vocabulary) to float scores ``[num_sets, vocab_size]``; ``-inf`` marks
an element the method cannot rank (outside its vocabulary), and a row of ``-inf`` a set
it cannot answer (no known element left): both count as misses.
"""

import dataclasses
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.core.linalg import top_k_excluding_self
from tfrs_emb.metrics.ranking import rank_dice_at_k
from tfrs_emb.models import case_encoder

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class HeldOut:
  """Evaluation sets with one element held out each, and the corpus without those elements.

  Attributes:
    train_indptr, train_indices: CSR of every set minus its held-out element (what all
      methods train on); element ids as in the input corpus.
    set_ids: int [Q] evaluation sets (rows of the corpus), sorted.
    targets: int [Q] the held-out element of each evaluation set.
    ctx_indptr, ctx_indices: CSR [Q] of the evaluation sets' remaining elements.
    ordered: True when the held-out element was the last of its set (an order column),
      False when it was a seeded random one.
  """
  train_indptr: np.ndarray
  train_indices: np.ndarray
  set_ids: np.ndarray
  targets: np.ndarray
  ctx_indptr: np.ndarray
  ctx_indices: np.ndarray
  ordered: bool

  def __len__(self) -> int:
    return len(self.set_ids)


def hold_out(indptr: np.ndarray, indices: np.ndarray, num_sets: int, seed: int = 0,
             ordered: bool = False) -> HeldOut:
  """Picks ``num_sets`` sets with ≥ 3 elements (seeded) and holds out one element of each.

  Args:
    indptr: int [num_sets_total + 1] CSR offsets.
    indices: int [total] element ids, each set's elements in set order.
    num_sets: evaluation sets wanted (fewer when fewer sets have ≥ 3 elements; 0 = none).
    seed: seeds the choice of sets and, when not ``ordered``, of the held-out elements.
    ordered: hold out each set's last element (the corpus has an order column) instead
      of a random one.

  Returns:
    HeldOut.
  """
  indptr = np.asarray(indptr, np.int64)
  indices = np.asarray(indices)
  rng = np.random.default_rng(seed)
  lengths = np.diff(indptr)
  eligible = np.nonzero(lengths >= 3)[0]
  set_ids = np.sort(rng.choice(eligible, min(num_sets, len(eligible)), replace=False))
  offset = lengths[set_ids] - 1 if ordered else rng.integers(0, lengths[set_ids])
  drop = indptr[set_ids] + offset
  keep = np.ones(len(indices), bool)
  keep[drop] = False
  train_indptr = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])[indptr]
  train_indices = indices[keep]
  ctx_lengths = lengths[set_ids] - 1
  ctx_indptr = np.concatenate([[0], np.cumsum(ctx_lengths)]).astype(np.int64)
  starts = train_indptr[set_ids]
  ctx_indices = train_indices[np.repeat(starts - ctx_indptr[:-1], ctx_lengths)
                              + np.arange(ctx_indptr[-1])]
  return HeldOut(train_indptr, train_indices, set_ids, indices[drop], ctx_indptr,
                 ctx_indices, ordered)


def validation_hold_out(held: HeldOut, num_sets: int, seed: int = 0) -> HeldOut:
  """A validation split carved from ``held``'s training sets; evaluation targets never enter.

  The validation corpus is every non-evaluation set, then every evaluation set's remaining
  elements (what all methods train on), so a method tuned on it sees as many sets as the
  real run. ``num_sets`` sets lose one element each (``hold_out``; the last one when
  ``held.ordered``): drawn from the non-evaluation sets when at least ``num_sets`` of them
  have ≥ 3 elements, otherwise from the whole validation corpus (a corpus whose sets are
  all evaluation sets then validates on their remaining elements, the held-out ones
  excluded).

  Returns:
    HeldOut over the validation corpus (``set_ids`` index its rows).
  """
  indptr = np.asarray(held.train_indptr, np.int64)
  rest = np.ones(len(indptr) - 1, bool)
  rest[held.set_ids] = False
  rows = np.nonzero(rest)[0]
  lengths = np.diff(indptr)[rows]
  sub_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  sub_indices = held.train_indices[np.repeat(indptr[rows] - sub_indptr[:-1], lengths)
                                   + np.arange(sub_indptr[-1])]
  all_indptr = np.concatenate([sub_indptr, sub_indptr[-1] + held.ctx_indptr[1:]])
  all_indices = np.concatenate([sub_indices, held.ctx_indices])
  if (lengths >= 3).sum() < num_sets:
    return hold_out(all_indptr, all_indices, num_sets, seed=seed, ordered=held.ordered)
  val = hold_out(sub_indptr, sub_indices, num_sets, seed=seed, ordered=held.ordered)
  val.train_indptr = np.concatenate([val.train_indptr,
                                     val.train_indptr[-1] + held.ctx_indptr[1:]])
  val.train_indices = np.concatenate([val.train_indices, held.ctx_indices])
  return val


def noise_log_prior(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
  """float32 ``exponent · log(count)``: the log of the negative-sampling noise distribution
  (up to a constant), for elements counted at least once (-inf otherwise).

  Negative sampling fits σ(h·u_w) ≈ P(w|c) / (P(w|c) + k·P_noise(w)), so h·u_w is the log
  odds of w against noise, log P(w|c) − log P_noise(w) − log k: it ranks by *lift* and
  under-ranks frequent elements. Adding log P_noise(w) back ranks by P(w|c).
  """
  counts = np.asarray(counts, np.float64)
  with np.errstate(divide="ignore"):
    return (exponent * np.log(counts)).astype(np.float32)


def cbow_scorer(rows: np.ndarray, input_vectors: np.ndarray, output_vectors: np.ndarray,
                log_prior: Optional[np.ndarray] = None) -> Scorer:
  """A CBOW's own next-element scores (gensim's ``predict_output_word``).

  score(e) = mean of the remaining elements' input vectors · e's output vector
  (+ ``log_prior[e]`` when given). Without a prior the mean is L2-normalised first, which
  leaves each set's ranking unchanged; with one it is the plain mean.

  Args:
    rows: int [vocab_size] method row of each corpus element (-1: not in its vocab).
    input_vectors: float [method_vocab, dim].
    output_vectors: float [method_vocab, dim] (gensim ``syn1neg``; Keras CBOW
      ``output_embeddings``).
    log_prior: optional float [vocab_size] added per corpus element (noise_log_prior).
  """
  rows = np.asarray(rows, np.int64)
  known_cols = np.nonzero(rows >= 0)[0]
  out = np.asarray(output_vectors, np.float32)[rows[known_cols]]

  def score(ctx_indptr, ctx_indices):
    ctx_rows = rows[ctx_indices]
    known = np.add.reduceat((ctx_rows >= 0).astype(np.int64), ctx_indptr[:-1]) \
        if len(ctx_rows) else np.zeros(len(ctx_indptr) - 1, np.int64)
    known[np.diff(ctx_indptr) == 0] = 0
    # With a prior the scale of h matters (the prior's is fixed): the plain mean then.
    h = case_encoder.case_embeddings(ctx_indptr, ctx_rows, input_vectors, "mean",
                                     normalize=log_prior is None)
    scores = np.full((len(h), len(rows)), -np.inf, np.float32)
    scores[:, known_cols] = h @ out.T
    if log_prior is not None:
      scores += np.asarray(log_prior, np.float32)[None, :]
    scores[known == 0] = -np.inf   # nothing known: no answer rather than an arbitrary one
    return scores
  return score


def popularity_scorer(held: HeldOut, vocab_size: int) -> Scorer:
  """Baseline: every set gets the elements ranked by training frequency."""
  counts = np.bincount(held.train_indices, minlength=vocab_size).astype(np.float32)
  return lambda ctx_indptr, ctx_indices: np.broadcast_to(
      counts, (len(ctx_indptr) - 1, vocab_size)).copy()


def random_scorer(vocab_size: int, seed: int = 0) -> Scorer:
  """Baseline: uniform random scores (seeded)."""
  rng = np.random.default_rng(seed)
  return lambda ctx_indptr, ctx_indices: rng.random(
      (len(ctx_indptr) - 1, vocab_size), np.float32)


def heldout_ranks(held: HeldOut, scorer: Scorer, chunk_sets: int = 1024) -> np.ndarray:
  """0-based rank of each held-out element among the candidates of its set.

  Candidates are every element not among the set's remaining elements. Ties are broken
  by element id (deterministic); a held-out element scored ``-inf`` (the method cannot
  rank it) gets rank ``inf``, a miss at any k.

  Returns:
    float64 [len(held)].
  """
  ranks = np.empty(len(held), np.float64)
  for lo in range(0, len(held), chunk_sets):
    hi = min(len(held), lo + chunk_sets)
    ptr = held.ctx_indptr[lo:hi + 1]
    ctx = held.ctx_indices[ptr[0]:ptr[-1]]
    ptr = ptr - ptr[0]
    scores = np.array(scorer(ptr, ctx), np.float32)
    n, v = scores.shape
    scores[np.repeat(np.arange(n), np.diff(ptr)), ctx] = -np.inf
    target = held.targets[lo:hi]
    t = scores[np.arange(n), target][:, None]
    ids = np.arange(v)[None, :]
    rank = (scores > t).sum(1) + ((scores == t) & (ids < target[:, None])).sum(1)
    ranks[lo:hi] = np.where(np.isneginf(t[:, 0]), np.inf, rank)
  return ranks


def heldout_recall(held: HeldOut, scorer: Scorer, k: int = 10) -> Dict[str, float]:
  """heldout_recall@k (= hit rate: one held-out element per set) and heldout_ndcg@k.

  Returns:
    {"heldout_recall@k", "heldout_ndcg@k", "unanswered": fraction of sets whose held-out
    element the method could not rank (outside its vocabulary, or no known context)};
    nan without evaluation sets.
  """
  ranks = heldout_ranks(held, scorer)
  if not len(ranks):
    return {f"heldout_recall@{k}": float("nan"), f"heldout_ndcg@{k}": float("nan"),
            "unanswered": float("nan")}
  hit = ranks < k
  return {f"heldout_recall@{k}": float(hit.mean()),
          f"heldout_ndcg@{k}": float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean()),
          "unanswered": float(np.isinf(ranks).mean())}


def class_agreement_at_k(neighbors: np.ndarray, labels: np.ndarray, k: int,
                         query_ids: Sequence[int]) -> float:
  """Mean fraction of a query's top-k neighbours (self excluded) sharing its label.

  Queries with label < 0 (unknown) are skipped; -1 neighbour ids (padding) count as
  disagreement, so a query with fewer than k neighbours scores lower.
  """
  labels = np.asarray(labels)
  total, count = 0.0, 0
  for row, q in zip(np.asarray(neighbors), query_ids):
    if labels[q] < 0:
      continue
    ranked = [int(r) for r in row if r != q and r >= 0][:k]
    total += sum(labels[r] == labels[q] for r in ranked) / k
    count += 1
  return total / count if count else float("nan")


def evaluate_case_search(embeddings: np.ndarray, sets: Sequence[frozenset],
                         query_ids: np.ndarray, latent_class: Optional[np.ndarray] = None,
                         k: int = 10) -> Dict[str, float]:
  """Exact similar-case search for ``query_ids`` over all cases (self excluded), scored.

  Args:
    embeddings: float32 [num_cases, dim] unit case embeddings.
    sets: element set of every case (the S(·) of rank_dice).
    query_ids: int [Q] query cases.
    latent_class: int [num_cases] ground-truth class (-1 unknown), or None.
    k: neighbours per query.

  Returns:
    {"rank_dice@k", "class_agreement@k" (nan without classes), "search_seconds"}.
  """
  query_ids = np.asarray(query_ids, np.int64)
  t0 = time.perf_counter()
  _, nbr = top_k_excluding_self(embeddings[query_ids], embeddings, query_ids, k)
  seconds = time.perf_counter() - t0
  return {f"rank_dice@{k}": rank_dice_at_k(nbr, sets, k, query_ids=query_ids),
          f"class_agreement@{k}": (class_agreement_at_k(nbr, latent_class, k, query_ids)
                                   if latent_class is not None else float("nan")),
          "search_seconds": seconds}


def label_agreement_at_k(vectors: np.ndarray, labels: Sequence[frozenset],
                         k: int = 10) -> float:
  """label_agreement@k: mean Jaccard of an element's label set with its k nearest elements'.

  Neighbours are searched by cosine of ``vectors`` among the *labelled* elements (self
  excluded), so the score says whether similar vectors mean similar labels, not how many
  elements happen to be labelled.

  Args:
    vectors: float [num_elements, dim] element (input) vectors.
    labels: label set of each element (empty = unlabelled).
    k: neighbours per element.

  Returns:
    Mean over labelled elements (nan when fewer than 2 are labelled).
  """
  labelled = np.array([i for i, s in enumerate(labels) if s], np.int64)
  if len(labelled) < 2:
    return float("nan")
  unit = l2_normalize(np.asarray(vectors, np.float32)[labelled])
  local = np.arange(len(labelled))
  _, nbr = top_k_excluding_self(unit, unit, local, min(k, len(labelled) - 1))
  total = 0.0
  for q, row in zip(local, nbr):
    a = labels[labelled[q]]
    total += sum(len(a & labels[labelled[r]]) / len(a | labels[labelled[r]])
                 for r in row if r >= 0) / k
  return total / len(labelled)
