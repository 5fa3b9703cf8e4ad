"""trainers/bench_cbow: the held-out split and held-out recall it reports."""

import numpy as np

from trainers import bench_cbow


def test_hold_out_removes_one_element_of_each_evaluation_set():
  lengths = np.array([2, 3, 4, 5, 3])
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  indices = np.arange(indptr[-1])
  split = bench_cbow.hold_out(indptr, indices, num_sets=10, seed=0)
  assert list(split.eval_ids) == [1, 2, 3, 4]       # the 2-element set is not eligible
  assert len(split.indices) == len(indices) - 4
  for case, held in zip(split.eval_ids, split.held):
    left = split.indices[split.indptr[case]:split.indptr[case + 1]]
    assert held not in left and len(left) == lengths[case] - 1
    assert indptr[case] <= held < indptr[case + 1]


def test_heldout_recall_counts_hits_and_excludes_the_remaining_elements():
  indptr = np.array([0, 3, 6])
  indices = np.array([0, 1, 2, 3, 4, 5])
  split = bench_cbow.hold_out(indptr, indices, num_sets=1, seed=1)
  rows = np.arange(6)
  inputs = np.ones((6, 1), np.float32)
  # The held-out element scores highest but for the set's remaining elements, which are
  # excluded: a hit at k=1.
  case = split.eval_ids[0]
  outputs = np.zeros((6, 1), np.float32)
  outputs[split.held] = 1.0
  outputs[split.indices[split.indptr[case]:split.indptr[case + 1]]] = 2.0
  assert bench_cbow.heldout_recall(split, rows, inputs, outputs, k=1) == 1.0
  outputs[split.held] = -1.0
  assert bench_cbow.heldout_recall(split, rows, inputs, outputs, k=1) == 0.0
