"""Similar-article search: embed every post, exact cosine top-k, score by rank_dice@k
(the mean, or per query for the comparison harness)."""

import dataclasses
import time
from typing import Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.core.linalg import top_k_excluding_self
from tfrs_emb.metrics import rank_dice_at_k


@dataclasses.dataclass
class SimilarResult:
  """neighbors int [N, k] (self excluded), scores float [N, k], metric, and timings (s)."""
  neighbors: np.ndarray
  scores: np.ndarray
  rank_dice: float
  embed_seconds: float
  search_seconds: float

  @property
  def seconds(self) -> float:
    return self.embed_seconds + self.search_seconds


def search_similar(embeddings: np.ndarray, k: int = 4):
  """Exact cosine top-k of every row against all rows, the row itself excluded.

  Args:
    embeddings: float32 [N, dim] unit rows.

  Returns:
    (neighbors int64 [N, k], scores float32 [N, k]); -1 / -inf pad when N - 1 < k.
  """
  n = embeddings.shape[0]
  scores, neighbors = top_k_excluding_self(embeddings, embeddings, np.arange(n), k)
  return neighbors, scores


def similar_articles(encoder, texts: Sequence[str], tag_sets: Sequence[Sequence[str]],
                     k: int = 4) -> Tuple[SimilarResult, np.ndarray]:
  """Fits ``encoder`` on the texts, embeds them, searches top-k and scores rank_dice@k.

  The embed time includes ``fit`` (TF-IDF's vocabulary; a no-op for pretrained towers).

  Returns:
    (SimilarResult, embeddings float32 [N, dim]).
  """
  t0 = time.perf_counter()
  encoder.fit(list(texts))
  emb = np.asarray(encoder.encode(list(texts)), np.float32)
  t1 = time.perf_counter()
  nb, sc = search_similar(emb, k)
  t2 = time.perf_counter()
  return SimilarResult(nb, sc, rank_dice_at_k(nb, tag_sets, k), t1 - t0, t2 - t1), emb


def per_query_rank_dice(neighbors: np.ndarray, tag_sets: Sequence[Sequence[str]],
                        k: int = 4, query_ids: Optional[Sequence[int]] = None) -> np.ndarray:
  """float [num_queries]: rank_dice@k of each query (nan for a query with an empty set).

  Args:
    neighbors: int [num_queries, >=k] post indices, best first; -1 pads.
    query_ids: post index of each query row; defaults to ``range(num_queries)``.
  """
  if query_ids is None:
    query_ids = range(len(neighbors))
  return np.array([rank_dice_at_k(neighbors[r:r + 1], tag_sets, k, query_ids=[q])
                   for r, q in enumerate(query_ids)], np.float64)
