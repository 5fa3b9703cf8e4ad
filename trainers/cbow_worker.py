"""One process of a CBOW run on a JADER release, under any tf.distribute strategy.

Single process::

  python -m trainers.cbow_worker --synthetic_cases=1000 --out=runs/cbow1/vectors.npz

Two workers (one command per host, or two on one machine; TF_CONFIG names the cluster
and this process's index; see BUILD_NOTES.md, "Multi-worker training")::

  TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]},
              "task": {"type": "worker", "index": 0}}' \\
    python -m trainers.cbow_worker --strategy=multi_worker --synthetic_cases=1000 \\
      --out=runs/cbow2/vectors.npz
  # same with "index": 1 in a second shell

The chief writes ``--out`` (npz: vocab, vectors, counts, loss per epoch, replicas,
seconds); every other worker writes ``vectors.worker<i>.npz`` beside it, so a run can
check that the workers ended with the same variables. In a multi-worker run give every
worker the same ``--release`` (or generate the synthetic one first: the workers would
race to write it).
"""

import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401

FLAGS = flags.FLAGS
flags.DEFINE_string("release", "", "JADER release folder (the four CSVs); empty = a cached "
                    "synthetic release of --synthetic_cases cases.")
flags.DEFINE_integer("synthetic_cases", 1000, "Cases of the synthetic release.", lower_bound=1)
flags.DEFINE_string("cache_dir", "runs/cache", "Folder of cached synthetic releases.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy (multi_worker reads TF_CONFIG).")
flags.DEFINE_string("out", "runs/cbow_worker/vectors.npz", "Result file (chief).")
flags.DEFINE_integer("dim", 16, "Embedding size.", lower_bound=1)
flags.DEFINE_integer("epochs", 4, "Passes over the cases.", lower_bound=1)
flags.DEFINE_integer("min_count", 2, "Drop elements in fewer cases.", lower_bound=1)
flags.DEFINE_float("sample", 1e-3, "Subsampling threshold (0 disables).", lower_bound=0)
# A tiny corpus gives few steps: a larger rate than train_cbow's full-scale default.
flags.DEFINE_float("learning_rate", 0.3, "Initial SGD rate.", lower_bound=0)
flags.DEFINE_integer("tokens_per_batch", 512, "Slots per global batch.", lower_bound=2)
flags.DEFINE_integer("max_len", 32, "Longest set used.", lower_bound=2)
flags.DEFINE_integer("seed", 0, "Seeds the synthetic release and the training.")
flags.DEFINE_integer("threads", 1, "TensorFlow intra- and inter-op threads per process.",
                     lower_bound=1)


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  # Before the strategy starts the runtime (MultiWorkerMirroredStrategy starts a gRPC
  # server); two workers on one machine should not each claim every core.
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
  from tfrs_emb.core import distribute
  from tfrs_emb.data import jader, synthetic_jader
  from tfrs_emb.models import cbow_training

  release = FLAGS.release or synthetic_jader.cached_release(
      FLAGS.cache_dir, FLAGS.synthetic_cases, seed=FLAGS.seed)
  cases = jader.load_cases(release)
  config = cbow_training.CbowConfig(
      dim=FLAGS.dim, epochs=FLAGS.epochs, min_count=FLAGS.min_count, sample=FLAGS.sample,
      learning_rate=FLAGS.learning_rate, tokens_per_batch=FLAGS.tokens_per_batch,
      max_len=FLAGS.max_len, seed=FLAGS.seed,
      # The pure-TF step on every strategy: a one-worker run is then the reference the
      # multi-worker run (which cannot use the fused op) is compared with.
      kernel="tf")
  result = cbow_training.train_cbow(cases.indptr, cases.indices, cases.vocab, config,
                                    strategy=FLAGS.strategy, verbose=0)
  out = distribute.output_path(FLAGS.out, result.model.distribute_strategy)
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(f".{out.name}.{time.time_ns()}.npz")
  np.savez(tmp, vocab=np.asarray(result.vocab), vectors=result.vectors,
           counts=result.counts, loss=np.asarray(result.history.get("loss", []), np.float64),
           replicas=result.replicas, train_seconds=result.train_seconds)
  tmp.replace(out)   # atomic: a reader never sees a half-written result
  print(f"{FLAGS.strategy}: {result.replicas} replica(s), {len(result.vocab)} elements, "
        f"loss per epoch {np.round(result.history.get('loss', []), 4).tolist()}, "
        f"{result.train_seconds:.1f} s -> {out}")


if __name__ == "__main__":
  app.run(main)
