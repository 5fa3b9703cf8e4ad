import math

import numpy as np
import pytest

from tfrs_emb import metrics


def test_dice_definition():
  assert metrics.dice({1, 2}, {2, 3}) == pytest.approx(0.5)
  assert metrics.dice(set(), set()) == 0.0
  assert metrics.dice({1}, set()) == 0.0


def test_rank_dice_matches_formula_and_excludes_self():
  sets = [{"a", "b"}, {"a", "b"}, {"a"}, {"c"}, set()]
  # Query 0 retrieves itself first; it must be skipped.
  neighbors = np.array([[0, 1, 2, 3]])
  w = [1 / math.log2(i + 1) for i in range(1, 4)]
  expected = (w[0] * 1.0 + w[1] * (2 / 3) + w[2] * 0.0) / sum(w)
  assert metrics.rank_dice_at_k(neighbors, sets, k=3) == pytest.approx(expected)


def test_rank_dice_skips_empty_queries_and_pads():
  sets = [set(), {"x"}, {"x"}]
  neighbors = np.array([[1, 2], [2, -1], [1, 0]])
  # Query 0 is empty and skipped; query 1 has only one neighbour at k=2.
  w = [1.0, 1 / math.log2(3)]
  q1 = w[0] / sum(w)
  q2 = (w[0] * 1.0 + w[1] * 0.0) / sum(w)
  assert metrics.rank_dice_at_k(neighbors, sets, k=2) == pytest.approx((q1 + q2) / 2)


def test_recall_precision_ndcg():
  ranked = ["a", "b", "c", "d", "e"]
  truth = {"a", "e", "z"}
  assert metrics.recall_at_k(ranked, truth, 5) == pytest.approx(2 / 3)
  assert metrics.precision_at_k(ranked, truth, 5) == pytest.approx(2 / 5)
  dcg = 1 + 1 / math.log2(6)
  idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
  assert metrics.ndcg_at_k(ranked, truth, 5) == pytest.approx(dcg / idcg)


def test_recall_vs_exact():
  exact = np.array([[1, 2, 3], [4, 5, 6]])
  approx = np.array([[3, 2, 9], [7, 8, 9]])
  assert metrics.recall_vs_exact(approx, exact, 3) == pytest.approx((2 / 3 + 0) / 2)
