"""Neighbour-label head: the mix chosen on validation, plain classifier on ties."""

import numpy as np

from tfrs_emb.retrieval.neighbor_head import choose_mix
from tfrs_emb.retrieval.neighbors import cosine_neighbors


def test_retrieval_choice_uses_validation_and_prefers_plain_on_ties():
  grid = dict(ks=(1, 3), temperatures=(0.1,), weights=(0.0, 0.5, 1.0))
  index = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1]], np.float32)
  index_y = np.array([0, 1, 0, 1])
  val = np.array([[1, 0.05], [0.05, 1]], np.float32)
  sims, idx = cosine_neighbors(val, index, 3)
  wrong = np.array([[0.2, 0.8], [0.8, 0.2]], np.float32)  # the head alone is always wrong
  choice = choose_mix(sims=sims, neighbor_y=index_y[idx], val_probs=wrong,
                      val_y=np.array([0, 1]), num_classes=2, **grid)
  assert choice.weight >= 0.5 and choice.val_accuracy == 1.0
  right = wrong[:, ::-1].copy()
  choice = choose_mix(sims=sims, neighbor_y=index_y[idx], val_probs=right,
                      val_y=np.array([0, 1]), num_classes=2, **grid)
  assert choice.weight == 0.0 and choice.k == 1  # ties → plain fine-tuning
