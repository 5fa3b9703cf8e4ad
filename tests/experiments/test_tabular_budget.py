"""The tabular time budget: a bigger table gets fewer epochs, then fewer trials and folds;
the clock prints the time left; pretraining and fits stop at their deadlines."""

import time

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.experiments import tabular_budget as budget
from tfrs_emb.models import tabular_training as training


def _plan(labelled, budget_s=540.0, row_s=2e-4, trials=2, repeats=1):
  work = [budget.FractionWork(labelled // 10, int(labelled // 10 * 0.85),
                              labelled // 10 * 0.15 < 1000, 1),
          budget.FractionWork(labelled, int(labelled * 0.85), False, 1)]
  return budget.plan_fits(budget_s, row_s, work, trials=trials,
                          repeats=repeats, max_epochs=70, crossfit_folds=5, batch_size=256,
                          min_steps_per_epoch=10)


def test_bigger_tables_get_fewer_epochs_then_fewer_trials_and_folds():
  small, mid, big, huge = (_plan(n) for n in (2_000, 24_000, 120_000, 2_000_000))
  assert small.finetune_epochs == 70 and small.trials == 2     # the cap, untouched
  assert mid.finetune_epochs < small.finetune_epochs and mid.trials == 2
  assert big.finetune_epochs < mid.finetune_epochs
  assert huge.trials == 1 and huge.finetune_epochs >= 1        # then trials ...
  tight = _plan(60_000, budget_s=60)                           # 10 % cross-fitted
  assert tight.trials == 1 and 2 <= tight.crossfit_folds < 5    # ... then folds
  # repeats cost refits, so they shrink the epochs too
  assert _plan(24_000, repeats=3).finetune_epochs < mid.finetune_epochs


def test_ensemble_members_count_as_fits():
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


def test_no_pretraining_row_doubles_our_fits_and_metric_fits():
  work = [budget.FractionWork(24_000, 20_400, False, 1)]
  kw = dict(trials=2, repeats=2, max_epochs=70, crossfit_folds=5, batch_size=256,
            min_steps_per_epoch=10)
  plain, both = (budget.plan_fits(540.0, 2e-4, work, no_pretraining_row=b, **kw)
                 for b in (False, True))
  rows = budget.epoch_rows(20_400, 256, 10) * 2e-4 * budget.FIT_COST_RATIO
  # ours: 2 trials + 1 refit, twice with the ablation; 1 scratch fit either way
  assert [p.finetune_epochs for p in (plain, both)] == [
      int(budget.FIT_SHARE * 540 / (u * rows)) for u in (4, 7)]
  assert both.metric_fit_seconds == plain.metric_fit_seconds / 2


def test_fixed_cost_per_fit_leaves_fewer_epochs_then_fewer_trials():
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


def test_plan_matches_the_rule_arithmetic():
  plan = _plan(24_000)
  # 10 %: 2,400 labelled, 360-row holdout < 1000 → 5 folds of 1,920 trained rows;
  # 100 %: 20,400 trained rows; (2 trials + scratch) fits each.
  rows = 3 * 5 * budget.epoch_rows(1920, 256, 10) + 3 * budget.epoch_rows(20400, 256, 10)
  expected = int(budget.FIT_SHARE * 540 / (rows * 2e-4 * budget.FIT_COST_RATIO))
  assert plan.finetune_epochs == expected
  assert budget.epoch_rows(100, 256, 10) == 1000 and budget.epoch_rows(5120, 256, 10) == 5120
  # NCA: 2 trials × (5 folds + 1 holdout); GBDT: 2 peers × 2 trials × (5 folds + fit/refit)
  assert plan.metric_fit_seconds == budget.METRIC_SHARE * 540 / 12
  assert plan.gbdt_fit_seconds == max(budget.GBDT_MIN_FIT_SECONDS,
                                      budget.GBDT_SHARE * 540 / 28) == 60.0
  big = _plan(24_000, budget_s=54_000)
  assert big.gbdt_fit_seconds == budget.GBDT_SHARE * 54_000 / 28


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
