"""JADER Word2Vec CBOW: Keras CBOW vs gensim, similar-case search, case-encoder export.

  python -m trainers.jader_w2v --flagfile=configs/jader_w2v.flags        # synthetic demo
  python -m trainers.jader_w2v --flagfile=configs/jader_w2v_full.flags   # talk's scale
  python -m trainers.jader_w2v --jader_dir=/data/jader/202404 --output_dir=runs/jader_real

Without --jader_dir a synthetic release of --synthetic_cases cases is generated once into
--cache_dir. Trains the Keras CBOW (tfrs_emb.models.cbow) and gensim's Word2Vec CBOW with
the same dimension, window, negatives, epochs, min_count, sample and threads; embeds every
case (mean and max of element vectors); searches the top-k similar cases of --queries
sampled cases among all cases (exact, self excluded); prints the table and writes
<output_dir>/metrics.json, the projector files and the CaseEncoder SavedModel.

class_agreement@k: for each query whose latent primary class is known (synthetic
release's latent_classes.csv), the fraction of its top-k neighbours (self excluded) with
the same primary class, averaged over those queries.
"""

import os
import pathlib
import sys
import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401

FLAGS = flags.FLAGS
flags.DEFINE_string("jader_dir", "", "Real JADER release folder; empty = synthetic.")
flags.DEFINE_integer("synthetic_cases", 20_000, "Cases of the generated release.")
flags.DEFINE_integer("synthetic_seed", 0, "Seed of the generated release.")
flags.DEFINE_string("cache_dir", "runs/cache/jader", "Where generated releases are kept.")
flags.DEFINE_bool("suspected_only", False, "Keep only 被疑薬 (suspected) drugs.")
flags.DEFINE_integer("dim", 64, "Embedding dimension (both methods).")
flags.DEFINE_integer("window", 64, "gensim window (no shrinking); Keras uses up to "
                     "window + 1 elements of a case, i.e. the same full-set context.")
flags.DEFINE_integer("negatives", 5, "Negative samples per target (both methods).")
flags.DEFINE_integer("shared_negatives", 32, "Keras: noise elements shared per batch.")
flags.DEFINE_integer("epochs", 5, "Epochs (both methods).")
flags.DEFINE_integer("min_count", 5, "Minimum number of cases of an element (both).")
flags.DEFINE_float("sample", 1e-3, "Subsampling threshold (both).")
flags.DEFINE_float("learning_rate", 0.008, "Keras initial learning rate.")
flags.DEFINE_float("min_learning_rate", 2e-5, "Keras final learning rate (linear decay).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adagrad"], "Keras optimizer.")
flags.DEFINE_integer("tokens_per_batch", 8192, "Keras padded slots per batch.")
flags.DEFINE_integer("steps_per_execution", 1, "Keras train steps per tf.function call.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy (multi_worker reads TF_CONFIG).")
flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into this many logical devices "
                     "(to exercise --strategy=mirrored on one machine); 0 = leave.")
flags.DEFINE_integer("workers", 2, "Threads: gensim workers and TF intra-op threads.")
flags.DEFINE_bool("run_gensim", True, "Also train and evaluate the gensim baseline.")
flags.DEFINE_integer("queries", 2000, "Query cases sampled for similar-case search.")
flags.DEFINE_integer("k", 10, "Neighbours per query.")
flags.DEFINE_integer("seed", 0, "Seed of training and query sampling.")
flags.DEFINE_string("output_dir", "runs/jader_w2v", "metrics.json, projector, TensorBoard.")
flags.DEFINE_string("export_dir", "exported_models/jader_case_encoder",
                    "CaseEncoder SavedModel base path (TF Serving layout); empty = skip.")
flags.DEFINE_integer("export_version", 1, "SavedModel version folder.")
flags.DEFINE_enum("export_aggregation", "mean", ["mean", "max"], "Exported aggregation.")
flags.DEFINE_bool("random_reference", True, "Also score untrained random element vectors "
                  "(a reference: rank_dice rewards exact element identity).")
flags.DEFINE_integer("verbose", 1, "Keras fit verbosity (1 = progress bar, 2 = per epoch).")


def _release_dir() -> pathlib.Path:
  from tfrs_emb.data import synthetic_jader
  if FLAGS.jader_dir:
    return pathlib.Path(FLAGS.jader_dir)
  out = pathlib.Path(FLAGS.cache_dir) / f"synthetic_{FLAGS.synthetic_cases}_s{FLAGS.synthetic_seed}"
  done = out / ".complete"
  if not done.exists():
    print(f"generating a synthetic JADER release of {FLAGS.synthetic_cases:,d} cases in {out}")
    info = synthetic_jader.write_release(out, FLAGS.synthetic_cases, seed=FLAGS.synthetic_seed)
    print(f"  written in {info['seconds']:.1f} s: {info['rows']}")
    done.write_text("ok\n")
  return out


def _gensim_cbow(cases, threads):
  import logging
  logging.getLogger("gensim").setLevel(logging.WARNING)
  from gensim.models import Word2Vec
  sentences = cases.token_lists(seed=FLAGS.seed)
  t0 = time.perf_counter()
  model = Word2Vec(sentences, vector_size=FLAGS.dim, window=FLAGS.window,
                   negative=FLAGS.negatives, sg=0, cbow_mean=1, min_count=FLAGS.min_count,
                   sample=FLAGS.sample, epochs=FLAGS.epochs, workers=threads,
                   seed=FLAGS.seed, shrink_windows=False)
  seconds = time.perf_counter() - t0
  return model.wv.index_to_key, model.wv.vectors, seconds


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  if FLAGS.cpu_replicas > 0:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * FLAGS.cpu_replicas)
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.workers)
  from tfrs_emb import reporting
  from tfrs_emb.data import jader
  from tfrs_emb.models import case_encoder
  from tfrs_emb.models import cbow

  out = pathlib.Path(FLAGS.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()
  release = _release_dir()
  cases = jader.load_cases(release, suspected_only=FLAGS.suspected_only)
  load_seconds = time.perf_counter() - t0
  sets = cases.element_sets()
  rng = np.random.default_rng(FLAGS.seed)
  candidates = np.nonzero(cases.lengths > 0)[0]
  query_ids = np.sort(rng.choice(candidates, min(FLAGS.queries, len(candidates)),
                                 replace=False))
  print(f"loaded in {load_seconds:.1f} s; {len(query_ids):,d} queries over "
        f"{len(cases):,d} cases")

  result = cbow.train_cbow(
      cases.indptr, cases.indices, cases.vocab, dim=FLAGS.dim, negatives=FLAGS.negatives,
      shared_negatives=FLAGS.shared_negatives, epochs=FLAGS.epochs,
      min_count=FLAGS.min_count, sample=FLAGS.sample, learning_rate=FLAGS.learning_rate,
      min_learning_rate=FLAGS.min_learning_rate, optimizer=FLAGS.optimizer,
      tokens_per_batch=FLAGS.tokens_per_batch, max_len=FLAGS.window + 1, seed=FLAGS.seed,
      strategy=FLAGS.strategy, log_dir=str(out / "tensorboard"), verbose=FLAGS.verbose,
      steps_per_execution=FLAGS.steps_per_execution)
  methods = [("keras_cbow", result.vocab, result.vectors, result.train_seconds)]
  if FLAGS.run_gensim:
    methods.append(("gensim_cbow",) + _gensim_cbow(cases, FLAGS.workers))

  tokens = int(len(cases.indices)) * FLAGS.epochs
  rows = []
  for name, vocab, vectors, seconds in methods:
    elem_rows = case_encoder.map_elements(cases.vocab, vocab)[cases.indices]
    for agg in case_encoder.AGGREGATIONS:
      emb = case_encoder.case_embeddings(cases.indptr, elem_rows, vectors, agg)
      scores = case_encoder.evaluate_case_search(emb, sets, query_ids, cases.latent_class,
                                                 k=FLAGS.k)
      rows.append({"method": name, "aggregation": agg, "train_seconds": seconds,
                   "tokens_per_s": tokens / seconds,
                   f"rank_dice@{FLAGS.k}": scores[f"rank_dice@{FLAGS.k}"],
                   f"class_agreement@{FLAGS.k}": scores[f"class_agreement@{FLAGS.k}"],
                   "search_seconds": scores["search_seconds"]})
      print(f"{name} {agg}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else
                                         f"{k}={v}" for k, v in rows[-1].items()
                                         if k not in ("method", "aggregation")), flush=True)
      del emb
  # Reference point: untrained random element vectors (no semantics, exact identity).
  random_rows = []
  noise = np.random.default_rng(FLAGS.seed + 1).standard_normal(
      (len(cases.vocab), FLAGS.dim)).astype(np.float32)
  for agg in case_encoder.AGGREGATIONS if FLAGS.random_reference else ():
    emb = case_encoder.case_embeddings(cases.indptr, cases.indices, noise, agg)
    scores = case_encoder.evaluate_case_search(emb, sets, query_ids, cases.latent_class,
                                               k=FLAGS.k)
    random_rows.append({"method": "random_vectors", "aggregation": agg,
                        f"rank_dice@{FLAGS.k}": scores[f"rank_dice@{FLAGS.k}"],
                        f"class_agreement@{FLAGS.k}": scores[f"class_agreement@{FLAGS.k}"]})
    del emb

  projector = cbow.write_projector(result.vocab, result.vectors, out / "projector",
                                   result.counts)
  (out / "tensorboard").mkdir(parents=True, exist_ok=True)
  (out / "tensorboard" / "projector_config.pbtxt").write_text(
      'embeddings {\n  tensor_name: "jader_elements"\n'
      f'  tensor_path: "{(projector / "vectors.tsv").resolve()}"\n'
      f'  metadata_path: "{(projector / "metadata.tsv").resolve()}"\n}}\n', encoding="utf-8")
  export_path = ""
  if FLAGS.export_dir:
    encoder = case_encoder.CaseEncoder(result.vocab, result.vectors,
                                       aggregation=FLAGS.export_aggregation)
    export_path = str(case_encoder.export_case_encoder(encoder, FLAGS.export_dir,
                                                       version=FLAGS.export_version))

  columns = ["method", "aggregation", "train_seconds", "tokens_per_s",
             f"rank_dice@{FLAGS.k}", f"class_agreement@{FLAGS.k}"]
  table = reporting.markdown_table(rows, columns)
  payload = {
      "rows": rows, "reference_rows": random_rows, "cases": len(cases), "queries": int(len(query_ids)),
      "vocab_size": len(cases.vocab), "train_vocab_size": len(result.vocab),
      "case_elements": int(len(cases.indices)), "tokens": tokens,
      "release": str(release), "synthetic": not FLAGS.jader_dir,
      "load_seconds": load_seconds, "skipped_rows": cases.skipped,
      "keras_history": result.history, "export_path": export_path,
      "projector": str(projector), "strategy": FLAGS.strategy,
      "replicas": result.replicas,
      "config": {f: getattr(FLAGS, f) for f in (
          "dim", "window", "negatives", "shared_negatives", "epochs", "min_count", "sample",
          "learning_rate", "min_learning_rate", "optimizer", "tokens_per_batch",
          "steps_per_execution", "workers", "k", "seed", "suspected_only")},
      "argv": sys.argv[1:], "cpu_count": os.cpu_count(),
  }
  reporting.write_json(out / "metrics.json", payload)
  print(table)
  print("reference (untrained random element vectors):")
  print(reporting.markdown_table(random_rows, ["method", "aggregation", columns[4], columns[5]]))
  print(f"metrics: {out / 'metrics.json'}; case encoder: {export_path or '(not exported)'}")


if __name__ == "__main__":
  app.run(main)
