"""Set-embedding metrics on hand-made corpora: held-out split, heldout_recall@k with the
CBOW / popularity / random scorers, class_agreement@k, label_agreement@k, case search."""

import numpy as np
import pytest

from tfrs_emb.metrics import ranking
from tfrs_emb.metrics import set_embeddings as se


def _csr(sets):
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])]).astype(np.int64)
  return indptr, np.array([e for s in sets for e in s], np.int64)


def test_hold_out_removes_one_element_of_sets_with_three_or_more():
  sets = [[0, 1, 2], [3, 4], [5, 6, 7, 8], [1, 2, 3], [9]]
  indptr, indices = _csr(sets)
  held = se.hold_out(indptr, indices, num_sets=10, seed=1)
  assert held.set_ids.tolist() == [0, 2, 3]            # only sets of >= 3 elements
  for q, (s, t) in enumerate(zip(held.set_ids, held.targets)):
    train = held.train_indices[held.train_indptr[s]:held.train_indptr[s + 1]].tolist()
    ctx = held.ctx_indices[held.ctx_indptr[q]:held.ctx_indptr[q + 1]].tolist()
    assert t in sets[s] and t not in train and train == ctx
    assert sorted(train + [t]) == sorted(sets[s])
  assert len(held.train_indices) == len(indices) - 3
  ordered = se.hold_out(indptr, indices, num_sets=10, seed=1, ordered=True)
  assert ordered.targets.tolist() == [2, 8, 3]          # the last of each set
  assert len(se.hold_out(indptr, indices, num_sets=0).set_ids) == 0


def _held(contexts, targets):
  ptr, ind = _csr(contexts)
  return se.HeldOut(ptr, ind, np.arange(len(targets)), np.array(targets), ptr, ind, False)


def test_heldout_ranks_exclude_context_and_break_ties_by_id():
  held = _held([[0], [1, 2], [3]], [4, 3, 0])
  scores = np.array([[9, 1, 1, 1, 5],     # 0 is context: 4 ranks first
                     [0, 9, 9, 7, 7],     # 1, 2 context; 3 ties with 4, lower id first
                     [5, 5, 5, 9, 5]], np.float32)   # 0 ties with 1, 2, 4: first by id
  ranks = se.heldout_ranks(held, lambda ptr, ind: scores[:len(ptr) - 1])
  assert ranks.tolist() == [0, 0, 0]
  scores[2, 3] = -np.inf
  scores[0, 4] = -np.inf                  # unknown to the method: a miss, never a hit
  ranks = se.heldout_ranks(held, lambda ptr, ind: scores[:len(ptr) - 1])
  assert ranks.tolist() == [np.inf, 0, 0]
  res = se.heldout_recall(held, lambda ptr, ind: scores[:len(ptr) - 1], k=1)
  assert res == {"heldout_recall@1": 2 / 3, "heldout_ndcg@1": 2 / 3, "unanswered": 1 / 3}


def test_popularity_and_random_baselines():
  train = [[0, 1], [0, 2], [0, 3], [1, 2]]
  ptr, ind = _csr(train)
  held = se.HeldOut(ptr, ind, np.array([0]), np.array([2]), *_csr([[1]]), False)
  # counts 0:3, 1:2, 2:2, 3:1; 1 is context; 0 first, 2 second.
  assert se.heldout_ranks(held, se.popularity_scorer(held, 5)).tolist() == [1]
  big = _held([[0]] * 4000, [1] * 4000)
  recall = se.heldout_recall(big, se.random_scorer(50, seed=0), k=10)["heldout_recall@10"]
  assert recall == pytest.approx(10 / 49, abs=0.02)


def test_cbow_scorer_is_mean_input_dot_output_with_unknowns():
  rng = np.random.default_rng(0)
  vin, vout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
  rows = np.array([2, -1, 0, 1])          # corpus element 1 is unknown to the method
  score = se.cbow_scorer(rows, vin, vout)
  got = score(*_csr([[0, 2], [1], [0, 1]]))
  h = (vin[2] + vin[0]) / 2
  want = np.array([vout[2] @ h, -np.inf, vout[0] @ h, vout[1] @ h])
  order = lambda x: np.argsort(-x, kind="stable")
  assert order(got[0]).tolist() == order(want).tolist()
  assert np.isneginf(got[1]).all()        # no known context: no answer
  assert order(got[2])[:3].tolist() == order(np.array(
      [vout[2] @ vin[2], -np.inf, vout[0] @ vin[2], vout[1] @ vin[2]]))[:3].tolist()


def test_class_agreement_and_case_search_match_a_full_sort():
  rng = np.random.default_rng(1)
  emb = rng.standard_normal((60, 5)).astype(np.float32)
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  sets = [frozenset(rng.choice(12, 3, replace=False).tolist()) for _ in range(60)]
  labels = rng.integers(0, 3, 60)
  labels[5] = -1
  q = np.arange(0, 60, 5)
  got = se.evaluate_case_search(emb, sets, q, labels, k=4)
  full = np.argsort(-(emb[q] @ emb.T), axis=1)
  nbr = np.array([[r for r in row if r != i][:4] for row, i in zip(full, q)])
  assert got["rank_dice@4"] == pytest.approx(ranking.rank_dice_at_k(nbr, sets, 4, q))
  want = np.mean([np.mean(labels[row] == labels[i]) for row, i in zip(nbr, q)
                  if labels[i] >= 0])
  assert got["class_agreement@4"] == pytest.approx(want)
  assert np.isnan(se.evaluate_case_search(emb, sets, q, None, k=4)["class_agreement@4"])


def test_label_agreement_hand_example_and_random_reference():
  vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1]], np.float32)
  labels = [frozenset("a"), frozenset("a"), frozenset("b"), frozenset({"b", "c"}),
            frozenset()]                  # element 4 unlabelled: neither query nor neighbour
  # k=1: 0<->1 Jaccard 1, 2<->3 Jaccard 1/2 each.
  assert se.label_agreement_at_k(vectors, labels, k=1) == pytest.approx((1 + 1 + .5 + .5) / 4)
  rng = np.random.default_rng(0)
  many = [frozenset([i % 5]) for i in range(400)]
  clustered = np.eye(5)[np.arange(400) % 5] + 0.01 * rng.standard_normal((400, 5))
  assert se.label_agreement_at_k(clustered, many, k=10) == pytest.approx(1.0)
  noise = se.label_agreement_at_k(rng.standard_normal((400, 5)), many, k=10)
  assert noise < 0.4
  assert np.isnan(se.label_agreement_at_k(vectors, [frozenset()] * 5, k=1))


def test_noise_prior_turns_lift_into_conditional_probability():
  assert se.noise_log_prior(np.array([1, np.e ** 4, 0])).tolist() == [0.0, 3.0, -np.inf]
  vin = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
  vout = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
  rows = np.arange(3)
  ctx = _csr([[0]])                                   # h = [2, 0], not normalised away
  np.testing.assert_allclose(se.cbow_scorer(rows, vin, vout)(*ctx)[0], [0.0, 1.0, 0.5])
  prior = np.array([0.0, 0.0, 1.5], np.float32)      # element 2 frequent: 1.0 + 1.5 wins
  shifted = se.cbow_scorer(rows, vin, vout, prior)(*ctx)[0]
  np.testing.assert_allclose(shifted, [0.0, 2.0, 2.5], rtol=1e-6)


@pytest.mark.parametrize("ordered", [False, True])
def test_validation_hold_out_never_uses_the_evaluation_sets(ordered):
  rng = np.random.default_rng(3)
  lengths = rng.integers(2, 9, 200)
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  indices = np.concatenate([rng.choice(50, n, replace=False) for n in lengths])
  held = se.hold_out(indptr, indices, 60, seed=0, ordered=ordered)
  val = se.validation_hold_out(held, 60, seed=1)
  rest = np.setdiff1d(np.arange(200), held.set_ids)
  assert len(val) == 60 and val.ordered == ordered
  # Validation rows are the non-evaluation sets (in order), then the evaluation contexts.
  assert len(val.train_indptr) - 1 == len(rest) + len(held)
  assert val.set_ids.max() < len(rest)
  for q, s, target in zip(range(len(val)), val.set_ids, val.targets):
    original = indices[indptr[rest[s]]:indptr[rest[s] + 1]]
    ctx = val.ctx_indices[val.ctx_indptr[q]:val.ctx_indptr[q + 1]]
    assert target in original and target not in ctx
    assert sorted(ctx.tolist() + [target]) == sorted(original.tolist())
    if ordered:
      assert target == original[-1]
  tail = val.train_indices[val.train_indptr[len(rest)]:]
  np.testing.assert_array_equal(tail, held.ctx_indices)
  assert len(val.train_indices) == len(held.train_indices) - 60


def test_validation_hold_out_uses_the_remaining_elements_when_all_sets_are_evaluated():
  rng = np.random.default_rng(4)
  lengths = rng.integers(4, 9, 40)
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  indices = np.concatenate([rng.choice(50, n, replace=False) for n in lengths])
  held = se.hold_out(indptr, indices, 100, seed=0, ordered=True)   # every set evaluated
  assert len(held) == 40
  val = se.validation_hold_out(held, 40, seed=1)
  assert len(val) == 40
  for q, s in enumerate(val.set_ids):
    remaining = held.ctx_indices[held.ctx_indptr[s]:held.ctx_indptr[s + 1]]
    assert val.targets[q] == remaining[-1] and val.targets[q] != held.targets[s]
  assert len(val.train_indices) == len(held.train_indices) - 40
