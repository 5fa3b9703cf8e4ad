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

import dataclasses
import time

from absl import app

import tfrs_emb  # noqa: F401
from tfrs_emb.core import distribute
from tfrs_emb.experiments.common import field, nested
from tfrs_emb.models.cbow import CbowConfig
from trainers import flagdefs


@dataclasses.dataclass
class WorkerConfig:
  """Flags of ``python -m trainers.cbow_worker``: the CBOW settings (``cbow``; defaults
  for a small corpus, which gives few steps: a larger rate than the full-scale default)
  and the process's data, strategy and output. The pure-TF step on every strategy (the
  ``kernel`` is not a flag here): a one-worker run is then the reference the multi-worker
  run (which cannot use the fused op) is compared with."""
  cbow: CbowConfig = nested(
      CbowConfig(dim=16, epochs=4, min_count=2, learning_rate=0.3, tokens_per_batch=512,
                 max_len=32, kernel="tf"),
      "CBOW settings.", derived=("seed", "threads", "kernel"))
  release: str = field("", "JADER release folder (the four CSVs); empty = a cached "
                       "synthetic release of --synthetic_cases cases.")
  synthetic_cases: int = field(1000, "Cases of the synthetic release.", lower=1)
  cache_dir: str = field("runs/cache", "Folder of cached synthetic releases.")
  strategy: str = field("default", "tf.distribute strategy (multi_worker reads TF_CONFIG).",
                        choices=distribute.STRATEGIES)
  out: str = field("runs/cbow_worker/vectors.npz", "Result file (chief).")
  seed: int = field(0, "Seeds the synthetic release and the training.")
  threads: int = field(1, "TensorFlow intra- and inter-op threads per process.", lower=1)

  def __post_init__(self):
    self.cbow = dataclasses.replace(self.cbow, seed=self.seed, kernel="tf")


flagdefs.define_config_flags(WorkerConfig)


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  config = flagdefs.config_from_flags(WorkerConfig)
  # Before the strategy starts the runtime (MultiWorkerMirroredStrategy starts a gRPC
  # server); two workers on one machine should not each claim every core.
  tf.config.threading.set_intra_op_parallelism_threads(config.threads)
  tf.config.threading.set_inter_op_parallelism_threads(config.threads)
  from tfrs_emb.data import jader, synthetic_jader
  from tfrs_emb.models import cbow_training

  release = config.release or synthetic_jader.cached_release(
      config.cache_dir, config.synthetic_cases, seed=config.seed)
  cases = jader.load_cases(release)
  result = cbow_training.train_cbow(cases.indptr, cases.indices, cases.vocab, config.cbow,
                                    strategy=config.strategy, verbose=0)
  out = distribute.output_path(config.out, result.model.distribute_strategy)
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(f".{out.name}.{time.time_ns()}.npz")
  np.savez(tmp, vocab=np.asarray(result.vocab), vectors=result.vectors,
           counts=result.counts, loss=np.asarray(result.history.get("loss", []), np.float64),
           replicas=result.replicas, train_seconds=result.train_seconds)
  tmp.replace(out)   # atomic: a reader never sees a half-written result
  print(f"{config.strategy}: {result.replicas} replica(s), {len(result.vocab)} elements, "
        f"loss per epoch {np.round(result.history.get('loss', []), 4).tolist()}, "
        f"{result.train_seconds:.1f} s -> {out}")


if __name__ == "__main__":
  app.run(main)
