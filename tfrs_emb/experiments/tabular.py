"""Tabular contrastive Transformer (SPEC.md experiment 3) on any labelled CSV / Parquet table.

One seeded stratified split: evaluation rows are never used for labels, scaling,
vocabularies or model choice; pretraining sees the training split's features
(``pretrain_on="all"``: also the evaluation rows' features, never their labels). For each
label fraction, a stratified subset of the training split is labelled and ``val_fraction``
of it held out for early stopping and every model choice; where that holdout is small
(``crossfit_below``), K stratified folds of all labelled rows replace it (cross-fitting:
one Transformer per fold, every choice on out-of-fold predictions). Rows (metrics.json):
``knn_k2`` (frozen pretrained embedding), ``finetune`` (pretraining + fine-tuning),
``retrieval`` (our classifier mixed with a neighbour-label head over the labelled
training rows in its own embedding, k / temperature / weight chosen on validation with the
fitted rows as index; evaluation and export then index every labelled row),
``metric_retrieval`` (the same mix, neighbours in a linear metric embedding trained with
leave-self-out NCA on the fitted rows, ``models.tabular_metric``), ``scratch`` (same
architecture, no pretraining), ``lightgbm``. Our fits start from the pretrained encoder,
or from random weights when the time budget cut pretraining short (``--start``,
``tabular_budget`` rule 6): then the neighbour heads build on ``scratch`` and ``finetune``
is the shown row. The best of our classifier, retrieval and metric_retrieval on validation
at the largest fraction is exported (raw-column signature).

Each label fraction also has a compared table (``tabular_compare``, SPEC.md "Comparison
protocol"): "ours" is the embedding model chosen on validation among ``trials``
configurations (``ours_space``: numeric embedding periodic / piecewise-linear, fine-tuning
learning rate, TabM-mini ensemble members ``ensemble_k`` (``models.tabular_ensemble``: k
heads sharing one encoder, one fit, instead of separately trained classifiers); within
each, finetune or a neighbour head), against LightGBM and CatBoost
each tuned with the same number of trials over its own documented space
(``models.gbdt``), all on the same folds, ``repeats`` times with their own seeds; the run
says when a GBDT peer was better on validation. ``time_budget`` sizes pretraining,
fine-tuning epochs, trials and folds to the table (``tabular_budget``), and shrinks a
later label fraction's epochs when the fits measured before it leave too little time.

This module holds the ``Config``, the steps and ``run``; the rows and label splits are in
``tabular_data``, report.md / metrics.json / the UMAP figure in ``tabular_report``, the
neighbour-label head in ``retrieval.neighbor_head`` and LightGBM's feature matrix in
``models.lightgbm_baseline``.
"""

import dataclasses
import functools
import pathlib
import time
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb import reporting
from tfrs_emb.reporting import figures
from tfrs_emb.data import table as tbl
from tfrs_emb.experiments import common
from tfrs_emb.experiments import tabular_budget
from tfrs_emb.experiments import tabular_compare
from tfrs_emb.experiments import tabular_report
from tfrs_emb.experiments.common import field
from tfrs_emb.experiments.tabular_data import (LabelSplit, PreparedTable, column_rows,
                                               eval_rows, label_split, prepare,
                                               pretraining_features, select_rows)
from tfrs_emb.models import gbdt
from tfrs_emb.models import tabular_metric
from tfrs_emb.models.tabular import quantile_bin_edges
from tfrs_emb.models import tabular_training as training
from tfrs_emb.models.lightgbm_baseline import lightgbm_features
from tfrs_emb.models.tabular_serving import NeighborIndex, export_classifier
from tfrs_emb.retrieval.neighbor_head import (RetrievalChoice, Search, choose_mix, mix_probs,
                                              retrieval_probs)
from tfrs_emb.retrieval.neighbors import cosine_neighbors, knn_vote, l2_neighbors


NUMERIC_EMBEDDINGS = ("linear", "periodic", "ple")
STARTS = ("auto", "pretrained", "random")
UMAP_MAX_ROWS = 3000


@dataclasses.dataclass
class Config:
  """Every knob of the experiment (the trainer's flags, one to one)."""
  data: str = field("", "Labelled table: CSV (header row, .gz ok) or Parquet. Required.")
  label_column: str = field("", "Label column (strings or integers, >= 2 classes). Required.")
  max_classes: int = field(100, "Most label classes; a numeric label with more distinct "
                           "values (or a non-integer one) is refused as a regression target.",
                           lower=2, upper=100000)
  categorical_columns: Tuple[str, ...] = field((), "Columns declared categorical.")
  numeric_columns: Tuple[str, ...] = field((), "Columns declared continuous.")
  drop_columns: Tuple[str, ...] = field((), "Columns ignored (ids).")
  onehot_groups: Tuple[str, ...] = field((), "Prefixes of one-hot column groups, each "
                                         "collapsed into one categorical feature.")
  max_integer_categories: int = field(0, "Integer columns with at most this many distinct "
                                      "values are categorical (0: never).", lower=0,
                                      upper=100000)
  min_category_count: int = field(2, "Rarer training categories map to the learned "
                                  "out-of-vocabulary id.", lower=1, upper=100000)
  output_dir: str = field("runs/tabular", "metrics.json, report.md, PNG, logs.")
  export_dir: str = field("", "Model base path; the chosen classifier goes to "
                          "<export_dir>/1/. Empty: no export.")
  checkpoint_dir: str = field("", "Pretraining checkpoints (every epoch). Empty: "
                              "<output_dir>/pretrain_checkpoints.")
  resume: bool = field(False, "Resume pretraining from the latest checkpoint.")
  seed: int = field(0, "Seed for the split, label subsets and initialisation.", lower=0)
  time_budget: float = field(
      540.0, "Seconds the whole run aims at (0: no budget, the epochs / trials / folds as "
      "given): pretraining epochs, fine-tuning epochs, trials and cross-fitting folds are "
      "sized from the rows and the measured pretraining speed, and a later label fraction's "
      "fine-tuning epochs shrink when the fits measured before it leave too little time (rule: "
      "experiments.tabular_budget); every log line shows the time left.", lower=0.0)
  fit_row_epoch_seconds: float = field(
      0.0, "Caps each Transformer fit at twice its estimate from this many seconds per "
      "trained row-epoch (0: no cap); set by --time_budget from the measured pretraining "
      "speed, then from the measured fits.", lower=0.0)
  metric_fit_seconds: Tuple[float, ...] = field(
      (0.0,), "Seconds after which an NCA metric fit starts no further epoch (0: no "
      "limit): one value, or one per label fraction in increasing order; set by "
      "--time_budget.", lower=0.0)
  gbdt_fit_seconds: float = field(0.0, "Seconds after which a GBDT peer's fit adds no more "
                                  "trees (0: no limit); set by --time_budget.", lower=0.0)
  eval_fraction: float = field(0.2, "Share of each class held out for evaluation.",
                               lower=0.01, upper=0.9)
  val_fraction: float = field(0.15, "Share of the labelled rows kept for early stopping "
                              "and model choice.", lower=0.01, upper=0.9)
  label_fractions: Tuple[float, ...] = field((0.1, 1.0),
                                             "Labelled shares of the training split.",
                                             lower=0.001, upper=1.0)
  max_rows: int = field(0, "Use a stratified subset of this many rows (0: all).", lower=0)
  pretrain_on: str = field("all", "Unlabelled rows for pretraining: the training split, "
                           "or all rows' features (evaluation labels never used).",
                           choices=("train", "all"))
  unlabelled_data: Tuple[str, ...] = field((), "Extra label-free tables with the same "
                                           "feature columns, added to pretraining.")
  log1p_columns: Tuple[str, ...] = field((), "Continuous columns mapped by sign(x)log1p(|x|).")
  numeric_scaling: str = field("auto", "Continuous columns as normal scores of their "
                               "training quantiles (quantile), standardised (standard), or "
                               "the first for heavy-tailed columns only (auto).",
                               choices=tbl.SCALINGS)
  dim: int = field(32, "Token width d.", lower=8, upper=1024)
  num_heads: int = field(8, "Attention heads.", lower=1, upper=64)
  num_layers: int = field(4, "Transformer layers.", lower=1, upper=32)
  ff_multiplier: int = field(2, "Feed-forward width = ff_multiplier * d.", lower=1, upper=16)
  dropout: float = field(0.1, "Dropout in the Transformer and before the head.",
                         lower=0.0, upper=0.9)
  numeric_embedding: str = field("periodic", "Per-feature numeric embedding (ple: "
                                 "piecewise-linear over quantile bins of the training rows).",
                                 choices=NUMERIC_EMBEDDINGS)
  num_frequencies: int = field(16, "Periodic embedding: frequencies per feature.",
                               lower=1, upper=256)
  # 0.1: frequencies of std 1 put several periods across a scaled feature's bulk, which
  # let the 32k development tables' small labelled sets be memorised (BUILD_NOTEBOOK).
  frequency_scale: float = field(0.1, "Periodic embedding: init std of frequencies.",
                                 lower=1e-4, upper=100.0)
  num_bins: int = field(16, "Piecewise-linear embedding: quantile bins per feature (from "
                        "the training rows).", lower=1, upper=1024)
  jit_compile: bool = field(False, "XLA-compile the train steps.")
  pretrain_epochs: int = field(20, "Pretraining epochs.", lower=0, upper=10000)
  pretrain_batch_size: int = field(512, "Pretraining batch size.", lower=2, upper=65536)
  pretrain_lr: float = field(1e-3, "Pretraining Adam learning rate.", lower=1e-6, upper=1.0)
  projection_dim: int = field(128, "SimSiam projector/predictor width.", lower=8, upper=4096)
  mask_rate: float = field(0.15, "Share of feature tokens masked per view.",
                           lower=0.0, upper=1.0)
  corruption_rate: float = field(0.3, "Share of features resampled from marginals per view.",
                                 lower=0.0, upper=1.0)
  mfm_weight: float = field(1.0, "Weight of the masked-feature loss.", lower=0.0, upper=100.0)
  contrastive_weight: float = field(1.0, "Weight of the SimSiam loss.", lower=0.0, upper=100.0)
  finetune_epochs: int = field(70, "Max epochs (early stopping on val accuracy).",
                               lower=1, upper=10000)
  finetune_batch_size: int = field(256, "Fine-tuning batch size.", lower=1, upper=65536)
  finetune_lr: float = field(1e-3, "Head learning rate when fine-tuning.", lower=1e-6, upper=1.0)
  encoder_lr_multiplier: float = field(1.0, "Encoder LR = finetune_lr * this.",
                                       lower=0.0, upper=10.0)
  probe_epochs: Tuple[int, ...] = field(
      (0,), "Fine-tuning only: epochs of training the head alone on the frozen pretrained "
      "encoder before fine-tuning it (LP-FT); one value, or one per label fraction in "
      "increasing order.", lower=0, upper=1000)
  scratch_lr: float = field(1e-3, "Learning rate of the shown scratch row (when --start "
                            "resolves to random, our scratch row uses the trial's "
                            "fine-tuning learning rate instead).", lower=1e-6, upper=1.0)
  start: str = field("auto", "Encoder weights our fits (the compared table's and the "
                     "neighbour heads') start from: pretrained, random, or auto: random when "
                     "the time budget stopped pretraining before min(5, --pretrain_epochs) "
                     "epochs (rule: experiments.tabular_budget). The other start is the "
                     "shown finetune / scratch row.", choices=STARTS)
  patience: int = field(8, "Early-stopping patience in epochs.", lower=1, upper=1000)
  ensemble_heads: Tuple[int, ...] = field(
      (1,), "Transformer classifiers trained per model row (finetune and scratch alike, "
      "from different seeds; probabilities averaged): one value, or one per label fraction "
      "in increasing order.", lower=1, upper=16)
  ensemble_k: int = field(
      1, "TabM-mini members of each Transformer classifier (1: a plain classifier): k "
      "heads sharing one encoder through per-member multiplicative adapters on its "
      "tokens, trained together on each batch, probabilities averaged "
      "(models.tabular_ensemble).", lower=1, upper=64)
  crossfit_below: int = field(
      1000, "Cross-fit when the validation holdout has fewer rows than this (0: never): "
      "every Transformer row, neighbour head and model choice then uses K stratified "
      "folds of all labelled rows (out-of-fold predictions) instead of the holdout.",
      lower=0, upper=10000000)
  crossfit_folds: int = field(5, "Folds when cross-fitting (K models per Transformer row, "
                              "their evaluation probabilities averaged).", lower=2, upper=50)
  min_steps_per_epoch: int = field(10, "Repeat small labelled sets so one epoch has at least "
                                   "this many steps.", lower=0, upper=100000)
  retrieval_k: Tuple[int, ...] = field((5, 10, 20, 50), "Neighbour counts tried by the "
                                       "retrieval head (chosen on validation).",
                                       lower=1, upper=10000)
  retrieval_temperatures: Tuple[float, ...] = field(
      (0.02, 0.05, 0.1), "Softmax temperatures of neighbour similarities tried.",
      lower=1e-4, upper=100.0)
  retrieval_weights: Tuple[float, ...] = field(
      (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "Weights of the neighbour head in the mix tried "
      "(0: plain fine-tuning, 1: neighbours only).", lower=0.0, upper=1.0)
  metric_dim: int = field(64, "Width of the NCA metric embedding (metric_retrieval).",
                          lower=2, upper=1024)
  metric_epochs: int = field(30, "NCA training epochs over the fitted rows.",
                             lower=1, upper=10000)
  metric_batch_size: int = field(512, "NCA query rows per step (every fitted row is a "
                                 "candidate).", lower=1, upper=65536)
  metric_lr: float = field(3e-3, "NCA Adam learning rate.", lower=1e-6, upper=1.0)
  metric_k: Tuple[int, ...] = field((1, 5, 10, 20), "Neighbour counts tried in the metric "
                                    "embedding (chosen on validation).", lower=1, upper=10000)
  metric_temperatures: Tuple[float, ...] = field(
      (0.5, 1.0, 2.0), "Softmax temperatures of -squared distances tried (NCA trains at 1).",
      lower=1e-4, upper=100.0)
  trials: int = field(2, "Equal tuning budget of the compared table: configurations fitted "
                      "per method (ours from the search_* lists, each GBDT peer from its "
                      "own documented space), each chosen on validation.", lower=1,
                      upper=1000)
  repeats: int = field(1, "Repeats of the compared table: repeat r refits every chosen "
                       "configuration with training seed and label-split seed seed + r.",
                       lower=1, upper=100)
  compare_no_pretraining: bool = field(
      False, "Compared table: also our protocol from the other encoder start (randomly "
      "initialised, or, despite the name, pretrained when --start resolved to random; same "
      "trials and repeats, a shown row) and pretrained − random with its verdict: "
      "pretraining vs scratch under the harness. About doubles the Transformer fits.")
  search_numeric_embeddings: Tuple[str, ...] = field(
      ("periodic", "ple"), "Our search space: numeric embeddings tried (each pretrained "
      "once; linear, periodic or ple), after --numeric_embedding.")
  search_finetune_lrs: Tuple[float, ...] = field(
      (1e-3, 3e-4), "Our search space: fine-tuning learning rates tried, after "
      "--finetune_lr (outer loop; numeric embeddings, then ensemble members inner).",
      lower=1e-6, upper=1.0)
  search_ensemble_ks: Tuple[int, ...] = field(
      (1, 4), "Our search space: TabM-mini member counts tried (innermost loop), after "
      "--ensemble_k.", lower=1, upper=64)
  lgbm_max_trees: int = field(3000, "Max boosting rounds of LightGBM and CatBoost.",
                              lower=1, upper=100000)
  lgbm_lr: float = field(0.05, "LightGBM learning rate.", lower=1e-4, upper=1.0)
  lgbm_num_leaves: int = field(63, "LightGBM leaves per tree.", lower=2, upper=4096)
  lgbm_early_stopping: int = field(100, "Early-stopping rounds of LightGBM and CatBoost.",
                                   lower=1, upper=10000)
  umap: bool = field(True, "Write the UMAP PNG of pretrained embeddings.")
  verbose: int = field(2, "Keras fit verbosity (0 silent, 1 progress bar, 2 one line/epoch).",
                       lower=0, upper=2)


@dataclasses.dataclass
class TabularResult:
  """What ``run`` measured and wrote.

  rows: one dict per (model, label fraction): accuracy, macro_f1, seconds, labelled_rows.
  table: markdown table of ``rows``; export_path: SavedModel version folder or None.
  """
  rows: List[dict]
  table: str
  pretrain_seconds: float
  export_path: Optional[pathlib.Path]
  output_dir: pathlib.Path


def _scores(y_true, y_pred) -> Dict[str, float]:
  from sklearn.metrics import f1_score  # pylint: disable=import-outside-toplevel
  return {"accuracy": float(np.mean(y_true == y_pred)),
          "macro_f1": float(f1_score(y_true, y_pred, average="macro"))}


@dataclasses.dataclass
class Pretrained:
  """The pretraining step's outcome: the encoder's architecture and weights, its wall time,
  how many rows it saw, the frozen [CLS] embeddings of the training / evaluation rows,
  the epochs it ran and each epoch's wall time (this run's)."""
  arch: dict
  weights: list
  seconds: float
  num_rows: int
  frozen_train: np.ndarray
  frozen_test: np.ndarray
  epochs: int
  epoch_seconds: List[float]


@dataclasses.dataclass
class Fitted:
  """Trained Transformer classifiers: ``folds[j]`` the ``ensemble_heads`` classifiers of
  fold j (the first fold's first classifier's [CLS] embedding is the row embedding);
  ``selection_probs`` [len(selection_idx), classes] out-of-fold probabilities (each fold's
  heads averaged on its held-out rows); ``test_probs`` the mean of every classifier."""
  folds: List[list]
  selection_probs: np.ndarray
  test_probs: np.ndarray
  seconds: float

  @property
  def clfs(self) -> list:
    """Every classifier, the first fold's first."""
    return [c for heads in self.folds for c in heads]


@dataclasses.dataclass
class RetrievalHead:
  """The chosen neighbour head and its indexes, one per fold: ``index_emb[j]`` every
  labelled row in fold j's space (its first classifier's embedding, or ``metrics[j]``'s
  when metrics are set), ``index_y[j]`` their class ids; ``selection_probs`` /
  ``test_probs`` its mixed probabilities of the selection rows (out of fold) and of the
  evaluation rows (the folds' neighbour histograms averaged, as their classifiers are)."""
  choice: RetrievalChoice
  index_emb: List[np.ndarray]
  index_y: List[np.ndarray]
  selection_probs: np.ndarray
  test_probs: np.ndarray
  metrics: Optional[List[tabular_metric.NeighborMetricEncoder]] = None


def _row(model: str, split: LabelSplit, test_y: np.ndarray, pred: np.ndarray,
         seconds: float, val_accuracy: Optional[float] = None) -> dict:
  """One metrics.json row (keys in the report's order)."""
  val = ({} if val_accuracy is None else
         {"val_accuracy": val_accuracy, "val_rows": int(len(split.selection_idx))})
  return {"model": model, **_scores(test_y, pred), **val, "seconds": seconds,
          "label_fraction": split.fraction, "labelled_rows": int(len(split.lab))}


def fraction_work(config: Config, prep: PreparedTable,
                  fractions: Sequence[float]) -> List[tabular_budget.FractionWork]:
  """The Transformer fits of each label fraction, for the time budget."""
  work = []
  for frac in fractions:
    split = label_split(config, prep, frac)
    work.append(tabular_budget.FractionWork(len(split.lab), len(split.fit_idx),
                                            len(split.folds) > 1,
                                            ensemble_heads(config, frac)))
  return work


def budget_step(config: Config, prep: PreparedTable, pre: Pretrained,
                pretrain_seconds_each: float) -> Tuple[Config, str]:
  """Time-budget step (``tabular_budget``'s rule): the config with fine-tuning epochs,
  trials and cross-fitting folds sized from the labelled rows and the measured
  pretraining speed (and one TabM member per trial when several do not fit), then the
  epochs sized again with the pretraining share the kept trials leave unused (each other
  numeric embedding they need keeps ``pretrain_seconds_each``); and the plan in words."""
  work = fraction_work(config, prep, sorted(float(f) for f in config.label_fractions))
  # The last epoch's speed (the first one also traces the step); the whole step's if
  # pretraining ran no epoch here (a resumed, finished run).
  row_s = (pre.epoch_seconds[-1] if pre.epoch_seconds else pre.seconds) / pre.num_rows

  def plan_for(cfg: Config, spare_seconds: float) -> tabular_budget.FitPlan:
    return tabular_budget.plan_fits(
        cfg.time_budget, row_s, work, trials=cfg.trials,
        members=[int(t["ensemble_k"]) for t in ours_space(cfg)[:cfg.trials]],
        repeats=cfg.repeats, max_epochs=cfg.finetune_epochs,
        crossfit_folds=cfg.crossfit_folds, batch_size=cfg.finetune_batch_size,
        min_steps_per_epoch=cfg.min_steps_per_epoch,
        no_pretraining_row=cfg.compare_no_pretraining,
        pretrain_fixed_seconds=tabular_budget.fixed_seconds(pre.epoch_seconds),
        spare_seconds=spare_seconds)
  first = plan_for(config, 0.0)
  if not first.ensemble:   # every trial with one member (the ensemble trials do not fit)
    config = without_tabm(config)
  config = dataclasses.replace(config, trials=first.trials,
                               crossfit_folds=first.crossfit_folds)
  spare = max(0.0, tabular_budget.pretraining_left(
      config.time_budget, pre.seconds,
      len(embeddings_to_pretrain(config, {config.numeric_embedding})), pretrain_seconds_each))
  # the same trials, members and folds; only the epochs grow
  plan = dataclasses.replace(plan_for(config, spare), ensemble=first.ensemble)
  config = dataclasses.replace(config, finetune_epochs=plan.finetune_epochs,
                               fit_row_epoch_seconds=plan.row_epoch_seconds,
                               metric_fit_seconds=plan.metric_fit_seconds,
                               gbdt_fit_seconds=plan.gbdt_fit_seconds)
  note = tabular_budget.describe(plan, [pre.epochs], config.time_budget)
  if spare:
    note += (f"; the fits also get the {spare:.0f} s of the pretraining share the kept "
             "trials leave unused")
  return config, note


def replan_step(config: Config, prep: PreparedTable, fractions: Sequence[float],
                pretrained: Mapping[str, Pretrained], ledger: tabular_budget.FitLedger,
                pretrain_seconds_each: float, seconds_left: float,
                fraction_other_seconds: float,
                configured_epochs: int) -> Tuple[Config, str]:
  """Re-plan step (``tabular_budget`` rule 5), before the label ``fractions`` still to run:
  the config with their fine-tuning epochs (at most the planned ones, or from a starved
  plan up to ``MIN_FIT_EPOCHS`` within ``configured_epochs``) sized from the fits
  measured in ``ledger``, the encoders ``pretrained`` so far (the embeddings the planned
  trials still need get ``pretrain_seconds_each``), the ``seconds_left`` on the clock and
  ``fraction_other_seconds``, the most a fraction so far spent outside its Transformer fits
  and pretraining; and the re-plan in words."""
  row_s = ledger.row_epoch_estimate() or config.fit_row_epoch_seconds
  fixed_s = ledger.fixed_estimate()
  trials = ours_space(config)[:config.trials]
  to_pretrain = embeddings_to_pretrain(config, pretrained)
  seconds = tabular_budget.replan_seconds(
      config.time_budget, ledger, sum(p.seconds for p in pretrained.values()),
      len(to_pretrain), pretrain_seconds_each, seconds_left,
      fraction_other_seconds * len(fractions))
  epochs = tabular_budget.replan_epochs(
      seconds, fraction_work(config, prep, fractions), trials=config.trials,
      repeats=config.repeats, members=[int(t["ensemble_k"]) for t in trials],
      crossfit_folds=config.crossfit_folds, batch_size=config.finetune_batch_size,
      min_steps_per_epoch=config.min_steps_per_epoch,
      no_pretraining_row=config.compare_no_pretraining,
      max_epochs=tabular_budget.replan_cap(config.finetune_epochs, configured_epochs),
      row_epoch_seconds=row_s, fit_fixed_seconds=fixed_s)
  note = (f"fine-tuning epochs {config.finetune_epochs} → {epochs}: {max(seconds, 0):.0f} s "
          f"left for the fits of @{', @'.join(f'{f:g}' for f in fractions)} (measured over "
          f"{ledger.fits} fits: {row_s * 1e6:.1f} µs per fitted row-epoch, {fixed_s:.1f} s "
          f"fixed per fit; {fraction_other_seconds:.0f} s per fraction outside the fits)")
  return dataclasses.replace(config, finetune_epochs=epochs, fit_row_epoch_seconds=row_s), note


def load_and_split(config: Config, log: common.Log) -> PreparedTable:
  """Load step: reads, splits and encodes the table (``prepare``) and logs the schema."""
  prep = prepare(config)
  for line in column_rows(prep):
    scaled = f"; {line['scaling']}" if line["scaling"] else ""
    log(f"column {line['feature']}: {line['type']} ({line['decided by']}{scaled})")
  return prep


def encoder_arch(config: Config, prep: PreparedTable) -> dict:
  """The encoder's architecture (``training.build_encoder`` keywords) for ``config``'s
  numeric embedding; the piecewise-linear bins from the training rows."""
  schema = prep.schema
  return dict(num_continuous=len(schema.continuous), cardinalities=schema.cardinalities,
              dim=config.dim, num_heads=config.num_heads, num_layers=config.num_layers,
              ff_multiplier=config.ff_multiplier, dropout=config.dropout,
              numeric_embedding=config.numeric_embedding,
              num_frequencies=config.num_frequencies, frequency_scale=config.frequency_scale,
              bin_edges=(quantile_bin_edges(prep.features["continuous"][prep.train_idx],
                                            config.num_bins)
                         if config.numeric_embedding == "ple" else None))


def pretrain_step(config: Config, prep: PreparedTable, out: pathlib.Path,
                  log: common.Log, deadline: float = float("inf")) -> Pretrained:
  """Pretrain step: builds the encoder, pretrains it on the label-free rows (no epoch
  starting that would end after ``deadline``, a ``time.monotonic`` value) and embeds the
  training and evaluation rows with the frozen result."""
  pretrain_f = pretraining_features(config, prep)
  log(f"pretraining on {len(pretrain_f['continuous'])} unlabelled rows")
  arch = encoder_arch(config, prep)
  t0 = time.time()
  encoder = training.build_encoder(**arch)
  model = training.pretrain(encoder, pretrain_f, epochs=config.pretrain_epochs,
                    batch_size=min(config.pretrain_batch_size, len(pretrain_f["continuous"])),
                    lr=config.pretrain_lr, seed=config.seed,
                    projection_dim=config.projection_dim, mask_rate=config.mask_rate,
                    corruption_rate=config.corruption_rate, mfm_weight=config.mfm_weight,
                    contrastive_weight=config.contrastive_weight,
                    jit_compile=config.jit_compile, verbose=config.verbose,
                    log_dir=out / "tensorboard" / "pretrain",
                    checkpoint_dir=pathlib.Path(config.checkpoint_dir or
                                                out / "pretrain_checkpoints"),
                    resume=config.resume, deadline=deadline, log=log)
  seconds = time.time() - t0
  weights = encoder.get_weights()
  log(f"pretraining: {seconds:.1f} s")
  frozen_test = training.embed(encoder, eval_rows(prep)[0])
  frozen_train = training.embed(encoder, select_rows(prep.features, prep.train_idx))
  return Pretrained(arch, weights, seconds, int(len(pretrain_f["continuous"])),
                    frozen_train, frozen_test, model.epochs_run,
                    list(model.epoch_seconds))


def knn_step(prep: PreparedTable, pre: Pretrained, split: LabelSplit) -> dict:
  """KNN step: k=2 vote over the labelled rows in the frozen pretrained embedding."""
  train_y = prep.labels[prep.train_idx]
  test_y = eval_rows(prep)[1]
  t = time.time()
  pred = knn_vote(pre.frozen_train[split.lab], train_y[split.lab], pre.frozen_test,
                  len(prep.schema.classes), k=2)
  return _row("knn_k2", split, test_y, pred, time.time() - t)


def per_fraction(config: Config, name: str, fraction: float) -> int:
  """The value of ``Config.<name>`` (one value, or one per label fraction in increasing
  order) at ``fraction``."""
  values, fractions = getattr(config, name), sorted(float(f) for f in config.label_fractions)
  if len(values) not in (1, len(fractions)):
    raise ValueError(f"--{name} needs one value or one per label fraction "
                     f"({len(fractions)}), got {len(values)}")
  return values[0] if len(values) == 1 else values[fractions.index(fraction)]


def ensemble_heads(config: Config, fraction: float) -> int:
  """Classifiers per model row and fold at ``fraction`` (``Config.ensemble_heads``)."""
  return per_fraction(config, "ensemble_heads", fraction)


def _fit_transformer(config: Config, prep: PreparedTable, arch: dict, split: LabelSplit,
                     model: str, lr: float, init: Optional[list], out: pathlib.Path,
                     reseed: Callable[[int], None],
                     ledger: Optional[tabular_budget.FitLedger] = None) -> Tuple[Fitted, dict]:
  """Builds the Transformer (from ``init`` weights if given), trains its classifier on each
  fold's trained rows with early stopping on its held-out rows, and scores it;
  ``ensemble_heads`` times per fold at this fraction (head i of fold j from
  seed + 100 i + 1000 j), probabilities averaged; each classifier with
  ``ensemble_k`` TabM-mini members. ``ledger`` records the fits' seconds and epochs."""
  y, (test_f, test_y) = prep.labels, eval_rows(prep)
  t = time.time()
  folds, held_probs, measured = [], [], []
  for j, (fit_idx, held_idx) in enumerate(split.folds):
    fit_f, held_f = select_rows(prep.features, fit_idx), select_rows(prep.features, held_idx)
    row_visits = config.ensemble_k * tabular_budget.epoch_rows(
        len(fit_idx), config.finetune_batch_size, config.min_steps_per_epoch)
    heads = []
    for i in range(ensemble_heads(config, split.fraction)):
      seed = config.seed + 100 * i + 1000 * j
      reseed(seed + 3)
      enc = training.build_encoder(**arch)
      if init is not None:
        enc.set_weights(init)
      heads.append(training.fit_classifier(
          enc, len(prep.schema.classes), fit_f, y[fit_idx], held_f, y[held_idx], lr=lr,
          encoder_lr_multiplier=config.encoder_lr_multiplier if init is not None else 1.0,
          epochs=config.finetune_epochs, batch_size=config.finetune_batch_size,
          patience=config.patience, seed=seed, dropout=config.dropout,
          min_steps_per_epoch=config.min_steps_per_epoch,
          probe_epochs=(per_fraction(config, "probe_epochs", split.fraction)
                        if init is not None else 0),
          ensemble_k=config.ensemble_k, jit_compile=config.jit_compile,
          verbose=config.verbose,
          log_dir=out / "tensorboard" / f"{model}_{split.fraction:g}" / f"fold{j}_head{i}",
          time_limit=tabular_budget.fit_time_limit(
              config.fit_row_epoch_seconds, config.finetune_epochs, row_visits)))
      measured.append((row_visits, heads[-1].history.history["epoch_seconds"]))
    folds.append(heads)
    held_probs.append(np.mean([training.predict_proba(c, held_f) for c in heads], axis=0))
  selection_probs = np.concatenate(held_probs)
  test_probs = np.mean([training.predict_proba(c, test_f) for heads in folds for c in heads],
                       axis=0)
  seconds = time.time() - t
  if ledger is not None:
    ledger.record(seconds, measured)
  row = _row(model, split, test_y, test_probs.argmax(axis=1), seconds,
             float(np.mean(selection_probs.argmax(axis=1) == y[split.selection_idx])))
  return Fitted(folds, selection_probs, test_probs, seconds), row


def finetune_step(config: Config, prep: PreparedTable, pre: Pretrained, split: LabelSplit,
                  out: pathlib.Path, reseed: Callable[[int], None],
                  ledger: Optional[tabular_budget.FitLedger] = None) -> Tuple[Fitted, dict]:
  """Finetune step: the pretrained encoder plus a classifier head, trained end to end."""
  return _fit_transformer(config, prep, pre.arch, split, "finetune", config.finetune_lr,
                          pre.weights, out, reseed, ledger)


def scratch_step(config: Config, prep: PreparedTable, pre: Pretrained, split: LabelSplit,
                 out: pathlib.Path, reseed: Callable[[int], None],
                 ledger: Optional[tabular_budget.FitLedger] = None) -> Tuple[Fitted, dict]:
  """Scratch step: the same architecture trained without pretraining."""
  return _fit_transformer(config, prep, pre.arch, split, "scratch", config.scratch_lr, None,
                          out, reseed, ledger)


def retrieval_step(config: Config, prep: PreparedTable, split: LabelSplit,
                   finetuned: Fitted) -> Tuple[RetrievalHead, dict]:
  """Retrieval step: neighbours in our classifier's embedding. Chosen per fold with its
  trained rows as index (in its model's embedding) and its held-out rows as queries; then
  every labelled row is the index in each fold's model's embedding."""
  t = time.time()
  spaces = [tuple(training.embed(heads[0], select_rows(prep.features, rows))
                  for rows in fold)
            for heads, fold in zip(finetuned.folds, split.folds)]
  test_emb = [training.embed(heads[0], eval_rows(prep)[0]) for heads in finetuned.folds]
  return _neighbor_head("retrieval", prep, split, finetuned, spaces, test_emb,
                        config.retrieval_k, config.retrieval_temperatures,
                        config.retrieval_weights, cosine_neighbors, t)


def _neighbor_head(model: str, prep: PreparedTable, split: LabelSplit, finetuned: Fitted,
                   spaces: Sequence[Tuple[np.ndarray, np.ndarray]],
                   test_emb: Sequence[np.ndarray], ks: Tuple[int, ...],
                   temperatures: Tuple[float, ...], weights: Tuple[float, ...],
                   search: Search, started: float,
                   metrics: Optional[List[tabular_metric.NeighborMetricEncoder]] = None
                   ) -> Tuple[RetrievalHead, dict]:
  """The neighbour rows' common tail: (k, temperature, weight) chosen on the out-of-fold
  held-out rows (``choose_mix``; each fold's trained rows are its index), then in every
  fold's space all labelled rows are the index for the evaluation rows, and the folds'
  mixes are averaged (bagged like the fold classifiers; one fold: the holdout's).
  ``spaces[j]``: fold j's (trained, held-out) rows embedded in the space ``search`` works
  in; ``test_emb[j]``: the evaluation rows in fold j's space; ``started``: when the row's
  own work began."""
  y, test_y = prep.labels, eval_rows(prep)[1]
  n_classes = len(prep.schema.classes)
  k_max = min(max(ks), min(len(fit) for fit, _ in split.folds))
  found = [search(held_emb, fit_emb, k_max) for fit_emb, held_emb in spaces]
  sims = np.concatenate([s for s, _ in found])
  neighbor_y = np.concatenate([y[fit][i] for (fit, _), (_, i) in zip(split.folds, found)])
  choice = choose_mix(ks, temperatures, weights, sims, neighbor_y,
                      finetuned.selection_probs, y[split.selection_idx], n_classes)
  index_emb = [np.concatenate(space) for space in spaces]
  index_y = [y[np.concatenate(fold)] for fold in split.folds]
  probs = np.mean([retrieval_probs(choice, e, iy, q, finetuned.test_probs, n_classes,
                                   search=search)
                   for e, iy, q in zip(index_emb, index_y, test_emb)], axis=0)
  row = _row(model, split, test_y, probs.argmax(axis=1),
             finetuned.seconds + time.time() - started, choice.val_accuracy)
  selection = mix_probs(choice, sims, neighbor_y, finetuned.selection_probs, n_classes)
  return RetrievalHead(choice, index_emb, index_y, selection, probs, metrics), row


def metric_retrieval_step(config: Config, prep: PreparedTable, split: LabelSplit,
                          finetuned: Fitted, reseed: Callable[[int], None]
                          ) -> Tuple[RetrievalHead, dict]:
  """Metric retrieval step: an NCA metric embedding trained on each fold's trained rows;
  our classifier's probabilities mixed with its neighbours' labels, chosen like the
  retrieval step's (out of fold), then every labelled row is the index in each fold's
  metric embedding."""
  t = time.time()
  metrics, spaces = [], []
  for j, (fit_idx, held_idx) in enumerate(split.folds):
    reseed(config.seed + 5 + 1000 * j)
    metric = tabular_metric.NeighborMetricEncoder(
        len(prep.schema.continuous), prep.schema.cardinalities, config.metric_dim)
    tabular_metric.fit_neighbor_metric(
        metric, select_rows(prep.features, fit_idx), prep.labels[fit_idx],
        epochs=config.metric_epochs, batch_size=config.metric_batch_size,
        lr=config.metric_lr, seed=config.seed + 1000 * j,
        deadline=time.monotonic() + (per_fraction(config, "metric_fit_seconds",
                                                  split.fraction) or float("inf")))
    metrics.append(metric)
    spaces.append(tuple(tabular_metric.embed_rows(metric, select_rows(prep.features, rows))
                        for rows in (fit_idx, held_idx)))
  test_emb = [tabular_metric.embed_rows(m, eval_rows(prep)[0]) for m in metrics]
  return _neighbor_head("metric_retrieval", prep, split, finetuned, spaces, test_emb,
                        config.metric_k, config.metric_temperatures, config.retrieval_weights,
                        l2_neighbors, t, metrics)


def lightgbm_step(config: Config, prep: PreparedTable, lgbm: Tuple[np.ndarray, List[int]],
                  split: LabelSplit) -> Tuple[dict, int]:
  """LightGBM step: early stopping on the validation rows, no more trees after
  ``gbdt_fit_seconds`` like the tuned peers' fits. Returns (row, trees kept)."""
  (x, cats), y = lgbm, prep.labels
  t = time.time()
  settings = gbdt.GbdtSettings(config.lgbm_max_trees, config.lgbm_early_stopping, threads=2,
                               categorical=tuple(cats),
                               seconds_per_fit=config.gbdt_fit_seconds or float("inf"))
  model, best_iter = gbdt.fit_one(
      "lightgbm", {"learning_rate": config.lgbm_lr, "num_leaves": config.lgbm_num_leaves},
      settings, config.seed, x[split.fit_idx], y[split.fit_idx], x[split.val_idx],
      y[split.val_idx])
  pred = model.predict(x[prep.eval_idx])
  return _row("lightgbm", split, eval_rows(prep)[1], pred, time.time() - t), best_iter


@dataclasses.dataclass
class EmbeddingFit:
  """Our side on one label split: the classifiers (``finetuned``: fine-tuned from the
  pretrained encoder, or trained from random weights), the neighbour heads on them, their
  rows, and ``chosen``, the one of the classifier (``finetune`` or ``scratch``) /
  retrieval / metric_retrieval best on validation (ties → the classifier, then the earlier
  head)."""
  finetuned: Fitted
  heads: Dict[str, RetrievalHead]
  rows: List[dict]
  chosen: str

  def probs(self) -> Tuple[np.ndarray, np.ndarray]:
    """The chosen model's (selection rows', evaluation rows') probabilities."""
    source = self.heads.get(self.chosen, self.finetuned)
    return source.selection_probs, source.test_probs


def embedding_fit(config: Config, prep: PreparedTable, arch: dict, init: Optional[list],
                  split: LabelSplit, out: pathlib.Path, reseed: Callable[[int], None],
                  ledger: Optional[tabular_budget.FitLedger] = None) -> EmbeddingFit:
  """Our classifier, retrieval and metric_retrieval on one label split, and the
  validation choice among them. The classifier (encoder ``arch``) is ``finetune`` from the
  pretrained weights ``init``, or ``scratch`` from random ones (``init`` None)."""
  finetuned, row = _fit_transformer(
      config, prep, arch, split, "finetune" if init is not None else "scratch",
      config.finetune_lr, init, out, reseed, ledger)
  rows, heads = [row], {}
  best = row["val_accuracy"]
  chosen = row["model"]
  for name, (head, row) in (
      ("retrieval", retrieval_step(config, prep, split, finetuned)),
      ("metric_retrieval", metric_retrieval_step(config, prep, split, finetuned, reseed))):
    rows.append(row)
    heads[name] = head
    if head.choice.val_accuracy > best:
      chosen, best = name, head.choice.val_accuracy
  return EmbeddingFit(finetuned, heads, rows, chosen)


def ours_space(config: Config) -> Tuple[Dict[str, object], ...]:
  """Our configurations in trial order: the run's own (numeric_embedding, finetune_lr,
  ensemble_k) first, then search_finetune_lrs (outer) × search_numeric_embeddings ×
  search_ensemble_ks (inner)."""
  bad = [e for e in config.search_numeric_embeddings if e not in NUMERIC_EMBEDDINGS]
  if bad:
    raise ValueError(f"--search_numeric_embeddings: {bad} not among {NUMERIC_EMBEDDINGS}")
  first = {"numeric_embedding": config.numeric_embedding, "finetune_lr": config.finetune_lr,
           "ensemble_k": config.ensemble_k}
  rest = [{"numeric_embedding": e, "finetune_lr": lr, "ensemble_k": k}
          for lr in config.search_finetune_lrs for e in config.search_numeric_embeddings
          for k in config.search_ensemble_ks]
  space = [first]
  for point in rest:
    if point not in space:
      space.append(point)
  return tuple(space)


def without_tabm(config: Config) -> Config:
  """``config`` with every trial at one TabM-mini member (what the budget keeps when the
  ensemble trials do not fit)."""
  return dataclasses.replace(config, ensemble_k=1, search_ensemble_ks=(1,))


def embeddings_to_pretrain(config: Config, done: Iterable[str]) -> set:
  """Numeric embeddings of the first ``trials`` trials not in ``done`` that still need
  pretraining: none when our fits start from random weights (``start`` resolved) and no
  ablation row starts from pretrained ones."""
  if config.start == "random" and not config.compare_no_pretraining:
    return set()
  return {t["numeric_embedding"] for t in ours_space(config)[:config.trials]} - set(done)


def planned_numeric_embeddings(config: Config) -> set:
  """Numeric embeddings the first ``trials`` trials may pretrain, with the TabM trials or
  without them (the time budget may drop them after the first pretraining and so bring
  other embeddings into the first trials): the pretraining share is split among these."""
  return {t["numeric_embedding"] for c in (config, without_tabm(config))
          for t in ours_space(c)[:config.trials]}


@dataclasses.dataclass
class FractionResult:
  """Rows and report notes of one label fraction, the compared table, and the embedding
  model chosen on validation (what the export step writes)."""
  fraction: float
  rows: List[dict]
  notes: Dict[str, str]
  chosen: EmbeddingFit
  compared: tabular_compare.FractionComparison


def _unscored_note(prep: PreparedTable, split: LabelSplit) -> str:
  """Names the single-row classes every fold trains on and none holds out ("" if none)."""
  rows = split.unscored_idx
  if not len(rows):
    return ""
  names = ", ".join(repr(prep.schema.classes[c]) for c in sorted(set(prep.labels[rows])))
  return (f"; {len(rows)} row(s) of class(es) with a single labelled row ({names}) are in "
          "every fold's training rows and held out by none (not in the out-of-fold accuracy)")


def label_fraction_step(config: Config, prep: PreparedTable,
                        pretrained: Callable[[str], Pretrained],
                        lgbm: Tuple[np.ndarray, List[int]], frac: float, out: pathlib.Path,
                        log: common.Log, reseed: Callable[[int], None],
                        ledger: Optional[tabular_budget.FitLedger] = None) -> FractionResult:
  """Every model at one label fraction: knn → the compared table (our trials from
  ``config.start``, "pretrained" or "random": our classifier, retrieval, metric_retrieval
  each; tuned LightGBM and CatBoost; repeats) → the classifier from the other start (the
  shown scratch or finetune row) → untuned lightgbm. Our classifier's, retrieval and
  metric_retrieval rows are those of the run's own configuration (trial 0);
  ``pretrained(numeric_embedding)``: the pretrained encoder of that architecture;
  ``ledger`` records every Transformer fit."""
  if config.start not in ("pretrained", "random"):
    raise ValueError(f"start {config.start!r}: resolve it first (tabular_budget.choose_start)")
  other_start = "random" if config.start == "pretrained" else "pretrained"
  split = label_split(config, prep, frac)
  pre = pretrained(config.numeric_embedding)
  rows, notes = [knn_step(prep, pre, split)], {}
  notes[f"choices @{frac:g}"] = (
      f"cross-fitted: {len(split.folds)} stratified folds of the {len(split.lab)} labelled "
      f"rows (the {len(split.val_idx)}-row holdout is below --crossfit_below="
      f"{config.crossfit_below}); validation accuracy = out-of-fold accuracy"
      + _unscored_note(prep, split)
      if len(split.folds) > 1 else f"the {len(split.val_idx)}-row validation holdout")
  log(f"choices @{frac:g}: {notes[f'choices @{frac:g}']}")

  def fit_ours(trial, seed: int, lsplit: LabelSplit,
               start: str = config.start) -> tabular_compare.LabelledFit:
    cfg = dataclasses.replace(config, seed=seed, **trial)
    if start == "pretrained":
      pre_e = pretrained(cfg.numeric_embedding)
      arch, init = pre_e.arch, pre_e.weights
    else:   # no pretraining of this trial's embedding needed
      arch, init = encoder_arch(cfg, prep), None
    # the ablation's fits log apart from ours and the shown row (same row names)
    fit = embedding_fit(cfg, prep, arch, init, lsplit,
                        out if start == config.start else out / "other_start", reseed,
                        ledger)
    val = {r["model"]: r["val_accuracy"] for r in fit.rows}
    log(f"{'ours' if start == config.start else tabular_compare.OTHER_START[start]} "
        f"@{frac:g} {dict(trial)} seed {seed}: chose {fit.chosen} (validation "
        + ", ".join(f"{k} {v:.4f}" for k, v in val.items()) + ")")
    selection, test = fit.probs()

    def predict(ids: np.ndarray) -> np.ndarray:
      if not np.array_equal(ids, prep.eval_idx):
        raise ValueError("the embedding fit predicts the evaluation rows only")
      return test.argmax(axis=1)
    return tabular_compare.LabelledFit(tuple(int(i) for i in lsplit.selection_idx),
                                       selection.argmax(axis=1), predict, fit)

  space = ours_space(config)
  compared = tabular_compare.compare_fraction(
      space, fit_ours, lambda r: label_split(config, prep, frac, config.seed + r),
      prep.labels, prep.eval_idx, lgbm, len(prep.schema.classes), trials=config.trials,
      repeats=config.repeats, seed=config.seed, max_trees=config.lgbm_max_trees,
      early_stopping=config.lgbm_early_stopping,
      seconds_per_fit=config.gbdt_fit_seconds or float("inf"),
      fit_other_start=((other_start, functools.partial(fit_ours, start=other_start))
                       if config.compare_no_pretraining else None), log=log)
  base = compared.fit(tabular_compare.OURS, space[0], config.seed).detail
  rows += base.rows
  for row in base.rows:
    log(f"{row['model']} @{frac:g}: accuracy {row['accuracy']:.4f} ({row['seconds']:.0f} s)")
  for name, head in base.heads.items():
    c = head.choice
    notes[f"{name} head @{frac:g}"] = (
        f"k={c.k}, temperature {c.temperature:g}, weight {c.weight:g} "
        f"(validation accuracy {c.val_accuracy:.4f})")
  if compared.other_start and (other_start == "pretrained"
                               or config.scratch_lr == config.finetune_lr):
    # the ablation's trial 0 at this seed and split is the shown row's very fit
    other_fit = compared.fit(tabular_compare.OTHER_START[other_start], space[0],
                             config.seed).detail
    other, row = other_fit.finetuned, dict(other_fit.rows[0])
  else:
    other_step = scratch_step if other_start == "random" else finetune_step
    other, row = other_step(config, prep, pre, split, out, reseed, ledger)
  rows.append(row)
  log(f"{row['model']} @{frac:g}: accuracy {row['accuracy']:.4f} ({other.seconds:.0f} s)")
  row, best_iter = lightgbm_step(config, prep, lgbm, split)
  rows.append(row)
  notes[f"LightGBM trees kept @{frac:g}"] = str(best_iter)
  result = compared.comparison
  ours_row = result.row(result.ours)
  notes[f"compared @{frac:g}"] = (
      f"ours = {ours_row.config}, {config.start} start ({compared.trials} trials each, "
      f"{result.repeats} repeats); "
      f"best peer on validation: {result.best_peer}; verdict "
      f"{ours_row.difference.verdict if ours_row.difference else 'n/a'}")
  notes[f"ensemble @{frac:g}"] = (
      f"{ours_row.config['ensemble_k']} TabM-mini member(s) per classifier (ensemble_k, "
      f"chosen on validation among the trials' "
      f"{sorted({t['ensemble_k'] for t in space[:compared.trials]})}; one fit each), "
      + (f"{len(split.folds)} cross-fitted fold classifiers bagged" if len(split.folds) > 1
         else "one classifier on the fit rows"))
  ablation = compared.pretraining_difference()
  if ablation is not None:
    notes[f"pretraining vs none @{frac:g}"] = (
        f"pretrained − random start (ours and "
        f"{tabular_compare.OTHER_START[other_start]}; same trials, repeats and folds): "
        f"{ablation.text()} {ablation.verdict}")
    log(f"pretraining vs none @{frac:g}: {notes[f'pretraining vs none @{frac:g}']}")
  better = compared.peer_better_note()
  if better:
    notes[f"GBDT better on validation @{frac:g}"] = better
    log(f"@{frac:g}: {better}")
  chosen = compared.fit(tabular_compare.OURS, ours_row.config, config.seed).detail
  return FractionResult(frac, rows, notes, chosen, compared)


def umap_step(config: Config, prep: PreparedTable, pre: Pretrained,
              out: pathlib.Path) -> str:
  """UMAP step: writes umap_pretrained.png of the frozen embeddings of at most
  ``UMAP_MAX_ROWS`` evaluation rows (a seeded sample: UMAP's time grows faster than the
  rows, 74 s for 6,400 on 2 cores); the note."""
  t = time.time()
  labels = eval_rows(prep)[1]
  n = len(labels)
  rows = np.sort(np.random.default_rng(config.seed).choice(n, min(n, UMAP_MAX_ROWS),
                                                           replace=False))
  shown = f"{n} evaluation rows" if len(rows) == n else f"{len(rows)} of {n} evaluation rows"
  fig = tabular_report.umap_figure(pre.frozen_test[rows], labels[rows],
                                   list(prep.schema.classes), config.seed,
                                   f"UMAP of pretrained [CLS] embeddings, {shown}")
  # Class names come from the user's label column and may be Japanese.
  figures.apply_cjk_font(fig).savefig(out / "umap_pretrained.png")
  return f"`umap_pretrained.png` ({time.time() - t:.0f} s)"


def export_step(config: Config, prep: PreparedTable, last: FractionResult,
                log: common.Log = common.no_log) -> Tuple[pathlib.Path, str]:
  """Export step: the embedding model chosen on validation at the largest label fraction
  (configuration by the compared table, then our classifier or a neighbour head), with the
  raw-column signature. Returns (version folder, report note)."""
  fit = last.chosen
  head = fit.heads.get(fit.chosen)
  neighbors = []
  if head is not None:
    # Fold j's index searches its metric, or its first classifier's embedding.
    first_clf = np.cumsum([0] + [len(heads) for heads in fit.finetuned.folds])
    c = head.choice
    neighbors = [NeighborIndex(e, y, c.k, c.temperature, c.weight,
                               None if head.metrics is None else head.metrics[j],
                               int(first_clf[j]))
                 for j, (e, y) in enumerate(zip(head.index_emb, head.index_y))]
  first, *others = fit.finetuned.clfs
  export_path = export_classifier(first, prep.schema, prep.scaler, config.export_dir,
                                  version=1, neighbors=neighbors, extra_heads=others, log=log)
  folds = "" if len(neighbors) < 2 else f", one per cross-fitted fold ({len(neighbors)})"
  classifier = {"finetune": "fine-tuned model", "scratch": "model trained from random weights"}
  note = (f"`{export_path}`: " + (f"{fit.chosen}, retrieval-augmented (training-row index "
          f"of {len(head.index_y[0])} rows inside{folds})" if head
          else classifier[fit.chosen])
          + f" of {last.compared.comparison.row(tabular_compare.OURS).config}"
          + f", chosen on validation accuracy at {last.fraction:g}")
  return export_path, note


def run(config: Config, log: common.Log = common.no_log,
        reseed: Callable[[int], None] = lambda seed: None) -> TabularResult:
  """Runs every step and writes the outputs: load → pretrain → time budget → encoder start
  → per label fraction (split, knn, the compared table with our trials (our classifier,
  retrieval, metric_retrieval) and the tuned GBDT peers, the other start's classifier,
  lightgbm) → UMAP → report → export
  (metrics.json and report.md are written before the export and rewritten with its path
  after it).

  ``reseed(seed)``: called before each Keras model is built so that every model starts
  from the same RNG state whatever ran before it (trainers pass
  ``tf.keras.utils.set_random_seed``; library code never seeds global state itself).
  """
  common.check_config(config)
  common.check_output_dirs(config, "output_dir", "export_dir", "checkpoint_dir")
  # a bad count fails before any work
  for name in ("ensemble_heads", "probe_epochs", "metric_fit_seconds"):
    per_fraction(config, name, float(config.label_fractions[0]))
  ours_space(config)
  clock = tabular_budget.Clock(config.time_budget)
  log = clock.log(log)
  reseed(config.seed)
  conditions = reporting.machine_conditions()
  out = pathlib.Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  prep = load_and_split(config, log)
  for frac in config.label_fractions:   # a class with no training row fails before training
    label_split(config, prep, float(frac))
  missing = tbl.missing_shares(prep.features, prep.schema)
  log(f"{len(prep.labels)} rows: {len(prep.train_idx)} training, "
      f"{len(prep.eval_idx)} evaluation")
  pretrain_seconds = (tabular_budget.PRETRAIN_SHARE * config.time_budget
                      / len(planned_numeric_embeddings(config)))
  pre = pretrain_step(config, prep, out, log, clock.deadline(pretrain_seconds))
  pretrained_archs = {config.numeric_embedding: pre}
  requested_start = config.start
  start, start_note = tabular_budget.choose_start(config.start, pre.epochs,
                                                  config.pretrain_epochs)
  config = dataclasses.replace(config, start=start)
  plan_note, configured_epochs = "", config.finetune_epochs
  if config.time_budget:
    config, plan_note = budget_step(config, prep, pre, pretrain_seconds)
    log(plan_note)
  log(start_note)

  def pretrained(numeric_embedding: str) -> Pretrained:
    """The encoder pretrained with this numeric embedding (pretrained once, seed
    ``config.seed``, its checkpoints in a sub-folder of the run's)."""
    if numeric_embedding not in pretrained_archs:
      reseed(config.seed)
      base = pathlib.Path(config.checkpoint_dir or out / "pretrain_checkpoints")
      pretrained_archs[numeric_embedding] = pretrain_step(dataclasses.replace(
          config, numeric_embedding=numeric_embedding,
          checkpoint_dir=str(base / numeric_embedding)), prep, out, log,
          clock.deadline(pretrain_seconds))
    return pretrained_archs[numeric_embedding]
  lgbm = lightgbm_features(prep.raw_continuous, prep.features["categorical"], prep.schema)

  rows, extra, last, compared = [], {}, None, {}
  ledger = tabular_budget.FitLedger()
  fractions = sorted(float(f) for f in config.label_fractions)
  other_seconds = 0.0   # the most a fraction spent outside its fits and pretraining

  def fits_and_pretraining() -> float:
    return ledger.seconds + sum(p.seconds for p in pretrained_archs.values())
  for i, frac in enumerate(fractions):
    if config.time_budget and i:
      config, extra[f"re-plan @{frac:g}"] = replan_step(
          config, prep, fractions[i:], pretrained_archs, ledger, pretrain_seconds,
          clock.left(), other_seconds, configured_epochs)
      log(f"re-plan @{frac:g}: {extra[f're-plan @{frac:g}']}")
    started, spent = clock.elapsed(), fits_and_pretraining()
    last = label_fraction_step(config, prep, pretrained, lgbm, frac, out, log, reseed, ledger)
    other_seconds = max(other_seconds,
                        clock.elapsed() - started - (fits_and_pretraining() - spent))
    rows += last.rows
    extra.update(last.notes)
    compared[frac] = last.compared.comparison

  if config.umap:
    extra["UMAP"] = umap_step(config, prep, pre, out)
  if plan_note:
    extra["time budget"] = plan_note
  extra["encoder start"] = start_note
  extra["wall seconds"] = f"{clock.elapsed():.0f}"
  extra["pretraining seconds"] = ", ".join(f"{k} {p.seconds:.1f}"
                                          for k, p in pretrained_archs.items())
  extra["missing cells (share of rows)"] = (", ".join(f"{k} {v:.1%}" for k, v in missing.items())
                                            or "none")
  after = reporting.machine_conditions()
  extra["machine"] = reporting.describe_conditions(conditions, after)
  metrics = {"schema": {"classes": list(prep.schema.classes),
                        "columns": column_rows(prep)},
             "missing_shares": missing,
             "encoder_start": {"requested": requested_start, "resolved": config.start,
                               "pretrain_epochs_run": pre.epochs, "why": start_note},
             "machine_before": conditions, "machine_after": after,
             "compared": {f"{f:g}": c.as_dict() for f, c in compared.items()}}
  tables = tabular_report.compared_tables(compared)
  # Metrics and report first: a failed export must not lose them.
  tabular_report.write_outputs(out, config, prep, pre, rows, extra, metrics, tables)
  export_path = None
  if config.export_dir and last is not None:
    export_path, extra["exported"] = export_step(config, prep, last, log)
    metrics["export_path"] = str(export_path)
    tabular_report.write_outputs(out, config, prep, pre, rows, extra, metrics, tables)
  table = reporting.markdown_table(rows, ["model", "label_fraction", "accuracy", "macro_f1",
                                          "seconds"]) + "\n\n" + tables
  return TabularResult(rows, table, pre.seconds, export_path, out)
