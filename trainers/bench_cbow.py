"""Keras CBOW vs gensim CBOW: throughput and quality in the same run, on one corpus.

  flock /tmp/tfrs_heavy.lock python -m trainers.bench_cbow --flagfile=configs/bench_cbow.flags
  python -m trainers.bench_cbow --flagfile=configs/bench_cbow.flags --synthetic_cases=692821
  python -m trainers.bench_cbow --synthetic_seed=1 --keras_grid="learning_rate=0.02;learning_rate=0.05,epochs=3"

Loads a (cached) synthetic JADER release, holds one seeded random element out of each of
--eval_sets sampled cases with >= 3 elements (removed from training), then trains gensim
(workers=--workers) and each Keras variant of --keras_grid on the same corpus, alternating,
and prints one table: train_seconds, tokens_per_s (case-elements × epochs / whole training
seconds, as trainers/jader_w2v.py), heldout_recall@k (SPEC.md: mean of the remaining
elements' input vectors · every output vector, remaining elements excluded) and
class_agreement@k (mean case embeddings, exact search, self excluded), with the
popularity and random baselines, and the load average before and after.
Tune on a development release (--synthetic_seed=1), never on the evaluation one (seed 0).
"""

import dataclasses
import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401

FLAGS = flags.FLAGS
flags.DEFINE_integer("synthetic_cases", 30_000, "Cases of the generated release.")
flags.DEFINE_integer("synthetic_seed", 1, "Seed of the release (1 = development).")
flags.DEFINE_string("cache_dir", "runs/cache/jader", "Where generated releases are kept.")
flags.DEFINE_integer("eval_sets", 2000, "Cases with one held-out element (and queries).")
flags.DEFINE_integer("k", 10, "Cut-off of both metrics.")
flags.DEFINE_integer("dim", 64, "Embedding dimension (both).")
flags.DEFINE_integer("window", 64, "gensim window; Keras max_len = window + 1.")
flags.DEFINE_integer("negatives", 5, "Negative samples per target (both).")
flags.DEFINE_integer("epochs", 5, "Epochs (both; a grid entry may override Keras').")
flags.DEFINE_integer("min_count", 5, "Minimum number of cases of an element (both).")
flags.DEFINE_float("sample", 1e-3, "Subsampling threshold (both).")
flags.DEFINE_integer("workers", 2, "gensim workers and TF intra-op threads.")
flags.DEFINE_integer("repeats", 1, "Timed rounds (gensim + every Keras variant each).")
flags.DEFINE_bool("run_gensim", True, "Also train gensim.")
flags.DEFINE_string("keras_grid", "", "Keras variants: ';'-separated lists of "
                    "name=value overrides of train_cbow's arguments (empty = defaults).")
flags.DEFINE_integer("seed", 0, "Seed of training, held-out elements and queries.")


@dataclasses.dataclass
class HeldOut:
  """Training corpus with one element held out of each evaluation set."""
  indptr: "np.ndarray"
  indices: "np.ndarray"
  eval_ids: "np.ndarray"        # case ids of the evaluation sets
  held: "np.ndarray"            # held-out element id per evaluation set


def hold_out(indptr, indices, num_sets, seed):
  """One seeded random element out of each of ``num_sets`` random cases with >= 3."""
  import numpy as np
  from tfrs_emb.models import cbow
  rng = np.random.default_rng(seed)
  lengths = np.diff(indptr)
  eligible = np.nonzero(lengths >= 3)[0]
  eval_ids = np.sort(rng.choice(eligible, min(num_sets, len(eligible)), replace=False))
  pos = indptr[eval_ids] + rng.integers(0, lengths[eval_ids])
  keep = np.ones(len(indices), bool)
  keep[pos] = False
  return HeldOut(*cbow.filter_sets(indptr, indices, keep), eval_ids, indices[pos])


def heldout_recall(split, rows, inputs, outputs, k):
  """Hit rate of the held-out element in the top k of mean(inputs)·outputs."""
  import numpy as np
  hits = []
  for case, target in zip(split.eval_ids, split.held):
    ctx = rows[split.indices[split.indptr[case]:split.indptr[case + 1]]]
    ctx = ctx[ctx >= 0]
    if rows[target] < 0 or not len(ctx):
      hits.append(False)
      continue
    scores = outputs @ inputs[ctx].mean(0)
    scores[ctx] = -np.inf
    top = np.argpartition(-scores, k)[:k]
    hits.append(rows[target] in top)
  return float(np.mean(hits))


def _gensim(cases_tokens, epochs):
  import logging
  logging.getLogger("gensim").setLevel(logging.WARNING)
  from gensim.models import Word2Vec
  t0 = time.perf_counter()
  model = Word2Vec(cases_tokens, vector_size=FLAGS.dim, window=FLAGS.window,
                   negative=FLAGS.negatives, sg=0, cbow_mean=1, min_count=FLAGS.min_count,
                   sample=FLAGS.sample, epochs=epochs, workers=FLAGS.workers,
                   seed=FLAGS.seed, shrink_windows=False)
  seconds = time.perf_counter() - t0
  return model.wv.index_to_key, model.wv.vectors, model.syn1neg, seconds


def _parse_grid(text):
  out = []
  for entry in (text.split(";") if text else [""]):
    kw = {}
    for item in filter(None, (s.strip() for s in entry.split(","))):
      key, value = item.split("=", 1)
      try:
        kw[key.strip()] = int(value)
      except ValueError:
        try:
          kw[key.strip()] = float(value)
        except ValueError:
          kw[key.strip()] = value.strip()
    out.append(kw)
  return out


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.workers)
  from tfrs_emb import reporting
  from tfrs_emb.data import jader
  from tfrs_emb.data import synthetic_jader
  from tfrs_emb.models import case_encoder
  from tfrs_emb.models import cbow

  before = reporting.machine_conditions()
  release = synthetic_jader.cached_release(FLAGS.cache_dir, FLAGS.synthetic_cases,
                                           FLAGS.synthetic_seed, log=print)
  cases = jader.load_cases(release, verbose=False)
  split = hold_out(cases.indptr, cases.indices, FLAGS.eval_sets, FLAGS.seed)
  voc = np.asarray(cases.vocab, dtype=object)
  tokens_lists = [voc[split.indices[split.indptr[i]:split.indptr[i + 1]]].tolist()
                  for i in range(len(cases))]
  train_sets = [frozenset(t) for t in tokens_lists]   # rank_dice's S(·); unused here
  print(f"{release}: {len(cases):,d} cases, {len(split.indices):,d} training "
        f"case-elements, {len(split.eval_ids):,d} held-out sets")
  k = FLAGS.k

  def score(name, vocab, inputs, outputs, seconds, epochs, extra=""):
    rows = case_encoder.map_elements(cases.vocab, vocab)
    emb = case_encoder.case_embeddings(split.indptr, rows[split.indices], inputs, "mean")
    agree = case_encoder.evaluate_case_search(emb, train_sets, split.eval_ids,
                                              cases.latent_class, k=k)
    tokens = len(split.indices) * epochs
    return {"method": name, "variant": extra, "epochs": epochs, "train_seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds else float("nan"),
            f"heldout_recall@{k}": heldout_recall(split, rows, inputs, outputs, k),
            f"class_agreement@{k}": agree[f"class_agreement@{k}"]}

  results = []
  grid = _parse_grid(FLAGS.keras_grid)
  for _ in range(FLAGS.repeats):
    if FLAGS.run_gensim:
      vocab, vin, vout, secs = _gensim(tokens_lists, FLAGS.epochs)
      results.append(score("gensim", vocab, vin, vout, secs, FLAGS.epochs))
      print(results[-1], flush=True)
    for kw in grid:
      args = dict(dim=FLAGS.dim, negatives=FLAGS.negatives, epochs=FLAGS.epochs,
                  min_count=FLAGS.min_count, sample=FLAGS.sample, max_len=FLAGS.window + 1,
                  seed=FLAGS.seed, verbose=0)
      args.update(kw)
      name = ",".join(f"{a}={b}" for a, b in kw.items()) or "defaults"
      try:
        res = cbow.train_cbow(split.indptr, split.indices, cases.vocab, **args)
      except FloatingPointError as e:   # a grid may cross the stability limit
        results.append({"method": "keras", "variant": name + " (diverged)"})
        print(e, flush=True)
        continue
      results.append(score("keras", res.vocab, res.vectors, res.output_vectors,
                           res.train_seconds, args["epochs"], name))
      print(results[-1], flush=True)
      del res
      tf.keras.backend.clear_session()

  # Baselines: training popularity and random order (no model).
  counts = np.bincount(split.indices, minlength=len(cases.vocab)).astype(np.float32)
  ident = np.arange(len(cases.vocab))
  ones = np.ones((len(cases.vocab), 1), np.float32)
  rng = np.random.default_rng(FLAGS.seed)
  base = [("popularity", counts[:, None]),
          ("random", rng.random((len(cases.vocab), 1), dtype=np.float32))]
  for name, out in base:
    results.append({"method": name, f"heldout_recall@{k}":
                    heldout_recall(split, ident, ones, out, k)})
  after = reporting.machine_conditions()
  print(reporting.markdown_table(results, ["method", "variant", "epochs", "train_seconds",
                                           "tokens_per_s", f"heldout_recall@{k}",
                                           f"class_agreement@{k}"]))
  print(reporting.describe_conditions(before, after))


if __name__ == "__main__":
  app.run(main)
