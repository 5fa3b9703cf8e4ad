"""tf.distribute helpers: a strategy by name, TF_CONFIG for a cluster, who is chief, where a
worker writes.

Under ``tf.distribute.MultiWorkerMirroredStrategy`` every worker runs the same program and
ends with the same (mirrored) variables; only the chief should write results, the others
write to a worker-specific path (TensorFlow's documented pattern), so two processes never
write one file.

Usage::

  os.environ["TF_CONFIG"] = tf_config(["10.0.0.1:2222", "10.0.0.2:2222"], index=1)
  strategy = make_strategy("multi_worker")
  ...  # train
  path = output_path("runs/x/vectors.npz", strategy)   # runs/x/vectors.worker1.npz
"""

import json
import os
import pathlib
from typing import Sequence


def tf_config(workers: Sequence[str], index: int) -> str:
  """TF_CONFIG JSON of a cluster of ``workers`` ("host:port"), for worker ``index``."""
  if not 0 <= index < len(workers):
    raise ValueError(f"index {index} is outside the {len(workers)} workers {list(workers)}")
  return json.dumps({"cluster": {"worker": list(workers)},
                     "task": {"type": "worker", "index": int(index)}})


def is_chief(strategy) -> bool:
  """True for the process that writes results: always outside a multi-worker cluster;
  in one, the "chief" task, or worker 0 when there is no chief (as Keras decides)."""
  return bool(strategy.extended.should_checkpoint)


def output_path(path: "str | os.PathLike", strategy) -> pathlib.Path:
  """``path`` on the chief; ``stem.<task><id>suffix`` beside it on the other workers."""
  path = pathlib.Path(path)
  if is_chief(strategy):
    return path
  resolver = strategy.cluster_resolver
  return path.with_name(f"{path.stem}.{resolver.task_type}{resolver.task_id}{path.suffix}")


STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str = "default"):
  """A ``tf.distribute.Strategy`` by name: default (the current one), mirrored (all local
  devices) or multi_worker (the cluster named by TF_CONFIG).

  Raises:
    ValueError: an unknown name.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (tf_config needs none)
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
