"""TF_CONFIG building and chief-only output paths (the non-chief path is exercised by
tests/models/test_cbow_multi_worker.py, which needs two processes)."""

import json

import pytest
import tensorflow as tf

from tfrs_emb.core import distribute


def test_tf_config_names_cluster_and_task():
  cfg = json.loads(distribute.tf_config(["h0:2222", "h1:2222"], 1))
  assert cfg == {"cluster": {"worker": ["h0:2222", "h1:2222"]},
                 "task": {"type": "worker", "index": 1}}
  with pytest.raises(ValueError, match="outside the 2 workers"):
    distribute.tf_config(["h0:2222", "h1:2222"], 2)


def test_single_process_is_chief_and_writes_the_path_itself(tmp_path):
  strategy = tf.distribute.get_strategy()
  assert distribute.is_chief(strategy)
  assert distribute.output_path(tmp_path / "v.npz", strategy) == tmp_path / "v.npz"


def test_make_strategy_by_name():
  assert distribute.make_strategy("default") is tf.distribute.get_strategy()
  assert isinstance(distribute.make_strategy("mirrored"), tf.distribute.MirroredStrategy)
  with pytest.raises(ValueError, match="strategy must be one of default, mirrored, "
                                       "multi_worker, got 'tpu'"):
    distribute.make_strategy("tpu")
