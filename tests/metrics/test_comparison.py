"""Comparison statistics: bootstrap intervals, paired verdicts, timing ratios."""

import numpy as np
import pytest

from tfrs_emb.core.timing import Timing
from tfrs_emb.metrics import comparison


def _repeats(rng, means, items=200, noise=0.1):
  return [rng.normal(m, noise, items) for m in means]


def test_interval_covers_the_true_mean_about_95_percent():
  rng = np.random.default_rng(0)
  hits = 0
  for trial in range(200):
    scores = _repeats(rng, [0.5, 0.5, 0.5], items=60, noise=0.2)
    cell = comparison.interval(scores, samples=400, seed=trial)
    assert cell.low <= cell.mean <= cell.high
    hits += cell.low <= 0.5 <= cell.high
  assert 0.88 <= hits / 200 <= 0.995, hits


def test_interval_widens_with_seed_to_seed_spread():
  rng = np.random.default_rng(1)
  items = rng.normal(0.0, 0.1, 300)
  steady = comparison.interval([items + 0.5] * 5)
  spread = comparison.interval([items + m for m in (0.40, 0.45, 0.50, 0.55, 0.60)])
  assert steady.mean == pytest.approx(spread.mean)
  assert (spread.high - spread.low) > 3 * (steady.high - steady.low)


def test_verdicts_on_a_clear_win_a_clear_loss_and_a_tie():
  rng = np.random.default_rng(2)
  peer = _repeats(rng, [0.50] * 5)
  win = comparison.paired_difference([p + 0.05 + rng.normal(0, 0.05, p.shape) for p in peer],
                                     peer)
  loss = comparison.paired_difference([p - 0.05 + rng.normal(0, 0.05, p.shape) for p in peer],
                                      peer)
  tie = comparison.paired_difference([p + rng.normal(0, 0.05, p.shape) for p in peer], peer)
  assert win.verdict == "win" and win.low > 0 and win.mean == pytest.approx(0.05, abs=0.01)
  assert loss.verdict == "loss" and loss.high < 0
  assert tie.verdict == "tie" and tie.low <= 0 <= tie.high
  assert win.as_dict()["verdict"] == "win" and win.text().startswith("+0.0")


def test_paired_difference_drops_items_nan_on_either_side():
  ours = [np.array([1.0, np.nan, 0.5, 0.7])]
  peer = [np.array([0.5, 0.2, np.nan, 0.2])]
  d = comparison.paired_difference(ours, peer, samples=200)
  assert d.mean == pytest.approx(0.5)
  assert d.low == pytest.approx(0.5) and d.high == pytest.approx(0.5)


def test_bootstrap_is_seeded():
  scores = _repeats(np.random.default_rng(3), [0.3, 0.4])
  assert comparison.interval(scores, seed=7) == comparison.interval(scores, seed=7)
  assert comparison.interval(scores, seed=7) != comparison.interval(scores, seed=8)


@pytest.mark.parametrize("ours,peer,words", [
    ([np.ones(3)], [np.ones(3), np.ones(3)], "ours has 1 repeats, peer 2"),
    ([np.ones(3)], [np.ones(4)], "repeat 0 scores 3 items for ours and 4"),
    ([np.full(2, np.nan)], [np.ones(2)], "repeat 0 has no scored items"),
])
def test_paired_difference_rejects_unpaired_scores(ours, peer, words):
  with pytest.raises(ValueError, match=words):
    comparison.paired_difference(ours, peer)


def test_interval_rejects_a_bare_array():
  with pytest.raises(ValueError, match="one score array per repeat"):
    comparison.interval(np.ones(5))


def test_timing_ratio_is_the_median_ratio_with_per_round_min_max():
  ours = Timing((1.0, 2.0, 1.0, 1.0, 1.5))
  peer = Timing((4.0, 4.0, 2.0, 4.0, 5.0))
  ratio = comparison.timing_ratio(ours, peer)
  assert ratio.median == pytest.approx(1.0 / 4.0)
  assert ratio.low == pytest.approx(0.25) and ratio.high == pytest.approx(0.5)
  assert ratio.rounds == 5 and ratio.text() == "0.25× (0.25–0.50, 5 rounds)"


@pytest.mark.parametrize("ours,peer,words", [
    ((1.0,) * 5, (1.0,) * 4, "ours has 5 runs, peer 4"),
    ((1.0,) * 3, (1.0,) * 3, "3 runs per side; the protocol needs >= 5"),
])
def test_timing_ratio_needs_five_interleaved_rounds(ours, peer, words):
  with pytest.raises(ValueError, match=words):
    comparison.timing_ratio(Timing(ours), Timing(peer))


def test_measure_ratio_runs_both_sides_every_round():
  calls = []
  ratio = comparison.measure_ratio(lambda: calls.append("ours"),
                                   lambda: calls.append("peer"))
  assert calls.count("ours") == calls.count("peer") == 5 == ratio.rounds
  # Interleaved: the order alternates from round to round.
  assert calls[:4] == ["ours", "peer", "peer", "ours"]
  assert 0 < ratio.low <= ratio.high


def test_repeats_of_fixed_items_do_not_narrow_the_interval():
  """A deterministic method scores the same items identically in every repeat: with
  same_items its interval is that of one repeat; drawn apart, it would shrink ~√R."""
  rng = np.random.default_rng(4)
  ours, peer = rng.normal(0.52, 0.1, 60), rng.normal(0.5, 0.1, 60)
  one = comparison.paired_difference([ours], [peer], seed=1)
  five = comparison.paired_difference([ours] * 5, [peer] * 5, seed=1, same_items=True)
  apart = comparison.paired_difference([ours] * 5, [peer] * 5, seed=1)
  assert five.high - five.low == pytest.approx(one.high - one.low, rel=0.1)
  assert apart.high - apart.low < 0.6 * (one.high - one.low)
  cell = comparison.interval([ours] * 3, same_items=True)
  assert cell.mean == pytest.approx(ours.mean())


def test_same_items_drops_an_item_nan_in_any_repeat_and_checks_lengths():
  a = [np.array([1.0, np.nan, 0.0]), np.array([1.0, 0.5, 0.0])]
  assert comparison.interval(a, same_items=True).mean == pytest.approx(0.5)
  with pytest.raises(ValueError, match=r"same_items, but the repeats score \[3, 2\] items"):
    comparison.interval([np.ones(3), np.ones(2)], same_items=True)
