"""CBOW input pipeline (tfrs_emb.models.cbow_inputs): padding-free batches, subsampling,
CSR filtering."""

import numpy as np
import pytest

from tfrs_emb.models import cbow_inputs


def test_set_batches_are_padding_free_and_cover_every_set():
  lengths = np.array([0, 1, 2, 3, 3, 5, 9, 2, 3])
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  indices = np.arange(indptr[-1])   # element ids = positions: each set is identifiable
  batches = cbow_inputs.SetBatches(indptr, indices, epochs=2, tokens_per_batch=6, max_len=6, seed=1)
  for e in range(2):   # two epochs: same coverage, fresh order
    seen = []
    plan = batches.epoch(e)
    assert len(plan) == batches.steps_per_epoch
    for b in plan:
      assert b.dtype == np.int32 and b.ndim == 2 and b.shape[1] >= 2 and (b >= 0).all()
      assert b.shape[0] * b.shape[1] <= 6 or b.shape[0] == 1
      seen.extend(tuple(sorted(r)) for r in b)
    sets = {tuple(range(indptr[i], indptr[i + 1])) for i in range(len(lengths))
            if 2 <= lengths[i] <= 6}
    assert set(seen) - {s for s in seen if len(s) == 6} == sets and len(seen) == len(sets) + 1
    long = [s for s in seen if len(s) == 6]   # the 9-element set: a random 6 of its own
    assert len(long) == 1 and set(long[0]) <= set(range(indptr[6], indptr[7]))
  # Subsampling drops occurrences afresh each epoch, yet every epoch has the same number
  # of steps; replicas need row counts divisible by row_multiple.
  sub = cbow_inputs.SetBatches(indptr, indices, keep_probability=np.full(len(indices), 0.5),
                        epochs=4, tokens_per_batch=6, max_len=6, seed=2, row_multiple=2)
  plans = [sub.epoch(e) for e in range(4)]
  assert {len(p) for p in plans} == {sub.steps_per_epoch}
  assert all(len(b) % 2 == 0 for p in plans for b in p)
  assert len({tuple(np.concatenate([b.ravel() for b in p]).tolist()) for p in plans}) > 1
  # A resumed run's dataset starts at its first unfinished epoch.
  late = [b.numpy() for b in sub.dataset(first_epoch=3)]
  assert len(late) == sub.steps_per_epoch
  assert all(np.array_equal(a, b) for a, b in zip(late, plans[3]))


def test_filter_sets_keeps_the_marked_elements_set_by_set():
  indptr = np.array([0, 2, 2, 5])
  indices = np.array([4, 7, 1, 2, 3])
  new_indptr, new_indices = cbow_inputs.filter_sets(
      indptr, indices, np.array([True, False, True, True, False]))
  np.testing.assert_array_equal(new_indptr, [0, 1, 1, 3])
  np.testing.assert_array_equal(new_indices, [4, 1, 2])


def test_keep_probabilities_follow_word2vec_and_zero_sample_keeps_all():
  counts = np.array([1000, 10, 1])
  t = 1e-2 * counts.sum()
  expected = np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts)
  np.testing.assert_allclose(cbow_inputs.keep_probabilities(counts, 1e-2), expected)
  assert expected[0] < 1.0 and expected[2] == 1.0
  np.testing.assert_array_equal(cbow_inputs.keep_probabilities(counts, 0.0), [1, 1, 1])


def test_an_epoch_subsampled_to_no_trainable_set_trains_on_the_sets_unsubsampled():
  indptr = np.array([0, 2, 5])
  indices = np.array([0, 1, 2, 3, 4])
  # Keep nothing: every epoch's subsample would be empty (max() of no batches crashed).
  batches = cbow_inputs.SetBatches(indptr, indices, keep_probability=np.full(5, 1e-9),
                                   epochs=3, tokens_per_batch=64)
  assert batches.steps_per_epoch == 2
  for e in range(3):
    assert sorted(b.shape for b in batches.epoch(e)) == [(1, 2), (1, 3)]


def test_set_batches_without_a_set_of_two_elements_say_so():
  with pytest.raises(ValueError, match="no set has >= 2 elements"):
    cbow_inputs.SetBatches(np.array([0, 1, 2]), np.array([0, 1]))
