r"""Tabular contrastive Transformer on Forest Cover Type (SPEC.md experiment 3).

  python -m trainers.tabular_contrastive --flagfile=configs/covertype.flags [--data=PATH]

One seeded stratified split: evaluation rows are never used for labels or scaling;
pretraining sees the training split's features, and with ``--pretrain_on=all`` also the
evaluation rows' features (never labels), plus any ``--unlabelled_data`` files. For each label
fraction, a stratified subset of the training split is labelled and 15 % of it held out for
early stopping. Reports KNN (k=2) on the frozen pretrained embedding, pretraining +
fine-tuning, the same architecture from scratch and LightGBM; writes metrics.json,
report.md, a UMAP PNG and exports the fine-tuned classifier (largest fraction).
"""

import pathlib
import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.models import tabular_pipeline as pipeline

FLAGS = flags.FLAGS
flags.DEFINE_string("data", "../shared/data/covertype/train.csv",
                    "Kaggle train.csv or UCI covtype.data[.gz].")
flags.DEFINE_string("output_dir", "runs/covertype", "metrics.json, report.md, PNG, logs.")
flags.DEFINE_string("export_dir", "exported_models/covertype_classifier",
                    "Model base path; the fine-tuned classifier goes to <export_dir>/1/. "
                    "Empty: no export.")
flags.DEFINE_integer("seed", 0, "Seed for the split, label subsets and initialisation.")
flags.DEFINE_float("eval_fraction", 0.2, "Share of each class held out for evaluation.")
flags.DEFINE_float("val_fraction", 0.15, "Share of the labelled rows kept for early stopping.")
flags.DEFINE_list("label_fractions", ["0.1", "1.0"], "Labelled shares of the training split.")
flags.DEFINE_integer("max_rows", 0, "Use a stratified subset of this many rows (0: all).")
flags.DEFINE_enum("pretrain_on", "train", ["train", "all"],
                  "Unlabelled rows for pretraining: the training split, or all rows' features "
                  "(the issue's and talk's transductive setting; evaluation labels never used).")
flags.DEFINE_list("unlabelled_data", [], "Extra label-free files for pretraining (Kaggle "
                  "test.csv or UCI covtype.data[.gz]; e.g. the talk's 565,892 rows).")
flags.DEFINE_list("log1p_columns", [], "Continuous columns mapped by sign(x)log1p(|x|).")
# Model.
flags.DEFINE_integer("dim", 64, "Token width d.")
flags.DEFINE_integer("num_heads", 8, "Attention heads.")
flags.DEFINE_integer("num_layers", 4, "Transformer layers.")
flags.DEFINE_integer("ff_multiplier", 2, "Feed-forward width = ff_multiplier * d.")
flags.DEFINE_float("dropout", 0.1, "Dropout in the Transformer and before the head.")
flags.DEFINE_enum("numeric_embedding", "linear", ["linear", "periodic"],
                  "Per-feature numeric embedding.")
flags.DEFINE_integer("num_frequencies", 8, "Periodic embedding: frequencies per feature.")
flags.DEFINE_float("frequency_scale", 1.0, "Periodic embedding: init std of frequencies.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the train steps (slower on 2 CPU cores).")
# Pretraining.
flags.DEFINE_integer("pretrain_epochs", 30, "Pretraining epochs over the training features.")
flags.DEFINE_integer("pretrain_batch_size", 256, "Pretraining batch size.")
flags.DEFINE_float("pretrain_lr", 1e-3, "Pretraining Adam learning rate.")
flags.DEFINE_integer("projection_dim", 128, "SimSiam projector/predictor width.")
flags.DEFINE_float("mask_rate", 0.15, "Share of feature tokens masked per view.")
flags.DEFINE_float("corruption_rate", 0.3, "Share of features resampled from marginals per view.")
flags.DEFINE_float("mfm_weight", 1.0, "Weight of the masked-feature loss.")
flags.DEFINE_float("contrastive_weight", 1.0, "Weight of the SimSiam loss.")
# Fine-tuning / scratch.
flags.DEFINE_integer("finetune_epochs", 100, "Max epochs (early stopping on val accuracy).")
flags.DEFINE_integer("finetune_batch_size", 128, "Fine-tuning batch size.")
flags.DEFINE_float("finetune_lr", 1e-3, "Head learning rate when fine-tuning.")
flags.DEFINE_float("encoder_lr_multiplier", 0.3, "Encoder LR = finetune_lr * this.")
flags.DEFINE_float("scratch_lr", 1e-3, "Learning rate when training from scratch.")
flags.DEFINE_integer("patience", 10, "Early-stopping patience in epochs.")
flags.DEFINE_integer("min_steps_per_epoch", 0,
                     "Repeat small labelled sets so one epoch has at least this many steps.")
# LightGBM.
flags.DEFINE_integer("lgbm_max_trees", 3000, "LightGBM max boosting rounds.")
flags.DEFINE_float("lgbm_lr", 0.05, "LightGBM learning rate.")
flags.DEFINE_integer("lgbm_num_leaves", 63, "LightGBM leaves per tree.")
flags.DEFINE_integer("lgbm_early_stopping", 100, "LightGBM early-stopping rounds.")
# Plot.
flags.DEFINE_bool("umap", True, "Write the UMAP PNG of pretrained embeddings.")
flags.DEFINE_integer("verbose", 2, "Keras fit verbosity (1: progress bar, 2: one line/epoch).")


def main(argv):
  del argv
  config = pipeline.ExperimentConfig(**{
      name: getattr(FLAGS, name) for name in pipeline.ExperimentConfig.__dataclass_fields__})
  start = time.time()
  result = pipeline.run_experiment(config)
  print(result["table"])
  print(f"wrote {pathlib.Path(config.output_dir) / 'metrics.json'} and report.md; "
        f"total {time.time() - start:.0f} s")
  if result.get("export_path"):
    print(f"exported classifier to {result['export_path']}")


if __name__ == "__main__":
  app.run(main)
