"""The tabular compared table: GBDT peers get as many trials as our side, the same folds
(cross-fitted and bagged, or refit on every labelled row), and the repeats' own label
splits; a peer better on validation is reported."""

import numpy as np
import pytest

from tfrs_emb.data import table as tbl
from tfrs_emb.experiments import tabular_compare
from tfrs_emb.experiments.tabular_data import LabelSplit
from tfrs_emb.models import gbdt


def _table(n=600, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 3)).astype(np.float32)
  x[:, 2] = rng.integers(2, 6, size=n)                 # a categorical id column
  y = ((x[:, 0] + (x[:, 2] == 3)) > 0.5).astype(np.int32)
  return x, y


def _splitter(y, lab_rows, folds):
  """repeat r → a LabelSplit of ``lab_rows`` labelled rows (seed r), cross-fitted with
  ``folds`` folds (or a 20 % holdout when folds == 1)."""
  def split(repeat):
    rng = np.random.default_rng(repeat)
    lab = np.sort(rng.choice(400, lab_rows, replace=False))    # rows 400.. are evaluation
    if folds == 1:
      rest, held = tbl.stratified_split(y[lab], 0.2, repeat)
      fold_list = [(lab[rest], lab[held])]
    else:
      parts = tbl.stratified_folds(y[lab], folds, repeat)
      fold_list = [(np.setdiff1d(lab, lab[p]), lab[p]) for p in parts]
    return LabelSplit(1.0, lab, fold_list[0][0], fold_list[0][1], fold_list)
  return split


def _centroid_ours(calls):
  """Our side stand-in: nearest class centroid on column 0 scaled by the trial's 'scale'
  (a real fit whose quality depends on the configuration), spied."""
  def fit(trial, seed, split):
    calls.append((dict(trial), seed, tuple(split.lab)))
    x, y = _table()

    def predict(rows, fit_rows):
      means = [x[fit_rows][y[fit_rows] == c, 0].mean() for c in (0, 1)]
      d = np.abs(trial["scale"] * x[rows, 0][:, None] - np.array(means)[None])
      return d.argmin(axis=1)
    held = np.concatenate([predict(h, f) for f, h in split.folds])
    return tabular_compare.LabelledFit(tuple(int(i) for i in split.selection_idx), held,
                                       lambda rows: predict(rows, split.lab))
  return fit


@pytest.mark.parametrize("folds", [1, 3])
def test_peers_get_the_same_trials_and_folds(monkeypatch, folds):
  x, y = _table()
  seen = []
  real = gbdt.fit_one

  def spy(peer, params, settings, seed, train_x, train_y, val_x=None, val_y=None, trees=0):
    seen.append((peer, tuple(sorted(params.items())), seed, len(train_x),
                 None if val_x is None else len(val_x)))
    return real(peer, params, settings, seed, train_x, train_y, val_x, val_y, trees)
  monkeypatch.setattr(gbdt, "fit_one", spy)
  calls = []
  space = [{"scale": 1.0}, {"scale": 0.2}, {"scale": 3.0}]
  result = tabular_compare.compare_fraction(
      space, _centroid_ours(calls), _splitter(y, 200, folds), y, np.arange(400, 600),
      (x, [2]), 2, trials=2, repeats=2, seed=0, max_trees=30, early_stopping=5)
  table = result.comparison
  assert {r.method: r.trials for r in table.rows} == {
      tabular_compare.OURS: 2, "LightGBM (tuned)": 2, "CatBoost (tuned)": 2}
  # Ours: 2 tuning fits (seed 0) + repeat 1's refit (seed 1); repeat 0 reuses its tuning fit.
  assert [c[:2] for c in calls] == [({"scale": 1.0}, 0), ({"scale": 0.2}, 0),
                                    (table.row(tabular_compare.OURS).config, 1)]
  assert calls[0][2] != calls[2][2]          # repeat 1 has its own labelled rows
  for peer in gbdt.PEERS:
    fits = [s for s in seen if s[0] == peer]
    configs = {s[1] for s in fits}
    assert len(configs) == 2                 # exactly the budget's configurations
    early = [s for s in fits if s[4] is not None]
    if folds == 1:                           # early-stopped on the holdout, refit on all 200
      assert {(s[3], s[4]) for s in early} == {(160, 40)}
      assert {s[3] for s in fits if s[4] is None} == {200}
      assert len(fits) == 2 * (2 + 1)        # (fit + refit) × (2 trials + repeat 1)
    else:                                    # one model per fold, nothing refit
      assert all(s[4] is not None for s in fits)
      assert sorted({s[3] + s[4] for s in fits}) == [200]
      assert len(fits) == 3 * (2 + 1)
  assert table.best_peer in ("LightGBM (tuned)", "CatBoost (tuned)")
  assert table.row(tabular_compare.OURS).difference.verdict in ("win", "tie", "loss")


def test_trials_above_our_space_stop_the_run():
  x, y = _table()
  with pytest.raises(ValueError, match="unequal tuning budgets"):
    tabular_compare.compare_fraction(
        [{"scale": 1.0}], _centroid_ours([]), _splitter(y, 100, 2), y, np.arange(400, 600),
        (x, [2]), 2, trials=2, repeats=1, seed=0, max_trees=10, early_stopping=5)


def test_gbdt_better_on_validation_is_said():
  x, y = _table()
  result = tabular_compare.compare_fraction(
      [{"scale": -1.0}], _centroid_ours([]), _splitter(y, 200, 2), y, np.arange(400, 600),
      (x, [2]), 2, trials=1, repeats=1, seed=0, max_trees=50, early_stopping=5)
  note = result.peer_better_note()
  assert "was better on validation" in note and result.comparison.best_peer in note


def _constant_fit(calls):
  """A worse stand-in: class 0 for every row, spied."""
  def fit(trial, seed, split):
    calls.append((dict(trial), seed, tuple(split.lab)))
    return tabular_compare.LabelledFit(
        tuple(int(i) for i in split.selection_idx), np.zeros(len(split.selection_idx), int),
        lambda rows: np.zeros(len(rows), int))
  return fit


@pytest.mark.parametrize("other_start", ["random", "pretrained"])
def test_other_start_row_is_shown_with_our_budget_and_pretrained_minus_random_reported(
    other_start):
  """The ablation row (the other encoder start) gets our space, trials and repeats, is
  never ours nor best peer, and the difference is pretrained − random whichever side
  ours is: here the ablation stand-in is worse, so its sign follows the side."""
  x, y = _table()
  calls, ablation_calls = [], []
  space = [{"scale": -1.0}, {"scale": 0.5}]
  result = tabular_compare.compare_fraction(
      space, _centroid_ours(calls), _splitter(y, 200, 2), y, np.arange(400, 600),
      (x, [2]), 2, trials=2, repeats=2, seed=0, max_trees=30, early_stopping=5,
      fit_other_start=(other_start, _constant_fit(ablation_calls)))
  table, name = result.comparison, tabular_compare.OTHER_START[other_start]
  assert table.row(name).role == "shown" and table.row(name).trials == 2
  assert table.best_peer in ("LightGBM (tuned)", "CatBoost (tuned)")
  assert [c[:2] for c in ablation_calls][:2] == [(t, 0) for t in space]
  assert len(ablation_calls) == 3            # 2 trials + repeat 1's refit
  d = result.pretraining_difference()
  ours_minus_it = table.difference(table.ours, name).mean
  assert ours_minus_it > 0.1
  assert d.mean == (ours_minus_it if other_start == "random" else -ours_minus_it)
  plain = tabular_compare.compare_fraction(
      space, _centroid_ours([]), _splitter(y, 200, 2), y, np.arange(400, 600),
      (x, [2]), 2, trials=2, repeats=1, seed=0, max_trees=30, early_stopping=5)
  assert plain.pretraining_difference() is None


def test_other_start_row_is_never_ours_nor_best_peer_even_when_best_on_validation():
  x, y = _table()

  def perfect(trial, seed, split):   # knows every label: best on validation
    return tabular_compare.LabelledFit(tuple(int(i) for i in split.selection_idx),
                                       y[split.selection_idx], lambda rows: y[rows])
  result = tabular_compare.compare_fraction(
      [{"scale": 0.5}], _constant_fit([]), _splitter(y, 200, 2), y, np.arange(400, 600),
      (x, [2]), 2, trials=1, repeats=1, seed=0, max_trees=30, early_stopping=5,
      fit_other_start=("random", perfect))
  table, name = result.comparison, tabular_compare.OTHER_START["random"]
  assert table.row(name).dev == 1.0 > table.row(table.ours).dev
  assert table.ours == tabular_compare.OURS and table.row(name).role == "shown"
  assert table.best_peer in tabular_compare.PEER_ROWS.values()


def test_search_spaces_start_at_the_defaults_and_are_documented_grids():
  lgb_space = gbdt.search_space("lightgbm")
  assert lgb_space[0] == gbdt.LIGHTGBM_DEFAULT and len(lgb_space) == 5 * 5 * 4 * 4 * 3
  assert set(lgb_space[1]) == {"num_leaves", "min_child_samples", "feature_fraction",
                               "lambda_l2", "learning_rate"}
  assert len({tuple(sorted(p.items())) for p in lgb_space}) == len(lgb_space)
  assert gbdt.search_space("catboost")[0] == gbdt.CATBOOST_DEFAULT


@pytest.mark.parametrize("peer", gbdt.PEERS)
def test_gbdt_fit_stops_adding_trees_at_its_time_limit(peer):
  x, y = _table()
  free = gbdt.GbdtSettings(200, 200, 2, (2,))
  capped = gbdt.GbdtSettings(200, 200, 2, (2,), seconds_per_fit=0.0)
  params = gbdt.search_space(peer)[0]
  _, trees_free = gbdt.fit_one(peer, params, free, 0, x[:400], y[:400], trees=200)
  _, trees_capped = gbdt.fit_one(peer, params, capped, 0, x[:400], y[:400], trees=200)
  assert trees_free == 200 and trees_capped <= 2
