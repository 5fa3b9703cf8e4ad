"""The neighbour-label head of a retrieval-augmented classifier: a classifier's class
probabilities mixed with the similarity-weighted label histogram of each query's nearest
labelled rows (``neighbors.neighbor_label_distribution``), the neighbour count,
temperature and mixing weight chosen on validation rows.

Shapes: Q query rows, N index rows, k neighbours, C classes.
"""

import dataclasses
from typing import Callable, Tuple

import numpy as np

from tfrs_emb.retrieval.neighbors import cosine_neighbors, neighbor_label_distribution


@dataclasses.dataclass
class RetrievalChoice:
  """The neighbour head chosen on validation and its validation accuracy."""
  k: int
  temperature: float
  weight: float
  val_accuracy: float


Search = Callable[[np.ndarray, np.ndarray, int], Tuple[np.ndarray, np.ndarray]]


def choose_mix(ks: Tuple[int, ...], temperatures: Tuple[float, ...],
               weights: Tuple[float, ...], sims: np.ndarray, neighbor_y: np.ndarray,
               val_probs: np.ndarray, val_y: np.ndarray, num_classes: int) -> RetrievalChoice:
  """Grid over (k, temperature, weight) on the validation rows; ties → the earlier
  (smaller k, lower temperature, lower weight), so weight 0 = plain fine-tuning wins ties.

  Args:
    sims: float [Q, k_max] scores of each validation row's nearest index rows, best first
      (k_max caps every k tried); neighbor_y: int [Q, k_max] their class ids.
    val_probs: float [Q, classes] the classifier's probabilities; val_y: int [Q].
  """
  k_max = sims.shape[1]
  best = None
  for k in sorted({min(k, k_max) for k in ks}):
    for temp in temperatures:
      hist = neighbor_label_distribution(sims[:, :k], neighbor_y[:, :k], num_classes, temp)
      for w in sorted(weights):
        acc = float(np.mean(((1 - w) * val_probs + w * hist).argmax(axis=1) == val_y))
        if best is None or acc > best.val_accuracy:
          best = RetrievalChoice(k, temp, w, acc)
  return best


def mix_probs(choice: RetrievalChoice, sims: np.ndarray, neighbor_y: np.ndarray,
              probs: np.ndarray, num_classes: int) -> np.ndarray:
  """Mixed probabilities [Q, classes] of the chosen head from found neighbours (sims,
  neighbor_y [Q, >= k], best first) and the classifier's probabilities [Q, classes]."""
  hist = neighbor_label_distribution(sims[:, :choice.k], neighbor_y[:, :choice.k],
                                     num_classes, choice.temperature)
  return (1 - choice.weight) * probs + choice.weight * hist


def retrieval_probs(choice: RetrievalChoice, index_emb: np.ndarray, index_y: np.ndarray,
                    query_emb: np.ndarray, query_probs: np.ndarray, num_classes: int,
                    search: Search = cosine_neighbors) -> np.ndarray:
  """Mixed probabilities [Q, classes] of the chosen neighbour head."""
  sims, idx = search(query_emb, index_emb, choice.k)
  return mix_probs(choice, sims, index_y[idx], query_probs, num_classes)
