"""Approximate-search quality: tie-aware recall vs exact, Pareto fronts, QPS at a recall.

``recall_vs_exact`` (strict overlap with the exact top-k) lives in ``ranking``; here are
the measures a recall-vs-speed comparison needs on top of it.
"""

from typing import Mapping, Optional, Sequence

import numpy as np


def tie_aware_recall(approx: np.ndarray, exact_kth_scores: np.ndarray, database: np.ndarray,
                     queries: np.ndarray, tol: float = 1e-5) -> float:
  """Share of approximate results scoring at least the exact k-th score (minus ``tol``).

  Equals recall@k vs exact when there are no ties; counts an equally good duplicate
  (identical cases have identical embeddings) as a hit instead of a miss.

  Args:
    approx: int [Q, k] retrieved database rows.
    exact_kth_scores: float [Q] inner product of each query with its exact k-th result.
    database: float32 [N, D].
    queries: float32 [Q, D].
    tol: slack for float rounding.
  """
  s = np.einsum("qd,qkd->qk", queries, database[approx])
  return float(np.mean(s >= exact_kth_scores[:, None] - tol))


def pareto_front(points: Sequence[Mapping], recall: str = "recall",
                 qps: str = "qps") -> list:
  """Points no other point beats on both recall and QPS, by increasing recall."""
  front = []
  for p in sorted(points, key=lambda p: (-p[qps], -p[recall])):
    if not front or p[recall] > front[-1][recall]:
      front.append(p)
  return sorted(front, key=lambda p: p[recall])


def fastest_at_recall(points: Sequence[Mapping], target: float, recall: str = "recall",
                      qps: str = "qps") -> Optional[Mapping]:
  """The fastest point whose recall reaches ``target``; None when none does."""
  reaching = [p for p in points if p[recall] >= target]
  return max(reaching, key=lambda p: p[qps]) if reaching else None


def qps_at_recall(points: Sequence[Mapping], target: float, recall: str = "recall",
                  qps: str = "qps") -> float:
  """QPS of a recall/QPS curve at ``target`` recall, interpolated on its Pareto front.

  Between the two front points around the target, log(QPS) is interpolated linearly in
  recall (QPS falls roughly geometrically as recall rises). A target below every point
  takes the fastest point's QPS; above every point: nan (the curve never reaches it).
  """
  front = pareto_front(points, recall, qps)
  if not front or front[-1][recall] < target:
    return float("nan")
  above = next(i for i, p in enumerate(front) if p[recall] >= target)
  if above == 0:
    return float(front[0][qps])
  lo, hi = front[above - 1], front[above]
  w = (target - lo[recall]) / (hi[recall] - lo[recall])
  return float(np.exp((1 - w) * np.log(lo[qps]) + w * np.log(hi[qps])))
