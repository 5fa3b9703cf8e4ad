"""EASE against the direct numpy formula, its λ search (one eigendecomposition) and the
fallback for rare elements and large vocabularies."""

import numpy as np
import pytest

from tfrs_emb.models import ease

# Five sets over six elements (element 5 never occurs).
SETS = [[0, 1, 2], [0, 1], [1, 2, 3], [2, 3, 4], [0, 3, 4, 1]]


def _csr(sets):
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  return indptr, np.concatenate(sets)


def _direct(sets, vocab_size, lam):
  x = np.zeros((len(sets), vocab_size))
  for i, s in enumerate(sets):
    x[i, s] = 1.0
  p = np.linalg.inv(x.T @ x + lam * np.eye(vocab_size))
  b = np.eye(vocab_size) - p @ np.diag(1.0 / np.diag(p))
  np.fill_diagonal(b, 0.0)
  return b


@pytest.mark.parametrize("lam", [0.5, 3.0, 100.0])
def test_weights_and_scores_match_the_direct_formula(lam):
  indptr, indices = _csr(SETS)
  model = ease.fit(indptr, indices, 5, lam)   # every element in >= 2 sets: all modelled
  b = _direct(SETS, 5, lam)
  np.testing.assert_allclose(model.weights, b, rtol=1e-5, atol=1e-6)
  assert not model.restricted and model.lam == lam
  ctx_ptr, ctx = _csr([[0, 2], [4], [3, 1, 0]])
  scores = model.scorer()(ctx_ptr, ctx)
  x = np.zeros((3, 5))
  for i, s in enumerate([[0, 2], [4], [3, 1, 0]]):
    x[i, s] = 1.0
  np.testing.assert_allclose(scores, x @ b, rtol=1e-5, atol=1e-6)


def test_repeated_elements_count_once():
  indptr, indices = _csr([[0, 1, 1, 2], [1, 2]])
  np.testing.assert_allclose(ease.fit(indptr, indices, 3, 1.0, min_count=1).weights,
                             _direct([[0, 1, 2], [1, 2]], 3, 1.0), rtol=1e-5, atol=1e-6)


def test_tune_picks_the_best_validation_score_and_records_every_lambda():
  indptr, indices = _csr(SETS)
  seen = []

  def evaluate(scorer):
    w = scorer(np.array([0, 1]), np.array([0]))[0, 1]   # weight 0 → 1 falls with λ
    seen.append(w)
    return -abs(w - 0.2)

  lam, curve = ease.tune(indptr, indices, 6, evaluate, grid=(0.1, 1.0, 10.0, 100.0))
  assert list(curve) == [0.1, 1.0, 10.0, 100.0]
  assert lam == max(curve, key=curve.get)
  assert np.all(np.diff(seen) < 0)   # larger λ shrinks the weights


@pytest.mark.parametrize("max_items", [40, 25])
def test_tune_scores_every_lambda_as_the_direct_fit_does(max_items):
  # The grid reuses one eigendecomposition of G: each λ's scorer equals fit's (inverse).
  rng = np.random.default_rng(0)
  sets = [rng.choice(40, rng.integers(2, 8), replace=False) for _ in range(300)]
  indptr, indices = _csr(sets)
  ctx = _csr(sets[:50])
  tuned = []
  ease.tune(indptr, indices, 45, lambda s: tuned.append(s(*ctx)) or 0.0,
            grid=(0.5, 5.0, 500.0), max_items=max_items)
  for lam, scores in zip((0.5, 5.0, 500.0), tuned):
    direct = ease.fit(indptr, indices, 45, lam, max_items=max_items).scorer()(*ctx)
    np.testing.assert_allclose(scores, direct, rtol=1e-4, atol=1e-5)


def test_elements_of_fewer_than_min_count_sets_are_ranked_by_popularity():
  # Counts: 1 → 5, 0 → 3, 2 → 3, 3 → 3, 4 → 2, 5 → 1; items seen in one set never fit.
  indptr, indices = _csr(SETS + [[5, 1]])
  # Only beyond max_items: 6 elements fit 6, so all are modelled.
  assert list(ease.fit(indptr, indices, 6, 1.0, min_count=3).items) == list(range(6))
  model = ease.fit(indptr, indices, 6, 1.0, min_count=3, max_items=5)
  assert model.restricted and list(model.items) == [0, 1, 2, 3]
  head = [[e for e in s if e < 4] for s in SETS + [[5, 1]]]
  np.testing.assert_allclose(model.weights, _direct(head, 4, 1.0), rtol=1e-5, atol=1e-6)
  assert list(ease.fit(indptr, indices, 6, 1.0, max_items=5).items) == [0, 1, 2, 3, 4]


def test_tune_without_validation_sets_takes_the_first_lambda():
  indptr, indices = _csr(SETS)
  lam, curve = ease.tune(indptr, indices, 6, lambda s: float("nan"), grid=(5.0, 50.0))
  assert lam == 5.0 and all(np.isnan(v) for v in curve.values())


def test_beyond_max_items_fits_the_most_frequent_and_ranks_the_rest_by_popularity():
  # Counts: 1 → 4, 0 → 3, 2 → 3, 3 → 3, 4 → 2, 5 → 0.
  indptr, indices = _csr(SETS)
  messages = []
  model = ease.fit(indptr, indices, 6, 2.0, max_items=3, log=messages.append)
  assert model.restricted and list(model.items) == [0, 1, 2]   # ties: lower id first
  assert any("exceed max_items=3" in m for m in messages)
  head = [[s_i for s_i in s if s_i in (0, 1, 2)] for s in SETS]
  np.testing.assert_allclose(model.weights, _direct(head, 3, 2.0), rtol=1e-5, atol=1e-6)
  scores = model.scorer()(*_csr([[3, 0], [4]]))
  assert scores[:, :3].min(1)[0] > scores[0, 3:].max()   # modelled elements first
  assert scores[0, 3] > scores[0, 4] > scores[0, 5]       # then by training count
  assert scores[1, 3] > scores[1, 4] > scores[1, 5]
  # No modelled context element (every x·B is 0): the whole row is popularity, 1 first.
  assert list(np.argsort(-scores[1], kind="stable")) == [1, 0, 2, 3, 4, 5]


def test_bad_arguments():
  indptr, indices = _csr(SETS)
  with pytest.raises(ValueError, match="lam > 0"):
    ease.fit(indptr, indices, 6, 0.0)
  with pytest.raises(ValueError, match="max_items >= 1, got 2 and 0"):
    ease.fit(indptr, indices, 6, 1.0, max_items=0)
  with pytest.raises(ValueError, match="min_count >= 1"):
    ease.tune(indptr, indices, 6, lambda s: 0.0, min_count=0)
  with pytest.raises(ValueError, match="non-empty"):
    ease.tune(indptr, indices, 6, lambda s: 0.0, grid=())
