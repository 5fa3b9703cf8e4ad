"""The tabular time budget: a bigger table gets fewer epochs, then fewer trials and folds;
the clock prints the time left; pretraining and fits stop at their deadlines; later label
fractions are re-planned from the measured fits."""

import dataclasses
import time
import types

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import synthetic_table
from tfrs_emb.experiments import tabular
from tfrs_emb.experiments import tabular_budget as budget
from tfrs_emb.experiments import tabular_data
from tfrs_emb.models import tabular_training as training


@pytest.fixture
def cheap_gbdt_trials(monkeypatch):
  """A 1 s GBDT floor: the GBDT fits of a second trial fit the GBDT share, so these tests
  see the Transformer fits' rule alone (the GBDT trial rule has its own test)."""
  monkeypatch.setattr(budget, "GBDT_MIN_FIT_SECONDS", 1.0)


def _plan(labelled, budget_s=540.0, row_s=2e-4, trials=2, repeats=1):
  work = [budget.FractionWork(labelled // 10, int(labelled // 10 * 0.85),
                              labelled // 10 * 0.15 < 1000, 1),
          budget.FractionWork(labelled, int(labelled * 0.85), False, 1)]
  return budget.plan_fits(budget_s, row_s, work, trials=trials,
                          repeats=repeats, max_epochs=70, crossfit_folds=5, batch_size=256,
                          min_steps_per_epoch=10)


def test_bigger_tables_get_fewer_epochs_then_fewer_trials_and_folds(cheap_gbdt_trials):
  small, mid, big, huge = (_plan(n) for n in (2_000, 24_000, 120_000, 2_000_000))
  assert small.finetune_epochs == 70 and small.trials == 2     # the cap, untouched
  assert mid.finetune_epochs < small.finetune_epochs and mid.trials == 2
  assert big.finetune_epochs < mid.finetune_epochs
  assert huge.trials == 1 and huge.finetune_epochs >= 1        # then trials ...
  tight = _plan(60_000, budget_s=60)                           # 10 % cross-fitted
  assert tight.trials == 1 and 2 <= tight.crossfit_folds < 5    # ... then folds
  # repeats cost refits, so they shrink the epochs too
  assert _plan(24_000, repeats=3).finetune_epochs < mid.finetune_epochs


def test_ensemble_members_count_as_fits(cheap_gbdt_trials):
  work = [budget.FractionWork(24_000, 20_400, False, 1)]
  plans = [budget.plan_fits(540.0, 2e-4, work, trials=2, repeats=2, max_epochs=70,
                            crossfit_folds=5, batch_size=256, min_steps_per_epoch=10,
                            members=m) for m in ((), (1, 4))]
  # (1 + 1) trials + 1 scratch + 1 refit = 4 fits; (1 + 4) + 1 + 4 (the refit may be k=4)
  rows = budget.epoch_rows(20_400, 256, 10) * 2e-4 * budget.FIT_COST_RATIO
  assert [p.finetune_epochs for p in plans] == [
      int(budget.FIT_SHARE * 540 / (u * rows)) for u in (4, 10)]
  assert plans[1].ensemble and plans[1].trials == 2
  # a tight budget leaves the TabM trials out before it drops trials
  tight = budget.plan_fits(120.0, 2e-4, work, trials=2, repeats=1, max_epochs=70,
                           crossfit_folds=5, batch_size=256, min_steps_per_epoch=10,
                           members=(1, 4))
  assert not tight.ensemble and tight.trials == 2
  assert "TabM trials left out" in budget.describe(tight, [3], 120.0)


def test_no_pretraining_row_doubles_our_fits_and_metric_fits(cheap_gbdt_trials):
  work = [budget.FractionWork(24_000, 20_400, False, 1)]
  kw = dict(trials=2, repeats=2, max_epochs=70, crossfit_folds=5, batch_size=256,
            min_steps_per_epoch=10)
  plain, both = (budget.plan_fits(540.0, 2e-4, work, no_pretraining_row=b, **kw)
                 for b in (False, True))
  rows = budget.epoch_rows(20_400, 256, 10) * 2e-4 * budget.FIT_COST_RATIO
  # ours: 2 trials + 1 refit, twice with the ablation; 1 scratch fit either way
  assert [p.finetune_epochs for p in (plain, both)] == [
      int(budget.FIT_SHARE * 540 / (u * rows)) for u in (4, 7)]
  assert both.metric_fit_seconds[0] == pytest.approx(plain.metric_fit_seconds[0] / 2)


def test_fixed_cost_per_fit_leaves_fewer_epochs_then_fewer_trials(cheap_gbdt_trials):
  assert budget.fixed_seconds([31.5, 14.3, 20.7]) == 31.5 - 14.3
  assert budget.fixed_seconds([12.0]) == 0.0 and budget.fixed_seconds([]) == 0.0
  work = [budget.FractionWork(2560, 2176, True, 1), budget.FractionWork(25600, 21760, False, 1)]
  kw = dict(trials=2, repeats=1, max_epochs=70, crossfit_folds=5, batch_size=128,
            min_steps_per_epoch=10)
  free, traced = (budget.plan_fits(540.0, 6.47e-4, work, pretrain_fixed_seconds=f, **kw)
                  for f in (0.0, 10.4))
  # 3 fits × (5 folds + 1 holdout) = 18 fits at 10.4 s fixed each leave 56 s of 243 s:
  # under 5 epochs with 2 trials, so one trial (12 fits) with the rest's epochs
  assert free.trials == 2 and traced.trials == 1
  assert traced.fit_fixed_seconds == 10.4 * budget.FIXED_COST_RATIO
  rows = (2 * 5 * budget.epoch_rows(2048, 128, 10) + 2 * 21760) * 6.47e-4 * 0.5
  assert traced.finetune_epochs == int((budget.FIT_SHARE * 540 - 12 * 10.4) / rows)
  assert "10.4 s fixed per fit" in budget.describe(traced, [3], 540.0)


def test_plan_matches_the_rule_arithmetic(cheap_gbdt_trials):
  plan = _plan(24_000)
  # 10 %: 2,400 labelled, 360-row holdout < 1000 → 5 folds of 1,920 trained rows;
  # 100 %: 20,400 trained rows; (2 trials + scratch) fits each.
  rows = 3 * 5 * budget.epoch_rows(1920, 256, 10) + 3 * budget.epoch_rows(20400, 256, 10)
  expected = int(budget.FIT_SHARE * 540 / (rows * 2e-4 * budget.FIT_COST_RATIO))
  assert plan.finetune_epochs == expected
  assert budget.epoch_rows(100, 256, 10) == 1000 and budget.epoch_rows(5120, 256, 10) == 5120
  # NCA: 2 trials × (5 folds + 1 holdout); GBDT: 2 peers × 2 trials × (5 folds + fit/refit)
  # NCA: 2 trials × 5 folds of 1,920 rows, 2 × 20,400; each 3 s, the rest ∝ rows²
  cost, rest = 10 * 1920 ** 2 + 2 * 20400 ** 2, budget.METRIC_SHARE * 540 - 12 * 3.0
  assert plan.metric_fit_seconds == pytest.approx(
      (3 + rest * 1920 ** 2 / cost, 3 + rest * 20400 ** 2 / cost))
  assert "at most 3 / 12 s per NCA metric fit (by label fraction)" in budget.describe(
      plan, [3], 540.0)
  # a share too small for the floor is split evenly
  tight = _plan(24_000, budget_s=54)
  fits = tight.trials * (tight.crossfit_folds + 1)
  assert tight.metric_fit_seconds == pytest.approx((budget.METRIC_SHARE * 54 / fits,) * 2)
  assert plan.gbdt_fit_seconds == max(budget.GBDT_MIN_FIT_SECONDS, budget.GBDT_SHARE * 540 / 28)
  big = _plan(24_000, budget_s=54_000)
  assert big.gbdt_fit_seconds == budget.GBDT_SHARE * 54_000 / 28


def test_trials_drop_while_later_trials_gbdt_fits_exceed_their_share():
  # Cover Type's budget: a second trial adds 2 peers × (5 folds + fit / refit) = 14 GBDT
  # fits, 840 s at the 60 s floor, against a 108 s GBDT share
  work = [budget.FractionWork(1200, 1020, True, 1), budget.FractionWork(12000, 10200, False, 1)]
  kw = dict(trials=2, repeats=3, max_epochs=70, crossfit_folds=5, batch_size=256,
            min_steps_per_epoch=10)
  assert budget.plan_fits(1080.0, 1e-6, work, **kw).trials == 1
  # a budget whose GBDT share holds the second trial's 840 s keeps it
  assert budget.plan_fits(8400.0, 1e-6, work, **kw).trials == 2
  assert budget.plan_fits(8399.0, 1e-6, work, **kw).trials == 1


def test_start_is_random_only_when_the_budget_cut_pretraining_short():
  assert budget.choose_start("auto", 3, 20)[0] == "random"
  assert "stopped pretraining after 3 of 20 epochs (below 5)" in budget.choose_start(
      "auto", 3, 20)[1]
  assert budget.choose_start("auto", budget.MIN_PRETRAIN_EPOCHS, 20)[0] == "pretrained"
  # the user asked for 2 epochs and got them: not cut by the budget
  assert budget.choose_start("auto", 2, 2)[0] == "pretrained"
  assert budget.choose_start("auto", 1, 2)[0] == "random"
  assert budget.choose_start("pretrained", 0, 20) == ("pretrained", "--start=pretrained")
  assert budget.choose_start("random", 20, 20)[0] == "random"


def test_clock_prefixes_time_left():
  now = [100.0]
  clock = budget.Clock(60, now=lambda: now[0])
  lines = []
  now[0] = 115.0
  clock.log(lines.append)("pretraining")
  assert lines == ["[45 s left] pretraining"]
  sink = lines.append
  assert budget.Clock(0).log(sink) is sink   # no budget: unchanged
  assert budget.Clock(0).deadline(5) == float("inf")


def _features(n=64):
  rng = np.random.default_rng(0)
  return {"continuous": rng.normal(size=(n, 2)).astype(np.float32),
          "categorical": rng.integers(0, 3, size=(n, 1)).astype(np.int32)}


def test_pretraining_and_fits_stop_at_their_deadlines():
  lines = []
  enc = training.build_encoder(2, (3,), dim=8, num_heads=2, num_layers=1)
  model = training.pretrain(enc, _features(), epochs=50, batch_size=32, lr=1e-3, seed=0,
                            deadline=time.monotonic(), log=lines.append)
  assert model.epochs_run == 1 and "stopped after 1 of 50 epochs" in lines[-1]
  f = _features()
  y = (f["continuous"][:, 0] > 0).astype(np.int32)
  history = []

  class Count(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      history.append(epoch)
  clf = training.fit_classifier(enc, 2, f, y, f, y, lr=1e-3, encoder_lr_multiplier=1.0,
                                epochs=30, batch_size=32, patience=30, seed=0,
                                time_limit=0.0)
  assert clf.history.epoch == [0, 1]     # the first epoch (tracing) never stops a fit
  assert len(clf.history.history["epoch_seconds"]) == 2   # what the re-plan measures


def _limit_stops(seconds, epoch_seconds, monkeypatch):
  """Epochs a ``TimeLimit(seconds)`` lets run when its epochs take these seconds."""
  now = [0.0]
  monkeypatch.setattr(training.time, "monotonic", lambda: now[0])
  limit = training.TimeLimit(seconds)
  limit.set_model(tf.keras.Sequential())
  limit.model.stop_training = False
  for epoch, s in enumerate(epoch_seconds):
    limit.on_epoch_begin(epoch)
    now[0] += s
    limit.on_epoch_end(epoch)
    if limit.model.stop_training:
      return epoch + 1
  return len(epoch_seconds)


def test_time_limit_does_not_count_the_traced_first_epoch(monkeypatch):
  # a small fit: tracing makes the first epoch 9 s, then 1 s each; 6.6 s hold six
  assert _limit_stops(6.6, [9.0] + [1.0] * 9, monkeypatch) == 6
  # steady epochs of 3 s: after epoch 2, (3) + 2 * 3 = 9 > 8 stops it
  assert _limit_stops(8.0, [20.0] + [3.0] * 9, monkeypatch) == 2
  assert _limit_stops(100.0, [20.0] + [3.0] * 9, monkeypatch) == 10


def test_time_limit_records_every_epoch(monkeypatch):
  now = [0.0]
  monkeypatch.setattr(training.time, "monotonic", lambda: now[0])
  limit = training.TimeLimit(100.0)
  limit.set_model(tf.keras.Sequential())
  for epoch, s in enumerate([9.0, 1.5, 2.0]):
    limit.on_epoch_begin(epoch)
    now[0] += s
    limit.on_epoch_end(epoch)
  assert limit.epoch_seconds == [9.0, 1.5, 2.0]


def test_ledger_measures_steady_epochs_and_the_rest_as_fixed_cost():
  ledger = budget.FitLedger()
  assert ledger.row_epoch_estimate() is None and ledger.fixed_estimate() == 0.0
  # two fits of 1,000 row-visits: steady epochs of 1 s and 3 s, first epochs traced
  ledger.record(30.0, [(1000, [9.0, 1.0, 1.0, 1.2]), (1000, [12.0, 3.0, 3.0])])
  assert ledger.row_epoch_estimate() == 2e-3           # median of 1e-3 and 3e-3
  # 30 s less the steady epochs (4 × 1 s + 3 × 3 s) over 2 fits
  assert ledger.fixed_estimate() == (30.0 - 13.0) / 2
  ledger.record(5.0, [(500, [5.0])])                    # one epoch: all of it fixed
  assert ledger.fits == 3 and ledger.fixed_estimate() == (35.0 - 13.0) / 3


def test_replan_shrinks_epochs_to_the_measured_seconds():
  work = [budget.FractionWork(20_000, 17_000, False, 1)]
  kw = dict(trials=1, repeats=3, members=(1,), crossfit_folds=4, batch_size=256,
            min_steps_per_epoch=10, no_pretraining_row=False, max_epochs=6,
            fit_fixed_seconds=10.0)
  # 3 refits + 1 scratch = 4 fits of 17,000 row-visits
  assert budget.replan_epochs(70.0, work, row_epoch_seconds=1e-4, **kw) == int(
      (70 - 4 * 10) / (4 * 17_000 * 1e-4)) == 4
  assert budget.replan_epochs(400.0, work, row_epoch_seconds=1e-4, **kw) == 6    # the plan
  assert budget.replan_epochs(10.0, work, row_epoch_seconds=1e-4, **kw) == 1     # floor
  ledger = budget.FitLedger(seconds=200.0, fits=8)
  args = (1080, ledger, 133.0)
  # the shares: fit 486 − 200, pretraining 270 − 133; the clock: 600 − 150 − 108 (rest)
  assert budget.replan_seconds(*args, 0, 135.0, 600.0, 150.0) == pytest.approx(
      min(486 - 200 + 270 - 133, 600 - 150 - budget.REST_SHARE * 1080))
  assert budget.replan_seconds(*args, 0, 135.0, 2000.0, 0.0) == pytest.approx(423)
  # an embedding still to pretrain takes its share from either
  assert budget.replan_seconds(*args, 1, 135.0, 2000.0, 0.0) == pytest.approx(423 - 135)


def test_replan_step_sizes_the_last_fraction_from_the_ledger(tmp_path):
  data = synthetic_table.write_table(tmp_path / "t.csv", rows=3000)
  cfg = tabular.Config(data=str(data), label_column="label", label_fractions=(0.1, 1.0),
                       time_budget=300, trials=2, search_ensemble_ks=(1,),
                       search_numeric_embeddings=("periodic", "ple"), repeats=1,
                       crossfit_below=100, fit_row_epoch_seconds=1.0, finetune_epochs=70)
  prep = tabular_data.prepare(cfg)
  ledger = budget.FitLedger()
  ledger.record(20.0, [(2000, [8.0, 0.4, 0.4])] * 2)   # 2e-4 s per row-epoch, 8.8 s fixed
  done = {"periodic": types.SimpleNamespace(seconds=30.0)}
  visits = budget.epoch_rows(len(tabular_data.label_split(cfg, prep, 1.0).fit_idx),
                             cfg.finetune_batch_size, cfg.min_steps_per_epoch)
  # the shares' seconds (ple still to pretrain) bind: trials (periodic, ple) + scratch =
  # 3 holdout fits at 1.0
  new, note = tabular.replan_step(cfg, prep, [1.0], done, ledger, 37.5, 1e4, 0.0, 70)
  seconds = budget.FIT_SHARE * 300 - 20 + budget.PRETRAIN_SHARE * 300 - 30 - 37.5
  assert new.finetune_epochs == int((seconds - 3 * 8.8) / (3 * visits * 2e-4)) < 70
  assert new.fit_row_epoch_seconds == pytest.approx(2e-4)
  assert f"70 → {new.finetune_epochs}: {seconds:.0f} s left for the fits of @1" in note
  assert "measured over 2 fits: 200.0 µs per fitted row-epoch, 8.8 s fixed per fit" in note
  # the clock binds: 180 s left, 40 s per fraction outside the fits, 30 s rest share
  tight, note = tabular.replan_step(cfg, prep, [1.0], done, ledger, 37.5, 180.0, 40.0, 70)
  seconds = 180 - 40 - budget.REST_SHARE * 300 - 37.5
  assert tight.finetune_epochs == int((seconds - 3 * 8.8) / (3 * visits * 2e-4))
  assert 1 < tight.finetune_epochs < new.finetune_epochs
  assert "40 s per fraction outside the fits" in note
  # more time than planned never grows the epochs
  assert tabular.replan_step(tight, prep, [1.0], done, ledger, 0.0, 1e4, 0.0, 70)[0] \
      .finetune_epochs == tight.finetune_epochs
  # ... except a starved plan (below MIN_FIT_EPOCHS), up to it and within the flag's cap
  starved = dataclasses.replace(cfg, finetune_epochs=1)
  grown = tabular.replan_step(starved, prep, [1.0], done, ledger, 0.0, 1e4, 0.0, 70)[0]
  assert grown.finetune_epochs == budget.MIN_FIT_EPOCHS
  assert tabular.replan_step(starved, prep, [1.0], done, ledger, 0.0, 1e4, 0.0, 3)[0] \
      .finetune_epochs == 3
  assert tabular.replan_step(starved, prep, [1.0], done, ledger, 0.0, 60.0, 40.0, 70)[0] \
      .finetune_epochs == 1   # no time left: stays


@pytest.mark.parametrize("cheap_gbdt", [False, True])
def test_budget_step_gives_the_fits_the_pretraining_share_the_kept_trials_leave(
    tmp_path, monkeypatch, cheap_gbdt):
  """Trials dropped to 1 (the GBDT floor): ple's pretraining share and what pretraining
  left of its own go to the fits; trials kept (a cheap GBDT floor): ple keeps its share."""
  if cheap_gbdt:
    monkeypatch.setattr(budget, "GBDT_MIN_FIT_SECONDS", 1.0)
  data = synthetic_table.write_table(tmp_path / "t.csv", rows=3000)
  cfg = tabular.Config(data=str(data), label_column="label", label_fractions=(0.1, 1.0),
                       time_budget=600, trials=2, search_ensemble_ks=(1,),
                       search_numeric_embeddings=("periodic", "ple"), finetune_epochs=1000)
  prep = tabular_data.prepare(cfg)
  pre = types.SimpleNamespace(seconds=20.0, epoch_seconds=[3.0, 2.0], num_rows=3000,
                              epochs=2)
  each = budget.PRETRAIN_SHARE * 600 / 2
  new, note = tabular.budget_step(cfg, prep, pre, each)
  assert new.trials == (2 if cheap_gbdt else 1)
  spare = budget.PRETRAIN_SHARE * 600 - 20.0 - (each if cheap_gbdt else 0.0)
  work = tabular.fraction_work(new, prep, [0.1, 1.0])
  kw = dict(trials=new.trials, repeats=1, max_epochs=1000, crossfit_folds=5,
            batch_size=256, min_steps_per_epoch=10, pretrain_fixed_seconds=1.0)
  with_spare = budget.plan_fits(600, 2.0 / 3000, work, spare_seconds=spare, **kw)
  assert new.finetune_epochs == with_spare.finetune_epochs > budget.plan_fits(
      600, 2.0 / 3000, work, **kw).finetune_epochs
  assert f"the fits also get the {spare:.0f} s of the pretraining share" in note


def test_budget_step_keeps_the_first_passes_drops_and_never_takes_an_overrun(tmp_path):
  """The TabM trials left out by the first pass stay out (and the note says so); a
  pretraining that overran its share gives the fits nothing and takes nothing."""
  data = synthetic_table.write_table(tmp_path / "t.csv", rows=3000)
  cfg = tabular.Config(data=str(data), label_column="label", label_fractions=(0.1, 1.0),
                       time_budget=200, trials=1, ensemble_k=4, search_ensemble_ks=(4,),
                       search_numeric_embeddings=("periodic",), finetune_epochs=1000)
  prep = tabular_data.prepare(cfg)
  pre = types.SimpleNamespace(seconds=80.0, epoch_seconds=[3.0, 2.0], num_rows=3000,
                              epochs=2)   # 80 s > the 50 s share
  new, note = tabular.budget_step(cfg, prep, pre, 50.0)
  assert new.ensemble_k == 1 and "TabM trials left out" in note
  assert "pretraining share" not in note
  work = tabular.fraction_work(new, prep, [0.1, 1.0])
  plain = budget.plan_fits(200, 2.0 / 3000, work, trials=1, repeats=1, max_epochs=1000,
                           crossfit_folds=5, batch_size=256, min_steps_per_epoch=10,
                           pretrain_fixed_seconds=1.0)
  assert new.finetune_epochs == plain.finetune_epochs


def test_untuned_lightgbm_obeys_the_gbdt_fit_seconds(tmp_path):
  """The untuned lightgbm row stops adding trees after ``gbdt_fit_seconds`` like the tuned
  peers (it once ran unbounded: 150 classes ran a 60 s budget past 400 s)."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 2))
  lines = ["x1,x2,y"] + [f"{a:.3f},{b:.3f},{int(a > 0) + int(b > 0)}" for a, b in x]
  (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
  cfg = tabular.Config(data=str(tmp_path / "t.csv"), label_column="y", lgbm_max_trees=300,
                       lgbm_early_stopping=300)
  prep = tabular_data.prepare(cfg)
  split = tabular_data.label_split(cfg, prep, 1.0)
  lgbm = tabular.lightgbm_features(prep.raw_continuous, prep.features["categorical"],
                                   prep.schema)
  _, unlimited = tabular.lightgbm_step(cfg, prep, lgbm, split)
  _, limited = tabular.lightgbm_step(
      tabular.dataclasses.replace(cfg, gbdt_fit_seconds=1e-6), prep, lgbm, split)
  assert unlimited > 20 and limited == 1
