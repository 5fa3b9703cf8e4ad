"""Metrics of SPEC.md: dice, rank_dice@k, recall/precision/ndcg@k, ANN recall vs exact.

Pure numpy / Python so every experiment (tech blog, JADER, retrieval bench) scores with
the same code. Items are identified by integer row index; ``sets[i]`` is item i's set.
"""

from typing import Iterable, Optional, Sequence

import numpy as np


def dice(a: Iterable, b: Iterable) -> float:
  """dice(A, B) = 2|A∩B| / (|A| + |B|); 0 when both are empty."""
  a, b = set(a), set(b)
  denom = len(a) + len(b)
  return 0.0 if denom == 0 else 2.0 * len(a & b) / denom


def _log_rank_weights(k: int) -> np.ndarray:
  return 1.0 / np.log2(np.arange(2, k + 2))


def rank_dice(query_set: Iterable, retrieved_sets: Sequence[Iterable], k: int) -> float:
  """rank_dice@k of one query given the sets of its retrieved items, best first.

  The query itself must already be excluded from ``retrieved_sets``. Fewer than k
  retrieved items count as dice 0 at the missing ranks (the normaliser stays the same).
  """
  w = _log_rank_weights(k)
  q = set(query_set)
  score = sum(w[i] * dice(q, s) for i, s in enumerate(list(retrieved_sets)[:k]))
  return float(score / w.sum())


def rank_dice_at_k(neighbors: np.ndarray, sets: Sequence[Iterable], k: int,
                   query_ids: Optional[Sequence[int]] = None) -> float:
  """Mean rank_dice@k over queries with a non-empty set.

  Args:
    neighbors: int array [num_queries, >=k] of retrieved item indices, best first. Any
      occurrence of the query itself is removed before the top k are taken; -1 pads.
    sets: the set of every item, indexed by item index.
    k: cut-off (4 for the tech blog, 10 for JADER).
    query_ids: item index of each query row; defaults to ``range(num_queries)``.

  Returns:
    The average over queries whose own set is non-empty (nan if there are none).
  """
  neighbors = np.asarray(neighbors)
  if query_ids is None:
    query_ids = range(neighbors.shape[0])
  frozen = [s if isinstance(s, frozenset) else frozenset(s) for s in sets]
  w = _log_rank_weights(k)
  total, count = 0.0, 0
  for row, q in zip(neighbors, query_ids):
    qs = frozen[q]
    if not qs:
      continue
    ranked = [int(r) for r in row if r != q and r >= 0][:k]
    s = 0.0
    for i, r in enumerate(ranked):
      rs = frozen[r]
      s += w[i] * 2.0 * len(qs & rs) / (len(qs) + len(rs))
    total += s / w.sum()
    count += 1
  return total / count if count else float("nan")


def recall_at_k(ranked: Sequence, truth: Iterable, k: int) -> float:
  """|top_k ∩ truth| / |truth| (nan for an empty truth set)."""
  truth = set(truth)
  if not truth:
    return float("nan")
  return len(set(list(ranked)[:k]) & truth) / len(truth)


def precision_at_k(ranked: Sequence, truth: Iterable, k: int) -> float:
  """|top_k ∩ truth| / k."""
  return len(set(list(ranked)[:k]) & set(truth)) / k


def ndcg_at_k(ranked: Sequence, truth: Iterable, k: int) -> float:
  """Binary-relevance NDCG@k (nan for an empty truth set)."""
  truth = set(truth)
  if not truth:
    return float("nan")
  w = _log_rank_weights(k)
  dcg = sum(w[i] for i, r in enumerate(list(ranked)[:k]) if r in truth)
  idcg = w[:min(k, len(truth))].sum()
  return float(dcg / idcg)


def recall_vs_exact(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
  """Mean overlap of the approximate top-k with the exact top-k, over queries."""
  approx, exact = np.asarray(approx)[:, :k], np.asarray(exact)[:, :k]
  hits = [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact)]
  return float(np.mean(hits) / k)
