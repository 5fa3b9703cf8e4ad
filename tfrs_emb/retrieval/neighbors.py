"""Nearest-neighbour classifiers on embeddings (exact cosine or L2 search of ``core.linalg``).

``knn_vote``: the talk's KNN(k) on frozen embeddings. ``neighbor_label_distribution``: the
retrieval half of a retrieval-augmented classifier, a similarity-weighted label histogram
of each query's nearest labelled rows.
"""

from typing import Optional, Tuple

import numpy as np

from tfrs_emb.core.linalg import exact_top_k, l2_normalize, top_k_excluding_self


def cosine_neighbors(queries: np.ndarray, database: np.ndarray, k: int,
                     query_ids: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Cosine top-k: (similarities float32 [Q, k], database rows int64 [Q, k]), best first.

  ``query_ids``: when the queries are database rows, their row ids (each row's own entry is
  excluded, so a training row never retrieves itself).
  """
  q, db = l2_normalize(queries), l2_normalize(database)
  if query_ids is None:
    return exact_top_k(q, db, k)
  return top_k_excluding_self(q, db, query_ids, k)


def l2_neighbors(queries: np.ndarray, database: np.ndarray,
                 k: int) -> Tuple[np.ndarray, np.ndarray]:
  """Squared-L2 top-k: (scores -||q - x||^2 float32 [Q, k], database rows int64 [Q, k]),
  nearest first. The inner-product search runs on [q, 1] against [2x, -||x||^2]."""
  q = np.asarray(queries, np.float32)
  db = np.asarray(database, np.float32)
  sq = np.sum(db * db, axis=1, keepdims=True)
  scores, idx = exact_top_k(np.hstack([q, np.ones((len(q), 1), np.float32)]),
                            np.hstack([2.0 * db, -sq]), k)
  return scores - np.sum(q * q, axis=1, keepdims=True), idx


def knn_vote(train_emb: np.ndarray, train_y: np.ndarray, query_emb: np.ndarray,
             num_classes: int, k: int = 2) -> np.ndarray:
  """Cosine k-NN majority vote; ties go to the class of the nearer neighbour. int [Q]."""
  _, idx = cosine_neighbors(query_emb, train_emb, k)
  labels = train_y[idx]  # [Q, k], nearest first
  votes = np.zeros((len(labels), num_classes))
  for j in range(labels.shape[1]):
    votes[np.arange(len(labels)), labels[:, j]] += 1.0 + 1e-3 * (labels.shape[1] - j)
  return votes.argmax(axis=1)


def neighbor_label_distribution(similarities: np.ndarray, neighbor_labels: np.ndarray,
                                num_classes: int, temperature: float) -> np.ndarray:
  """Softmax(similarity / temperature)-weighted label histogram float32 [Q, num_classes].

  Args:
    similarities: float [Q, k] cosine similarities of each query's neighbours.
    neighbor_labels: int [Q, k] their class ids (-1 = no neighbour, weight 0).
    num_classes: number of classes.
    temperature: > 0; small values approach the nearest neighbour's label.
  """
  s = np.where(neighbor_labels >= 0, similarities / temperature, -np.inf)
  w = np.exp(s - s.max(axis=1, keepdims=True))
  w /= w.sum(axis=1, keepdims=True)
  out = np.zeros((len(w), num_classes), np.float32)
  rows = np.repeat(np.arange(len(w)), w.shape[1])
  np.add.at(out, (rows, np.maximum(neighbor_labels, 0).ravel()), w.ravel())
  return out
