"""trainers.embed_corpus and trainers.build_index as commands, with the network closed
(proxy variables point at a closed port): Beam options pass through, indexes reload."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.pipelines import vectors
from tfrs_emb.retrieval import build_brute_force, load_serving_fn


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                        env=env, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout


@pytest.mark.slow   # two trainer processes
def test_embed_then_sharded_index_from_the_command_line(tmp_path, text_model_path):
  corpus = tmp_path / "posts.jsonl"
  corpus.write_text("\n".join(json.dumps({"doc": f"d{i}", "body": f"word{i} w{i % 3} t{i % 5}"})
                              for i in range(60)) + '\n{"doc": "d1", "body": "again"}\n',
                    encoding="utf-8")
  out = _run("trainers.embed_corpus", f"--model={text_model_path}", f"--input={corpus}",
             f"--output={tmp_path / 'vec'}", "--id_field=doc", "--text_field=body",
             "--direct_running_mode=in_memory", "--vertex_files=2")
  assert "60 vectors" in out and "--runner=FnApiRunner" in out
  assert "skipped 1: posts.jsonl: duplicate id (first kept)" in out
  out = _run("trainers.build_index", f"--vectors={tmp_path / 'vec'}", "--kind=brute_force",
             "--shards=2", "--k=5", f"--export_dir={tmp_path / 'idx'}")
  assert "2 shard(s)" in out
  ids, emb = vectors.read_vectors(tmp_path / "vec")
  served = load_serving_fn(tmp_path / "idx" / "1")(query_embedding=tf.constant(emb[:8]))
  _, want = build_brute_force(emb, ids, k=5)(tf.constant(emb[:8]))
  np.testing.assert_array_equal(served["ids"].numpy(), want.numpy())
