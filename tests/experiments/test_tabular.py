"""Tabular experiment: generic tables end to end (Cover Type small flagfile, credit.csv),
ensemble heads per label fraction, our trial order, trainer flag errors."""

import dataclasses
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import table as tbl
from tfrs_emb.experiments import tabular
from tfrs_emb.experiments import tabular_compare
from tfrs_emb.experiments import tabular_data
from tfrs_emb.models.tabular_serving import serving_fields

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROW_MODELS = {"knn_k2", "finetune", "retrieval", "metric_retrieval", "scratch", "lightgbm"}


def test_ensemble_heads_one_value_or_one_per_fraction():
  cfg = tabular.Config(label_fractions=(1.0, 0.1), ensemble_heads=(3, 1))
  assert [tabular.ensemble_heads(cfg, f) for f in (0.1, 1.0)] == [3, 1]
  assert tabular.ensemble_heads(dataclasses.replace(cfg, ensemble_heads=(2,)), 1.0) == 2
  with pytest.raises(ValueError, match="one per label fraction"):
    tabular.ensemble_heads(dataclasses.replace(cfg, ensemble_heads=(1, 2, 3)), 0.1)


def test_a_bad_count_of_metric_fit_seconds_fails_before_any_work(tmp_path):
  cfg = tabular.Config(data=str(tmp_path / "never_read.csv"), label_column="y",
                       label_fractions=(0.1, 1.0), metric_fit_seconds=(1.0, 2.0, 3.0),
                       output_dir=str(tmp_path / "out"), export_dir="")
  with pytest.raises(ValueError, match=r"--metric_fit_seconds needs one value or one per "
                                       r"label fraction \(2\), got 3"):
    tabular.run(cfg)


def test_ours_space_tries_ensemble_members_innermost():
  cfg = tabular.Config(search_finetune_lrs=(1e-3,), search_numeric_embeddings=("periodic",
                                                                                "ple"))
  space = tabular.ours_space(cfg)
  assert [(t["numeric_embedding"], t["ensemble_k"]) for t in space] == [
      ("periodic", 1), ("periodic", 4), ("ple", 1), ("ple", 4)]
  assert tabular.ours_space(dataclasses.replace(cfg, ensemble_k=4))[:2] == (
      {"numeric_embedding": "periodic", "finetune_lr": 1e-3, "ensemble_k": 4},
      {"numeric_embedding": "periodic", "finetune_lr": 1e-3, "ensemble_k": 1})


def test_pretraining_share_counts_the_embeddings_of_trials_without_tabm():
  """Default space: trial 2 is (periodic, 4 members), but when the budget drops the TabM
  trials it becomes (ple, 1): both embeddings share the pretraining budget from the start."""
  cfg = tabular.Config()
  assert [t["numeric_embedding"] for t in tabular.ours_space(cfg)[:2]] == ["periodic"] * 2
  assert tabular.planned_numeric_embeddings(cfg) == {"periodic", "ple"}
  one = dataclasses.replace(cfg, trials=1)
  assert tabular.planned_numeric_embeddings(one) == {"periodic"}


def test_a_random_start_pretrains_no_further_embedding():
  cfg = tabular.Config(trials=2, search_ensemble_ks=(1,), start="pretrained",
                       search_numeric_embeddings=("periodic", "ple"))
  assert tabular.embeddings_to_pretrain(cfg, {"periodic"}) == {"ple"}
  scratch = dataclasses.replace(cfg, start="random")
  assert tabular.embeddings_to_pretrain(scratch, {"periodic"}) == set()
  # ... unless the ablation row starts from pretrained weights
  assert tabular.embeddings_to_pretrain(dataclasses.replace(
      scratch, compare_no_pretraining=True), {"periodic"}) == {"ple"}


def _check_rows(metrics, fractions):
  rows = metrics["rows"]
  assert {(r["model"], r["label_fraction"]) for r in rows} == {
      (m, f) for m in ROW_MODELS for f in fractions}
  for r in rows:
    assert 0.0 <= r["macro_f1"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 and r["seconds"] >= 0
  return {(r["model"], r["label_fraction"]): r for r in rows}


def test_small_flagfile_end_to_end(shared_data, tmp_path):
  """configs/covertype_small.flags through the trainer: rows, report, raw-column export."""
  out = tmp_path / "covertype_small"
  cmd = [sys.executable, "-m", "trainers.tabular_contrastive",
         "--flagfile=configs/covertype_small.flags",
         f"--data={shared_data / 'covertype' / 'train.csv'}",
         f"--output_dir={out}", f"--export_dir={out / 'exported'}", "--verbose=0",
         "--compare_no_pretraining"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "column Soil_Type: one-hot group (declared one-hot group (40 columns))" in proc.stdout
  metrics = json.loads((out / "metrics.json").read_text())
  rows = _check_rows(metrics, (0.1, 1.0))
  assert rows["lightgbm", 1.0]["accuracy"] > 0.5  # far above chance (1/7)
  assert rows["retrieval", 1.0]["val_accuracy"] >= rows["finetune", 1.0]["val_accuracy"]
  assert metrics["config"]["onehot_groups"] == ["Wilderness_Area", "Soil_Type"]
  report = (out / "report.md").read_text()
  assert "0.7503" in report and "declared one-hot group" in report
  # The compared tables: equal trials, ours vs the best GBDT peer, a verdict.
  for frac in ("0.1", "1"):
    compared = metrics["compared"][frac]
    by_method = {r["method"]: r for r in compared["rows"]}
    assert {r["trials"] for r in by_method.values()} == {2}
    assert by_method[tabular_compare.OURS]["role"] == "ours"
    assert compared["best_peer"] in tabular_compare.PEER_ROWS.values()
    assert by_method[tabular_compare.OURS]["difference"]["verdict"] in ("win", "tie", "loss")
    assert by_method[tabular_compare.OTHER_START["random"]]["role"] == "shown"
    assert f"Compared at label fraction {frac}" in report
    assert f"pretraining vs none @{frac}" in report
  fn = tf.saved_model.load(str(out / "exported" / "1")).signatures["serving_default"]
  table = tbl.read_table(shared_data / "covertype" / "train.csv").subset(np.arange(5))
  schema = tabular_data.prepare(tabular.Config(
      data=str(shared_data / "covertype" / "train.csv"), label_column="Cover_Type",
      drop_columns=("Id",), onehot_groups=("Wilderness_Area", "Soil_Type"))).schema
  served = fn(**{k: tf.constant(v) for k, v in serving_fields(table, schema).items()})
  np.testing.assert_allclose(served["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
  assert set(served["label"].numpy().astype(str)) <= {str(c) for c in range(1, 8)}


def test_credit_end_to_end_with_inferred_types(shared_data, tmp_path):
  """credit.csv through the generic path, tiny model under the default time budget:
  inferred types, string labels, the second label fraction re-planned from the first's fits,
  quantile-scaled numbers (so the export carries knots, served like training), our fits
  from random weights (the pretrained start is the ablation row and, its trial-0 fit
  reused, the shown finetune row)."""
  cfg = tabular.Config(
      data=str(shared_data / "tables" / "credit.csv"), label_column="default", start="random",
      trials=1, compare_no_pretraining=True,
      max_integer_categories=4, numeric_scaling="quantile", output_dir=str(tmp_path / "credit"),
      export_dir=str(tmp_path / "credit" / "exported"), label_fractions=(0.5, 1.0),
      dim=8, num_heads=2, num_layers=1, num_frequencies=4, pretrain_epochs=1,
      pretrain_batch_size=128, finetune_epochs=2, patience=2, lgbm_max_trees=50,
      lgbm_early_stopping=10, crossfit_folds=2, umap=False, verbose=0)
  result = tabular.run(cfg, reseed=tf.keras.utils.set_random_seed)
  metrics = json.loads((tmp_path / "credit" / "metrics.json").read_text())
  rows = _check_rows(metrics, (0.5, 1.0))
  # the fits of @1 are re-planned from the 4 fits measured at @0.5: never above the plan,
  # or, from a starved plan, above --finetune_epochs=2
  report = (tmp_path / "credit" / "report.md").read_text()
  planned, replanned = map(int, re.search(
      r"- re-plan @1: fine-tuning epochs (\d+) → (\d+): \d+ s left for the fits of @1 "
      r"\(measured over 4 fits: ", report).groups())
  assert 1 <= replanned <= max(planned, 2) and planned <= 2
  types = {c["feature"]: c["type"] for c in metrics["schema"]["columns"]}
  assert types["checking_balance"] == "categorical"  # strings
  assert types["amount"] == "continuous"  # 921 distinct integers
  assert types["installment_rate"] == "categorical"  # 4 distinct integers
  scaling = {c["feature"]: c["scaling"] for c in metrics["schema"]["columns"]}
  assert scaling["checking_balance"] == "" and scaling["amount"].startswith("quantile")
  assert metrics["schema"]["classes"] == ["1", "2"]
  # ours starts from random weights: its classifier row is scratch (the compared table's
  # trial 0, validated like the heads), the pretrained start the shown finetune row
  assert metrics["encoder_start"]["resolved"] == metrics["config"]["start"] == "random"
  assert "random start" in report and "- encoder start: --start=random" in report
  assert "same Transformer, no pretraining + neighbour-label head" in report
  for frac in ("0.5", "1"):
    shown = {r["method"]: r for r in metrics["compared"][frac]["rows"]}[
        tabular_compare.OTHER_START["pretrained"]]
    assert shown["role"] == "shown"
    assert f"pretraining vs none @{frac}: pretrained − random start" in report
  ours_val = max(rows[m, 1.0]["val_accuracy"] for m in ("scratch", "retrieval",
                                                         "metric_retrieval"))
  assert metrics["compared"]["1"]["rows"][0]["dev"] == pytest.approx(ours_val)
  fn = tf.saved_model.load(str(result.export_path)).signatures["serving_default"]
  assert fn.structured_input_signature[1]["purpose"].dtype == tf.string
  table = tbl.read_table(cfg.data).subset(np.arange(4))
  fields = serving_fields(table, tabular_data.prepare(cfg).schema)
  fields["purpose"] = np.array(["spaceship", "car", "", "car"])  # unseen, known, missing
  out = fn(**{k: tf.constant(v) for k, v in fields.items()})
  assert np.isfinite(out["probabilities"].numpy()).all()
  assert set(out["label"].numpy().astype(str)) <= {"1", "2"}
  # The export is the model the compared table measured at 1.0 (cross-fitted: 2 fold
  # classifiers, and a neighbour index per fold when a neighbour head was chosen).
  prep = tabular_data.prepare(cfg)
  ours = metrics["compared"]["1"]["rows"][0]
  assert ours["role"] == "ours" and metrics["compared"]["1"]["repeats"] == 1
  evaluation = tbl.read_table(cfg.data).subset(prep.eval_idx)
  served = fn(**{k: tf.constant(v)
                 for k, v in serving_fields(evaluation, prep.schema).items()})
  accuracy = np.mean(served["class_id"].numpy() == prep.labels[prep.eval_idx])
  assert abs(accuracy - ours["mean"]) <= 2 / len(prep.eval_idx)  # float32 near-ties


def test_trainer_rejects_bad_input_with_file_line_and_column(tmp_path):
  bad = tmp_path / "bad.csv"
  bad.write_text("x,y\n1,a\n2,b\nlots,a\n")
  cmd = [sys.executable, "-m", "trainers.tabular_contrastive", f"--data={bad}",
         "--label_column=y", "--numeric_columns=x", f"--output_dir={tmp_path / 'o'}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert "bad.csv: line 4, column 'x': expected a finite number" in proc.stderr
