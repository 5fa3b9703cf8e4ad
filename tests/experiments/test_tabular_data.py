"""Tabular experiment rows: pretraining rows, label splits (holdout or cross-fitted)."""

import dataclasses

import numpy as np
import pytest

from tfrs_emb.data import table as tbl
from tfrs_emb.experiments import tabular
from tfrs_emb.experiments import tabular_data


def _csv(path, n=40, with_label=True, seed=0):
  rng = np.random.default_rng(seed)
  lines = ["x, kind, y" if with_label else "x, kind"]
  for i in range(n):
    cells = [f"{rng.normal():.3f}", rng.choice(["a", "b", "c"])]
    lines.append(", ".join(cells + ([str(i % 2)] if with_label else [])))
  path.write_text("\n".join(lines) + "\n")
  return path


def test_pretraining_rows_train_all_and_unlabelled_files(tmp_path):
  cfg = tabular.Config(data=str(_csv(tmp_path / "t.csv")), label_column="y",
                       eval_fraction=0.25)
  unlabelled = str(_csv(tmp_path / "u.csv", n=10, with_label=False, seed=1))
  sizes = {}
  for on in ("train", "all"):
    for extra in ((), (unlabelled,)):
      c = dataclasses.replace(cfg, pretrain_on=on, unlabelled_data=extra)
      prep = tabular_data.prepare(c)
      f = tabular_data.pretraining_features(c, prep)
      assert f["categorical"].shape == (len(f["continuous"]), 1)
      sizes[on, len(extra)] = len(f["continuous"])
  assert sizes == {("train", 0): 30, ("all", 0): 40, ("train", 1): 40, ("all", 1): 50}
  # The extra file's rows are scaled with the training split's statistics.
  c = dataclasses.replace(cfg, unlabelled_data=(unlabelled,))
  prep = tabular_data.prepare(c)
  raw = tbl.encode_features(tbl.read_table(unlabelled), prep.schema)["continuous"]
  np.testing.assert_allclose(tabular_data.pretraining_features(c, prep)["continuous"][40:],
                             prep.scaler.transform(raw), atol=1e-6)


def test_label_split_cross_fits_below_the_threshold(tmp_path):
  cfg = tabular.Config(data=str(_csv(tmp_path / "t.csv", n=200)), label_column="y",
                       eval_fraction=0.25, crossfit_folds=4)
  prep = tabular_data.prepare(cfg)
  holdout = tabular_data.label_split(dataclasses.replace(cfg, crossfit_below=0), prep, 1.0)
  assert len(holdout.folds) == 1
  assert np.array_equal(holdout.selection_idx, holdout.val_idx)
  split = tabular_data.label_split(cfg, prep, 1.0)  # 23 validation rows < 1000
  labelled = prep.train_idx[split.lab]
  assert len(split.folds) == 4
  assert np.array_equal(np.sort(split.selection_idx), labelled)  # each row held out once
  for fit, held in split.folds:
    assert not np.intersect1d(fit, held).size and len(fit) + len(held) == len(labelled)


def test_a_class_without_training_rows_at_a_label_fraction_is_an_error(tmp_path):
  path = _csv(tmp_path / "t.csv", n=200)
  path.write_text(path.read_text() + "0.5, a, rare\n0.7, b, rare\n")
  cfg = tabular.Config(data=str(path), label_column="y", eval_fraction=0.25)
  prep = tabular_data.prepare(cfg)
  assert (prep.labels[prep.train_idx] == prep.schema.classes.index("rare")).sum() == 1
  split = tabular_data.label_split(cfg, prep, 1.0)   # its one training row is fitted on
  assert "rare" in {prep.schema.classes[c] for c in prep.labels[split.fit_idx]}
  with pytest.raises(ValueError, match=r"label fraction 0\.1: training rows: no row of class "
                                       r"'rare' \(1 row\(s\) to draw from\)"):
    tabular_data.label_split(cfg, prep, 0.1)
  run_cfg = dataclasses.replace(cfg, label_fractions=(0.1, 1.0), output_dir=str(tmp_path / "o"))
  with pytest.raises(ValueError, match=r"label fraction 0\.1: training rows: no row of class "
                                       "'rare'"):
    tabular.run(run_cfg)            # before any training: no metrics, no checkpoints
  assert not list((tmp_path / "o").iterdir())


def test_a_single_labelled_row_of_a_class_is_trained_by_every_fold(tmp_path):
  """Cross-fitted, a class with one labelled row is in every fold's training rows (no fold's
  GBDT or Transformer trains without it) and held out by none."""
  path = _csv(tmp_path / "t.csv", n=200)
  path.write_text(path.read_text() + "0.5, a, rare\n0.7, b, rare\n")
  cfg = tabular.Config(data=str(path), label_column="y", eval_fraction=0.25, crossfit_folds=4)
  prep = tabular_data.prepare(cfg)
  rare = prep.schema.classes.index("rare")
  split = tabular_data.label_split(cfg, prep, 1.0)
  assert len(split.folds) == 4
  assert list(prep.labels[split.unscored_idx]) == [rare]
  for fit, _ in split.folds:
    assert rare in prep.labels[fit]
  assert rare not in prep.labels[split.selection_idx]


def test_too_few_labelled_rows_for_the_folds_is_an_error_naming_the_fraction(tmp_path):
  cfg = tabular.Config(data=str(_csv(tmp_path / "t.csv", n=40)), label_column="y",
                       eval_fraction=0.2, crossfit_folds=5)
  prep = tabular_data.prepare(cfg)   # 32 training rows: 0.1 labels 2 of each class
  with pytest.raises(ValueError, match=r"label fraction 0\.1: 4 labelled row\(s\) are too "
                                       r"few: .* at least 5 labelled rows"):
    tabular_data.label_split(cfg, prep, 0.1)
  assert len(tabular_data.label_split(cfg, prep, 0.2).folds) == 5


def test_numeric_regression_label_is_refused_naming_the_column(tmp_path):
  """A label with non-integer numbers, or more integer values than --max_classes, stops
  the run with the file, the column and what is expected."""
  path = tmp_path / "houses.csv"
  path.write_text("rooms,city,price\n" + "".join(
      f"{i % 5},c{i % 3},{100 + i * 1.5}\n" for i in range(40)))
  cfg = tabular.Config(data=str(path), label_column="price")
  with pytest.raises(ValueError, match=r"houses.csv: label column 'price' looks numeric "
                     r"\(a regression target\): it holds non-integer numbers such as "):
    tabular_data.prepare(cfg)
  counts = tmp_path / "counts.csv"
  counts.write_text("x,n\n" + "".join(f"{i * 0.5},{i}\n" for i in range(30)))
  with pytest.raises(ValueError, match=r"label column 'n' .* 30 distinct values \(more "
                     r"than --max_classes=20\)"):
    tabular_data.prepare(tabular.Config(data=str(counts), label_column="n", max_classes=20))
  # Few integer classes and string classes are classification labels.
  assert tabular_data.prepare(tabular.Config(
      data=str(path), label_column="rooms")).schema.classes == ("0", "1", "2", "3", "4")
