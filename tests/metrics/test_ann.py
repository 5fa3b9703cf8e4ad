"""Tie-aware recall, Pareto front and QPS at a recall target."""

import math

import numpy as np

from tfrs_emb.metrics import ann


def test_tie_aware_recall_counts_an_equal_score_duplicate_as_a_hit():
  db = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
  q = np.array([[1.0, 0.0]], np.float32)
  kth = np.array([1.0], np.float32)            # exact top-2 = rows 0 and 1, both score 1
  assert ann.tie_aware_recall(np.array([[1, 0]]), kth, db, q) == 1.0
  assert ann.tie_aware_recall(np.array([[1, 3]]), kth, db, q) == 0.5


def _pts(*pairs):
  return [dict(recall=r, qps=s) for r, s in pairs]


def test_pareto_front_drops_dominated_points_and_sorts_by_recall():
  front = ann.pareto_front(_pts((0.9, 100), (0.8, 50), (0.95, 80), (0.97, 10), (0.96, 5)))
  assert [(p["recall"], p["qps"]) for p in front] == [(0.9, 100), (0.95, 80), (0.97, 10)]


def test_qps_at_recall_interpolates_log_qps_and_marks_unreached_targets():
  pts = _pts((0.9, 1000), (0.99, 10), (0.8, 500))
  assert math.isclose(ann.qps_at_recall(pts, 0.945), 100.0, rel_tol=1e-9)  # halfway: √(1000·10)
  assert ann.qps_at_recall(pts, 0.85) == 1000.0      # below the fastest point's recall
  assert math.isclose(ann.qps_at_recall(pts, 0.99), 10.0)
  assert math.isnan(ann.qps_at_recall(pts, 0.995))
  assert math.isnan(ann.qps_at_recall([], 0.5))


def test_fastest_at_recall_takes_the_fastest_point_reaching_the_target_or_none():
  pts = [{"recall": 0.90, "qps": 900.0}, {"recall": 0.95, "qps": 500.0},
         {"recall": 0.97, "qps": 600.0}, {"recall": 0.99, "qps": 100.0}]
  assert ann.fastest_at_recall(pts, 0.95) == {"recall": 0.97, "qps": 600.0}
  assert ann.fastest_at_recall(pts, 0.99) == {"recall": 0.99, "qps": 100.0}
  assert ann.fastest_at_recall(pts, 0.995) is None
