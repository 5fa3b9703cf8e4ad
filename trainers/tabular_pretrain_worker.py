"""One process of a tabular pretraining run on a small synthetic table, under any strategy.

Single process::

  python -m trainers.tabular_pretrain_worker --out=runs/tab1/pretrain.npz

Two workers (TF_CONFIG names the cluster and this process's index; see BUILD_NOTES.md,
"Multi-worker training")::

  TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]},
              "task": {"type": "worker", "index": 0}}' \\
    python -m trainers.tabular_pretrain_worker --strategy=multi_worker \\
      --out=runs/tab2/pretrain.npz
  # same with "index": 1 in a second shell

Every worker builds the same seeded table in memory (``--rows`` rows, 3 numeric and 2
categorical columns driven by 4 latent classes), pretrains a tiny encoder (d=8, one
layer, no dropout) and embeds every row. The chief writes ``--out`` (npz: loss per epoch,
embeddings of the rows after and before pretraining, latent classes, replicas, seconds);
every other worker writes ``<stem>.worker<i>.npz`` beside it.
"""

import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401

FLAGS = flags.FLAGS
flags.DEFINE_enum("strategy", "default", ["default", "multi_worker"],
                  "tf.distribute strategy (multi_worker reads TF_CONFIG).")
flags.DEFINE_string("out", "runs/tabular_pretrain_worker/pretrain.npz", "Result file (chief).")
flags.DEFINE_integer("epochs", 8, "Pretraining epochs.", lower_bound=1)
flags.DEFINE_integer("rows", 384, "Rows of the synthetic table.", lower_bound=8)
flags.DEFINE_integer("batch_size", 64, "Global batch size (split between replicas).",
                     lower_bound=2)
flags.DEFINE_float("lr", 3e-3, "Adam learning rate.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seeds the table, the initialisation and the training.")
flags.DEFINE_string("checkpoint_dir", "", "Pretraining checkpoints (chief; the other "
                    "workers use <dir>.worker<i>). Empty: none.")
flags.DEFINE_bool("resume", False, "Resume from the latest checkpoint in --checkpoint_dir.")
flags.DEFINE_integer("threads", 1, "TensorFlow intra- and inter-op threads per process.",
                     lower_bound=1)

CLASSES = 4
CARDINALITIES = (5, 7)   # id 0 = missing: 4 and 6 real categories


def synthetic_table(rows: int, seed: int):
  """(features dict, latent class [rows]): numeric columns around a class mean, categorical
  columns drawn mostly from a class-specific category."""
  import numpy as np
  rng = np.random.default_rng(seed)
  y = rng.integers(0, CLASSES, rows)
  means = rng.normal(0.0, 1.5, (CLASSES, 3))
  cont = (means[y] + rng.normal(0.0, 1.0, (rows, 3))).astype(np.float32)
  cat = np.empty((rows, len(CARDINALITIES)), np.int32)
  for j, k in enumerate(CARDINALITIES):
    home = 1 + (y + j) % (k - 1)
    noise = rng.integers(1, k, rows)
    cat[:, j] = np.where(rng.random(rows) < 0.7, home, noise)
  return {"continuous": cont, "categorical": cat}, y


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  # Before the strategy starts the runtime (MultiWorkerMirroredStrategy starts a gRPC
  # server); two workers on one machine should not each claim every core.
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
  from tfrs_emb.core import distribute
  from tfrs_emb.models import tabular_training as training

  strategy = (tf.distribute.MultiWorkerMirroredStrategy()
              if FLAGS.strategy == "multi_worker" else None)
  features, latent = synthetic_table(FLAGS.rows, FLAGS.seed)
  tf.keras.utils.set_random_seed(FLAGS.seed)
  encoder = training.build_encoder(3, CARDINALITIES, dim=8, num_heads=2, num_layers=1,
                                   ff_multiplier=2, dropout=0.0, strategy=strategy)
  untrained = training.embed(encoder, features)
  losses = []   # pretrain calls fit once per epoch: collect each epoch's mean loss
  record = tf.keras.callbacks.LambdaCallback(
      on_epoch_end=lambda epoch, logs: losses.append(float(logs["loss"])))
  t0 = time.time()
  training.pretrain(encoder, features, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                    lr=FLAGS.lr, seed=FLAGS.seed, projection_dim=16, callbacks=[record],
                    checkpoint_dir=FLAGS.checkpoint_dir or None, resume=FLAGS.resume,
                    strategy=strategy)
  seconds = time.time() - t0
  loss = np.asarray(losses, np.float64)
  embeddings = training.embed(encoder, features)
  strat = strategy or tf.distribute.get_strategy()
  out = distribute.output_path(FLAGS.out, strat)
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(f".{out.name}.{time.time_ns()}.npz")
  np.savez(tmp, loss=loss, embeddings=embeddings, untrained=untrained, latent=latent,
           replicas=strat.num_replicas_in_sync, train_seconds=seconds)
  tmp.replace(out)   # atomic: a reader never sees a half-written result
  print(f"{FLAGS.strategy}: {strat.num_replicas_in_sync} replica(s), loss per epoch "
        f"{np.round(loss, 4).tolist()}, {seconds:.1f} s -> {out}")


if __name__ == "__main__":
  app.run(main)
