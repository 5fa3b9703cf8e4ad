"""The comparison harness: no evaluation item reaches a choosing step, equal budgets are
enforced, ours / best peer are chosen on development data, rows carry intervals."""

import numpy as np
import pytest

from tfrs_emb.experiments import harness


def _data(ids, rng, shift=0.0):
  """Items with a feature x and a target y = 2x + noise."""
  x = rng.normal(size=len(ids))
  return harness.Split(ids, {"x": x, "y": 2 * x + shift + rng.normal(0, 0.3, len(ids))})


def _linear(name, slopes, seen=None):
  """A method predicting y = slope · x (+ seeded noise), scored by −|error| per item."""
  def fit(config, train, seed):
    if seen is not None:
      seen.append(("fit", train.ids))
    return config.get("slope", 1.0), np.random.default_rng(seed).normal(0, 0.01)

  def score(model, split):
    if seen is not None:
      seen.append(("score", split.ids))
    slope, bias = model
    return -np.abs(split.data["y"] - slope * split.data["x"] - bias)

  def other_metrics(model, split):
    return {"mean abs error": float(np.mean(-score(model, split))), "items": len(split.ids)}

  space = [{"slope": s} for s in slopes] if slopes else harness.NO_HYPERPARAMETERS
  return harness.Method(name, space, fit, score, other_metrics)


@pytest.fixture
def data():
  rng = np.random.default_rng(0)
  development = harness.Development(_data([f"t{i}" for i in range(80)], rng),
                                    _data([f"d{i}" for i in range(40)], rng))
  train_all = _data([f"t{i}" for i in range(120)], rng)
  tests = [_data([f"e{r}_{i}" for i in range(100)], rng) for r in range(3)]
  return development, lambda r: harness.Evaluation(train_all, tests[r]), tests


def test_evaluation_items_never_reach_a_choosing_step(data):
  development, evaluation, tests = data
  shown, calls = [], []

  def spy_chooser(candidates):
    for scores in candidates.values():
      shown.extend(scores.ids)
    calls.append(("choose", ()))
    return harness.best_mean(candidates)

  def spy_evaluation(repeat):
    calls.append(("evaluation", repeat))
    return evaluation(repeat)

  methods = [_linear("ours", [0.5, 1.5, 2.0], calls), _linear("peer", [1.0, 3.0, 4.0], calls),
             _linear("baseline", None, calls)]
  result = harness.compare(methods, development, spy_evaluation, repeats=3,
                           chooser=spy_chooser, ours=["ours"], samples=200)
  evaluation_ids = {i for t in tests for i in t.ids}
  assert shown and not evaluation_ids & set(shown)
  assert set(shown) == set(development.dev.ids)
  # Every choice is made before the first evaluation data is fetched, and no fit
  # (tuning or final) is shown an evaluation item.
  first_eval = calls.index(("evaluation", 0))
  assert max(i for i, c in enumerate(calls) if c[0] == "choose") < first_eval
  assert all(not set(c[1]) & evaluation_ids for c in calls[:first_eval])
  assert all(not set(c[1]) & evaluation_ids for c in calls if c[0] == "fit")
  assert result.ours == "ours" and result.best_peer == "peer"


def test_evaluation_items_inside_the_development_data_are_refused(data):
  development, _, _ = data
  leaky = harness.Evaluation(development.train, development.dev)
  with pytest.raises(ValueError, match="40 evaluation items are also in the development"):
    harness.compare([_linear("ours", [2.0])], development, lambda r: leaky)


def test_a_peer_with_fewer_trials_than_ours_fails_naming_both(data):
  development, evaluation, _ = data
  methods = [_linear("ours", [0.5, 1.0, 1.5, 2.0]), _linear("gensim", [1.0, 2.0])]
  with pytest.raises(ValueError, match=r"method 'gensim' has 2 configurations in its search "
                     r"space, fewer than the 4 trials given to the others \('ours' 4\)"):
    harness.compare(methods, development, evaluation, ours=["ours"])
  # With an equal budget of 2 both run 2 trials, and the table prints it.
  result = harness.compare(methods, development, evaluation, ours=["ours"], trials=2,
                           samples=200)
  assert [r.trials for r in result.rows] == [2, 2]


def test_rows_ours_best_peer_and_verdicts(data):
  development, evaluation, _ = data
  methods = [_linear("ours", [1.0, 2.0]), _linear("weak_peer", [0.0, 0.5]),
             _linear("good_peer", [1.0, 1.5]), _linear("constant", None)]
  result = harness.compare(methods, development, evaluation, repeats=3, ours=["ours"],
                           samples=500)
  assert result.ours == "ours" and result.best_peer == "good_peer"
  assert [r.role for r in result.rows] == ["ours", "shown", "best peer", "shown"]
  ours = result.row("ours")
  assert ours.config == {"slope": 2.0} and ours.trials == 2
  assert result.row("constant").trials == 1  # nothing to tune: one fit
  assert ours.difference.verdict == "win" and ours.difference.low > 0
  scores = result.scored.scores["ours"]
  assert len(scores) == 3 and all(len(s) == 100 for s in scores)
  assert not result.scored.same_items  # a release per repeat: items drawn per repeat
  assert ours.cell.low <= ours.cell.mean <= ours.cell.high
  table = result.table_rows("-abs error")
  assert table[0]["verdict"] == "win" and table[1]["verdict"] == ""
  assert set(table[0]) == set(result.columns("-abs error")) | {"mean abs error", "items"}
  assert table[0]["items"] == 100 and isinstance(table[0]["items"], int)
  assert table[0]["mean abs error"] == pytest.approx(-ours.cell.mean)
  summary = result.as_dict()
  assert summary["rows"][0]["difference"]["verdict"] == "win"
  # Swapped roles: the better method is the peer, so ours loses.
  swapped = harness.compare(methods[1:3], development, evaluation, ours=["weak_peer"],
                            samples=500)
  assert swapped.row("weak_peer").difference.verdict == "loss"


def test_every_row_may_be_ours_then_the_peer_is_the_runner_up(data):
  development, evaluation, _ = data
  methods = [_linear("a", None), _linear("b", [2.0]), _linear("c", [0.0])]
  result = harness.compare(methods, development, evaluation, samples=200)
  assert (result.ours, result.best_peer) == ("b", "a")
  single = harness.compare(methods[:1], development, evaluation, samples=200)
  assert single.best_peer is None and single.rows[0].difference is None


def test_shown_rows_are_neither_ours_nor_best_peer_but_compare_apart(data):
  development, evaluation, _ = data
  methods = [_linear("a", None), _linear("b", [2.0]), _linear("c", [0.0])]
  result = harness.compare(methods, development, evaluation, samples=200, shown=["b"])
  assert (result.ours, result.best_peer) == ("a", "c")   # b, best on validation, is shown
  assert result.row("b").role == "shown" and result.row("b").difference is None
  d = result.difference("b", "a")
  assert d.as_dict() == harness.comparison.paired_difference(
      result.scored.scores["b"], result.scored.scores["a"], 200, 0,
      result.scored.same_items).as_dict()


def test_one_standard_error_rule_keeps_the_preferred_row_within_the_noise():
  ids = tuple(range(300))
  rng = np.random.default_rng(0)
  base = (rng.random(300) < 0.1).astype(float)
  base[:3] = (0.0, 0.0, 1.0)
  near = base.copy()
  near[:3] = (1.0, 1.0, 0.0)   # net one item of 300 better, three apart: within one SE
  far = np.maximum(base, (rng.random(300) < 0.3).astype(float))   # much better
  choose = harness.prefer_within_one_se(["fused"])
  scores = lambda **kw: {k: harness.ItemScores(ids, v) for k, v in kw.items()}
  assert harness.best_mean(scores(fused=base, other=near)) == "other"
  assert choose(scores(fused=base, other=near)) == "fused"
  assert choose(scores(other=near, fused=base)) == "fused"
  assert choose(scores(fused=base, other=far)) == "other"
  assert choose(scores(other=far)) == "other"       # the preferred row is not a candidate
  with pytest.raises(TypeError, match="list of row names"):
    harness.prefer_within_one_se("fused")
  first = harness.prefer_within_one_se(["fused"], base=lambda candidates: "other")
  assert first(scores(fused=base, other=far)) == "other"   # the base chooser's pick
  with pytest.raises(ValueError, match="scored on different items"):
    choose({"fused": harness.ItemScores(ids, base),
            "other": harness.ItemScores(ids[::-1], far)})


def test_ours_chooser_picks_ours_and_the_chooser_the_best_peer(data):
  development, evaluation, _ = data
  methods = [_linear("a", None), _linear("b", [2.0]), _linear("c", [0.0]),
             _linear("d", [1.5])]
  result = harness.compare(methods, development, evaluation, samples=200, ours=["a", "b"],
                           ours_chooser=lambda candidates: "a")
  assert (result.ours, result.best_peer) == ("a", "d")   # d (slope 1.5) beats c (slope 0)
  with pytest.raises(ValueError, match="the ours chooser returned 'c'"):
    harness.compare(methods, development, evaluation, samples=200, ours=["a", "b"],
                    ours_chooser=lambda candidates: "c")


@pytest.mark.parametrize("kwargs,words", [
    ({"repeats": 0}, "repeats=0 must be >= 1"),
    ({"ours": ["nope"]}, r"ours=\['nope'\]: expected a non-empty subset"),
    ({"trials": 0}, "trials=0 must be >= 1"),
])
def test_bad_arguments(data, kwargs, words):
  development, evaluation, _ = data
  with pytest.raises(ValueError, match=words):
    harness.compare([_linear("a", [1.0])], development, evaluation, **kwargs)


def test_score_of_the_wrong_length_is_reported(data):
  development, evaluation, _ = data
  bad = harness.Method("bad", harness.NO_HYPERPARAMETERS, lambda c, t, s: None,
                       lambda m, split: np.zeros(3))
  with pytest.raises(ValueError, match="method 'bad': score returned 3 values for 40 items"):
    harness.compare([bad], development, evaluation)


def test_a_method_without_scored_development_items_ranks_last(data):
  development, evaluation, _ = data
  blind = harness.Method("blind", harness.NO_HYPERPARAMETERS, lambda c, t, s: None,
                         lambda m, split: np.array([np.nan if i.startswith("d") else 1.0
                                                    for i in split.ids]))
  result = harness.compare([blind, _linear("a", None)], development, evaluation, samples=200)
  assert result.ours == "a" and np.isnan(result.row("blind").dev)


def test_fixed_evaluation_items_are_resampled_together_across_repeats(data):
  """Real data: the same items every repeat; a deterministic method's interval does not
  narrow with repeats."""
  development, evaluation, _ = data
  fixed = evaluation(0)
  methods = [_linear("ours", [2.0]), _linear("peer", None)]
  one = harness.compare(methods, development, lambda r: fixed, ours=["ours"], samples=500)
  five = harness.compare(methods, development, lambda r: fixed, ours=["ours"], repeats=5,
                         samples=500)
  assert five.scored.same_items and five.as_dict()["same_items"]
  width = lambda c: c.row("peer").cell.high - c.row("peer").cell.low  # noqa: E731
  assert width(five) == pytest.approx(width(one), rel=0.15)


def test_memoized_fits_once_per_configuration_seed_and_data():
  calls = []

  def fit(config, train, seed):
    calls.append((dict(config), seed))
    return object()

  run, cache = harness.memoized(fit)
  a, b = harness.Split([1], {"x": 1}), harness.Split([1], {"x": 1})   # equal, not the same
  first = run({"p": 1, "q": 2}, a, 0)
  assert run({"q": 2, "p": 1}, a, 0) is first          # key order does not matter
  assert run({"p": 1, "q": 2}, a, 1) is not first      # another seed
  assert run({"p": 1, "q": 2}, b, 0) is not first      # other data
  assert len(calls) == 3 and len(cache) == 3
  keyed, cache = harness.memoized(fit, data_key=lambda split: split.data["x"])
  assert keyed({"p": 1}, a, 0) is keyed({"p": 1}, b, 0) and len(cache) == 1


def test_a_derived_row_is_made_from_the_tuned_rows_with_the_same_budget(data):
  development, evaluation, _ = data
  seen = {}

  def make(tuned):
    seen.update({n: dict(t.config) for n, t in tuned.items()})
    slope = tuned["ours"].config["slope"]
    return _linear("derived", [slope, slope + 0.1, slope - 0.1, slope + 1])

  result = harness.compare([_linear("ours", [0.5, 1.5, 2.0]), _linear("peer", [1.0, 3.0, 4.0])],
                           development, evaluation, trials=3, derived=[make],
                           ours=["ours", "derived"])
  assert set(seen) == {"ours", "peer"} and seen["ours"] == {"slope": 2.0}
  row = result.row("derived")
  assert row.trials == 3 and row.config["slope"] in (2.0, 2.1, 1.9)
  assert [r.method for r in result.rows] == ["ours", "peer", "derived"]
  with pytest.raises(ValueError, match="unequal tuning budgets: method 'derived'"):
    harness.compare([_linear("ours", [0.5, 1.5, 2.0])], development, evaluation, trials=3,
                    derived=[lambda tuned: _linear("derived", [1.0])])
  with pytest.raises(ValueError, match="already a row"):
    harness.compare([_linear("ours", [0.5, 1.5, 2.0])], development, evaluation, trials=3,
                    derived=[lambda tuned: _linear("ours", [1.0, 2.0, 3.0])])


def test_synthetic_repeats_never_evaluate_a_development_release():
  assert [harness.release_seed(0, r) for r in range(3)] == [0, 1000, 2000]
  assert harness.release_seed(1, 2) == 2001
  assert not {harness.release_seed(0, r) for r in range(1, 50)} & {1, 2, 3}
  with pytest.raises(ValueError, match="repeat=-1"):
    harness.release_seed(0, -1)
