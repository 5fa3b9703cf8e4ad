"""report.md and metrics.json of the tabular experiment, and its UMAP figure.

``config`` arguments are ``experiments.tabular.Config``; ``prep`` a
``tabular_data.PreparedTable``; ``pre`` a ``tabular.Pretrained``.
"""

import pathlib
from typing import Dict, List

import numpy as np

from tfrs_emb import reporting
from tfrs_emb.analysis.clustering import project_2d
from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.experiments.tabular_data import column_rows

# The talk's Cover Type accuracies (15,120 labelled + 565,892 unlabelled rows).
TALK_ACCURACY = {"knn_k2": 0.51207, "finetune": 0.75030, "scratch": 0.71778,
                 "lightgbm": 0.72489}
MODELS = ("knn_k2", "finetune", "retrieval", "metric_retrieval", "scratch", "lightgbm")


def model_labels(start: str) -> Dict[str, str]:
  """Each row's label in report.md; the neighbour heads sit on our classifier, fine-tuned
  (``start`` "pretrained") or trained from random weights ("random")."""
  ours = ("pretraining + fine-tuning" if start == "pretrained"
          else "same Transformer, no pretraining")
  return {"knn_k2": "pretraining + KNN (k=2), frozen",
          "finetune": "pretraining + fine-tuning" + ("" if start == "pretrained"
                                                    else " (shown: the other start)"),
          "retrieval": f"{ours} + neighbour-label head",
          "metric_retrieval": f"{ours} + neighbour labels in a learned metric (NCA) "
                              "embedding",
          "scratch": "same Transformer, no pretraining" + ("" if start == "random"
                                                           else " (shown: the other start)"),
          "lightgbm": "LightGBM (early stopping)"}


def umap_figure(emb: np.ndarray, labels: np.ndarray, class_names, seed: int, title: str):
  """matplotlib Figure: 2-D UMAP (cosine) of embeddings coloured by class."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  from matplotlib import colormaps  # pylint: disable=import-outside-toplevel
  xy = project_2d(emb, "umap", seed)
  fig = Figure(figsize=(7, 6), dpi=110)
  ax = fig.subplots()
  cmap = colormaps["tab10" if len(class_names) <= 10 else "tab20"]
  for c, name in enumerate(class_names):
    sel = labels == c
    ax.scatter(xy[sel, 0], xy[sel, 1], s=3, color=cmap(c % cmap.N), label=name)
  ax.legend(markerscale=4, fontsize=7, loc="best")
  ax.set_title(title, fontsize=9)
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  return fig


def accuracy_table(rows: List[dict], config) -> str:
  """Markdown table: one line per model, accuracy and macro-F1 per label fraction (and
  the talk's accuracy on Cover Type)."""
  fractions = sorted({r["label_fraction"] for r in rows})
  talk = config.label_column == "Cover_Type"
  table, labels = [], model_labels(config.start)
  for model in MODELS:
    line = {"model": labels[model]}
    if talk:
      line["talk accuracy"] = TALK_ACCURACY.get(model)
    for f in fractions:
      r = next(r for r in rows if r["model"] == model and r["label_fraction"] == f)
      line[f"acc @{f:g}"] = r["accuracy"]
      line[f"macro-F1 @{f:g}"] = r["macro_f1"]
    table.append(line)
  cols = ["model"] + (["talk accuracy"] if talk else []) + [
      c for f in fractions for c in (f"acc @{f:g}", f"macro-F1 @{f:g}")]
  return reporting.markdown_table(table, cols)


def pretraining_rows_text(config, n_pretrain: int) -> str:
  """Which rows pretraining saw, in words."""
  return (f"the features (no labels) of {n_pretrain} rows: the training split"
          + (" and the evaluation rows (transductive, as in the talk)"
             if config.pretrain_on == "all" else " only (inductive)")
          + (f", plus {', '.join(config.unlabelled_data)}" if config.unlabelled_data else ""))


def report_markdown(rows: List[dict], config, prep,
                    pretrain_seconds: float, extra: Dict[str, str], n_pretrain: int) -> str:
  """report.md: accuracy per model and label fraction, the inferred schema, the notes."""
  talk = config.label_column == "Cover_Type"
  detail = reporting.markdown_table(rows, ["model", "label_fraction", "accuracy", "macro_f1",
                                           "val_accuracy", "seconds", "labelled_rows"])
  schema = reporting.markdown_table(column_rows(prep),
                                    ["feature", "type", "categories", "decided by", "scaling"])
  notes = "\n".join(f"- {k}: {v}" for k, v in extra.items())
  pretrain_desc = pretraining_rows_text(config, n_pretrain)
  return f"""# Tabular contrastive Transformer: `{config.data}` → `{config.label_column}`

One stratified split (seed {config.seed}): {len(prep.train_idx)} training rows,
{len(prep.eval_idx)} evaluation rows; classes {list(prep.schema.classes)}. Evaluation rows
are never used for labels, scaling, vocabularies or model choice; pretraining saw
{pretrain_desc}. At label fraction f, a stratified f-share of the training split is
labelled; {config.val_fraction:.0%} of those labelled rows are held out for early stopping
and every choice (retrieval head, exported model); KNN uses all labelled rows. Where that
holdout has fewer than {config.crossfit_below} rows, the Transformer rows are cross-fitted
instead: {config.crossfit_folds} stratified folds of all labelled rows, one model per fold
early-stopped on its held-out fold (evaluation probabilities averaged), and every choice is
made on the out-of-fold predictions of all labelled rows (`val_accuracy`, `val_rows`);
LightGBM keeps the holdout (notes `choices @f`).
{"The talk's column: 15,120 labelled Kaggle rows plus 565,892 unlabelled rows, scored on Kaggle's test labels (not comparable in absolute terms)." if talk else ""}

{accuracy_table(rows, config)}

Per run (`seconds`: that model's training + prediction wall time; `retrieval` and
`metric_retrieval` include their classifier's training; pretraining
{pretrain_seconds:.0f} s is shared by the rows that use it and not included; our
classifier and its heads start from the {config.start} encoder weights, note `encoder
start`):

{detail}

Columns ({len(prep.schema.continuous)} continuous, {len(prep.schema.categorical)} categorical;
categorical id 0 = missing, 1 = out of vocabulary):

{schema}

Architecture: d={config.dim}, {config.num_heads} heads, {config.num_layers} layers,
numeric embedding `{config.numeric_embedding}`, {config.numeric_scaling} scaling, log1p
columns {list(config.log1p_columns)};
pretraining {config.pretrain_epochs} epochs (mask {config.mask_rate}, corruption
{config.corruption_rate}, weights mfm {config.mfm_weight} / contrastive
{config.contrastive_weight}); classifier training up to {config.finetune_epochs} epochs
(from the pretrained weights: encoder LR x {config.encoder_lr_multiplier}, head-only warm-up
epochs {list(config.probe_epochs)}), patience {config.patience}.

{notes}
"""


def compared_tables(compared: Dict[float, harness.Comparison]) -> str:
  """Markdown: the compared table (``experiments.harness``) of each label fraction."""
  parts = []
  for frac, result in compared.items():
    parts.append(f"Compared at label fraction {frac:g} ({result.repeats} repeat(s); ours "
                 f"= {result.ours}, best peer on validation = {result.best_peer}):\n\n"
                 + reporting.markdown_table(result.table_rows("accuracy"),
                                            result.columns("accuracy")))
  return "\n\n".join(parts)


def write_outputs(out: pathlib.Path, config, prep, pre,
                  rows: List[dict], extra: Dict[str, str], metrics: dict,
                  tables: str = "") -> None:
  """Report step: metrics.json (``metrics`` plus the rows) and report.md (with the
  compared ``tables``)."""
  reporting.write_json(out / "metrics.json", {
      "rows": rows, "pretrain_seconds": pre.seconds, "pretrain_rows": pre.num_rows,
      **metrics, "config": common.config_dict(config)})
  reporting.write_text(out / "report.md", report_markdown(
      rows, config, prep, pre.seconds, extra, pre.num_rows) + (
          "\n## Compared through the harness (equal trials, mean [95% CI], verdict of "
          "ours vs the best GBDT peer)\n\n" + tables + "\n" if tables else ""))
