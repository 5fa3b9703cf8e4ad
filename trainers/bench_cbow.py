"""Keras CBOW vs gensim CBOW: throughput and quality in the same run, on one corpus
(tfrs_emb.experiments.bench_cbow). Prints one table (train_seconds, tokens_per_s,
heldout_recall@k, class_agreement@k, popularity and random baselines) and the load
average before and after; writes nothing.

  flock /tmp/tfrs_heavy.lock python -m trainers.bench_cbow --flagfile=configs/bench_cbow.flags
  python -m trainers.bench_cbow --flagfile=configs/bench_cbow.flags --synthetic_cases=692821
  python -m trainers.bench_cbow --synthetic_seed=1 --keras_grid="learning_rate=0.02;learning_rate=0.05,epochs=3"

Tune on a development release (--synthetic_seed=1), never on the evaluation one (seed 0).
"""

from absl import app

from trainers import cbow_env  # noqa: F401  (first: oneDNN off before TensorFlow loads)
import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tfrs_emb.experiments import bench_cbow
from trainers import flagdefs

flagdefs.define_config_flags(bench_cbow.Config)


def main(argv):
  del argv
  config = flagdefs.config_from_flags(bench_cbow.Config)
  flagdefs.configure_cbow_trainer(config.workers)
  result = bench_cbow.run(config, log=lambda m: print(m, flush=True))
  print(result.table)
  print(result.conditions)


if __name__ == "__main__":
  app.run(main)
