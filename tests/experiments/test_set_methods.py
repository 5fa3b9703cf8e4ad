"""set_methods.heldout_scores' peer rows: EASE with its λ search and vocabulary limit,
item-kNN, and their table words."""

import numpy as np

from tfrs_emb.experiments import set_methods
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import ease


def _corpus(num_sets=400, vocab=60, seed=0):
  """Sets drawn from 6 groups of 10 elements (a group per set, plus a popular element)."""
  rng = np.random.default_rng(seed)
  sets = []
  for _ in range(num_sets):
    g = rng.integers(6)
    sets.append(np.concatenate([rng.choice(np.arange(10 * g, 10 * g + 10), 4, replace=False),
                                [0]]) if g else rng.choice(10, 4, replace=False))
  indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
  return [f"e{i}" for i in range(vocab)], indptr, np.concatenate(sets)


def test_peer_rows_choose_lambda_on_validation_and_beat_popularity():
  vocab, indptr, indices = _corpus()
  held = set_embeddings.hold_out(indptr, indices, 100, seed=0)
  logged = []
  out = set_methods.heldout_scores(held, [], vocab, 10, seed=1, min_count=1,
                                   log=logged.append)
  assert set(out) == {set_methods.EASE, set_methods.ITEM_KNN, set_methods.POPULARITY,
                      set_methods.RANDOM}
  row = out[set_methods.EASE]
  assert row["ease_lambda"] in ease.LAMBDA_GRID and row["ease_validation_sets"] == 100
  assert row["ease_validation"][row["ease_lambda"]] == max(row["ease_validation"].values())
  assert row["ease_items"] == 60 and not row["ease_restricted"] and row["ease_min_count"] == 2
  assert set_methods.peer_variant(row) == f"λ={row['ease_lambda']:g}"
  assert set_methods.peer_variant(out[set_methods.ITEM_KNN]) == ""
  assert any(m.startswith("EASE validation: ") for m in logged)
  pop = out[set_methods.POPULARITY]["heldout_recall@10"]
  for name in (set_methods.EASE, set_methods.ITEM_KNN):
    assert out[name]["heldout_recall@10"] > pop + 0.1   # the groups are what they learn


def test_a_vocabulary_beyond_the_limit_is_reported_in_the_row_and_note():
  vocab, indptr, indices = _corpus()
  held = set_embeddings.hold_out(indptr, indices, 100, seed=0)
  logged = []
  out = set_methods.heldout_scores(held, [], vocab, 10, seed=1, min_count=1,
                                   ease_max_items=20, log=logged.append)
  row = out[set_methods.EASE]
  assert row["ease_restricted"] and row["ease_items"] == 20
  assert set_methods.peer_variant(row).endswith(", 20 most frequent elements")
  assert any("exceed max_items=20" in m for m in logged)
  assert "20 most frequent elements" in set_methods.peer_note(out)
  assert 0.0 <= row["heldout_recall@10"] <= 1.0 and row["unanswered"] == 0.0


def test_ease_models_only_the_cbow_vocabulary():
  # 40,000 elements seen once (in pairs) beside the 60 of the groups: EASE fits the
  # min_count vocabulary (was: the 30,000 most frequent, a 30,000² inverse).
  vocab, indptr, indices = _corpus()
  once = np.arange(60, 40_060)
  indptr = np.concatenate([indptr, indptr[-1] + np.arange(2, len(once) + 1, 2)])
  indices = np.concatenate([indices, once])
  held = set_embeddings.hold_out(indptr, indices, 100, seed=0)   # sets of >= 3: groups'
  out = set_methods.heldout_scores(held, [], vocab + [f"once{i}" for i in once], 10,
                                   seed=1, min_count=5)
  row = out[set_methods.EASE]
  assert row["ease_items"] == 60 and row["ease_restricted"] and row["ease_min_count"] == 5
  assert ">= 5 training sets" in set_methods.peer_note(out)
  assert row["heldout_recall@10"] > out[set_methods.POPULARITY]["heldout_recall@10"] + 0.1
