"""BruteForce vs ScaNN vs faiss on JADER case embeddings (SPEC.md experiment 4).

python -m trainers.bench_retrieval --flagfile=configs/bench_retrieval.flags

Builds case embeddings (synthetic JADER at the talk's scale → CBOW → mean / max case
embeddings; or clustered random vectors with --source=clustered), times every method on
the same queries in one run and writes ``metrics.json``, ``report.md`` and
``recall_vs_qps.png`` under --output_dir.
"""

import pathlib
import time

from absl import app
from absl import flags

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tfrs_emb import reporting
from tfrs_emb.retrieval import bench

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", "jader", ["jader", "clustered"],
                  "jader: synthetic (or --jader_dir) JADER → CBOW → case embeddings; "
                  "clustered: random clustered unit vectors (development).")
flags.DEFINE_string("jader_dir", "", "Existing JADER release folder (real or synthetic); "
                    "empty = generate a synthetic release under --output_dir.")
flags.DEFINE_integer("num_cases", 692_821, "Cases of the synthetic release (the talk's).")
flags.DEFINE_integer("num_queries", 21_072, "Query cases (the talk's).")
flags.DEFINE_integer("k", 10, "Results per query (the query itself excluded).")
flags.DEFINE_integer("seed", 0, "Seed for data, queries and training.")
flags.DEFINE_integer("dim", 64, "Embedding size.")
flags.DEFINE_integer("cbow_epochs", 5, "CBOW epochs.")
flags.DEFINE_integer("cbow_min_count", 5, "CBOW min_count.")
flags.DEFINE_list("methods", ["bruteforce_mean", "bruteforce_max", "scann_mean",
                              "scann_reorder_mean", "scann_tuned_mean", "exact_mean",
                              "faiss_flat_mean", "faiss_ivf_mean", "faiss_hnsw_mean"],
                  "Rows to run, in order.")
flags.DEFINE_integer("bruteforce_batch", 1024, "Queries per TFRS BruteForce call.")
flags.DEFINE_integer("scann_leaves", 1000, "ScaNN / ScaNN reorder rows: num_leaves.")
flags.DEFINE_integer("scann_leaves_to_search", 50, "... num_leaves_to_search.")
flags.DEFINE_integer("scann_reorder", 100, "ScaNN (reorder) row: num_reordering_candidates.")
flags.DEFINE_integer("tuned_leaves", 2000, "Tuned ScaNN: num_leaves.")
flags.DEFINE_integer("tuned_leaves_to_search", 30, "Tuned ScaNN: num_leaves_to_search.")
flags.DEFINE_integer("tuned_reorder", 60, "Tuned ScaNN: num_reordering_candidates.")
flags.DEFINE_integer("tuned_dims_per_block", 2, "Tuned ScaNN: dimensions_per_block.")
flags.DEFINE_float("tuned_aq_threshold", 0.2, "Tuned ScaNN: anisotropic_quantization_threshold.")
flags.DEFINE_integer("faiss_ivf_nlist", 2048, "faiss IVF lists.")
flags.DEFINE_integer("faiss_ivf_nprobe", 16, "faiss IVF lists probed (table row).")
flags.DEFINE_integer("faiss_hnsw_m", 16, "faiss HNSW M.")
flags.DEFINE_integer("faiss_hnsw_ef_construction", 40, "faiss HNSW efConstruction.")
flags.DEFINE_integer("faiss_hnsw_ef_search", 64, "faiss HNSW efSearch (table row).")
flags.DEFINE_bool("sweep", True, "Sweep search-time knobs of the built indexes for the PNG.")
flags.DEFINE_list("sweep_scann", ["10:20", "20:40", "30:60", "50:100", "80:200"],
                  "Tuned-ScaNN sweep points leaves_to_search:reorder.")
flags.DEFINE_list("sweep_ivf_nprobe", ["4", "8", "16", "32", "64"], "IVF nprobe sweep.")
flags.DEFINE_list("sweep_hnsw_ef", ["16", "32", "64", "128", "256"], "HNSW efSearch sweep.")
flags.DEFINE_string("output_dir", "runs/bench_retrieval", "Where outputs are written.")


def _log(msg: str):
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _methods():
  scann_base = dict(num_leaves=FLAGS.scann_leaves,
                    num_leaves_to_search=FLAGS.scann_leaves_to_search)
  tuned = dict(num_leaves=FLAGS.tuned_leaves, num_leaves_to_search=FLAGS.tuned_leaves_to_search,
               num_reordering_candidates=FLAGS.tuned_reorder,
               dimensions_per_block=FLAGS.tuned_dims_per_block,
               anisotropic_quantization_threshold=FLAGS.tuned_aq_threshold,
               cache_searcher=True)
  table = {
      "bruteforce": ("bruteforce", lambda: bench.tfrs_brute_force(FLAGS.bruteforce_batch)),
      "scann": (f"scann ({FLAGS.scann_leaves} leaves, {FLAGS.scann_leaves_to_search} searched)",
                lambda: bench.tfrs_scann(num_reordering_candidates=None, **scann_base)),
      "scann_reorder": (f"scann (reorder={FLAGS.scann_reorder})",
                        lambda: bench.tfrs_scann(num_reordering_candidates=FLAGS.scann_reorder,
                                                 **scann_base)),
      "scann_tuned": (f"scann tuned ({FLAGS.tuned_leaves} leaves, "
                      f"{FLAGS.tuned_leaves_to_search} searched, AH t={FLAGS.tuned_aq_threshold}, "
                      f"reorder={FLAGS.tuned_reorder})", lambda: bench.tfrs_scann(**tuned)),
      "exact": ("bruteforce exact_top_k (tfrs_emb)", bench.exact),
      "faiss_flat": ("faiss IndexFlatIP", bench.faiss_flat),
      "faiss_ivf": (f"faiss IVF (nlist={FLAGS.faiss_ivf_nlist}, nprobe={FLAGS.faiss_ivf_nprobe})",
                    lambda: bench.faiss_ivf(FLAGS.faiss_ivf_nlist, FLAGS.faiss_ivf_nprobe,
                                            seed=FLAGS.seed)),
      "faiss_hnsw": (f"faiss HNSW (M={FLAGS.faiss_hnsw_m}, efSearch={FLAGS.faiss_hnsw_ef_search})",
                     lambda: bench.faiss_hnsw(FLAGS.faiss_hnsw_m, FLAGS.faiss_hnsw_ef_construction,
                                              FLAGS.faiss_hnsw_ef_search)),
  }
  out = {}
  for spec in FLAGS.methods:
    key, _, agg = spec.rpartition("_")
    if key not in table or agg not in ("mean", "max"):
      raise app.UsageError(f"--methods entry {spec!r}: expected <method>_<mean|max> with "
                           f"method in {sorted(table)}")
    name, make = table[key]
    out[spec] = bench.Method(name, agg, make())
  return out


def main(argv):
  del argv
  out_dir = pathlib.Path(FLAGS.output_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()
  methods = _methods()
  aggregations = sorted({m.aggregation for m in methods.values()})
  if FLAGS.source == "clustered":
    x, sets = bench.clustered_embeddings(FLAGS.num_cases, FLAGS.dim, seed=FLAGS.seed)
    embeddings = {a: x for a in aggregations}
    data_info = {"source": "clustered", "num_items": len(x)}
  else:
    embeddings, sets, data_info = bench.jader_embeddings(
        out_dir, FLAGS.num_cases, aggregations, jader_dir=FLAGS.jader_dir or None,
        dim=FLAGS.dim, epochs=FLAGS.cbow_epochs, min_count=FLAGS.cbow_min_count,
        seed=FLAGS.seed, log=_log)
  n = len(sets)
  rng = np.random.default_rng(FLAGS.seed)
  query_ids = np.sort(rng.choice(n, min(FLAGS.num_queries, n), replace=False))
  _log(f"{n:,d} items, {len(query_ids):,d} queries, k={FLAGS.k}; data took "
       f"{time.perf_counter() - t0:.1f} s")
  rows, exact = bench.run_methods(embeddings, query_ids, sets, list(methods.values()),
                                  k=FLAGS.k, log=_log)
  sweep = []
  if FLAGS.sweep:
    q_mean = embeddings["mean"][query_ids] if "mean" in embeddings else None
    if "scann_tuned_mean" in methods:
      pts = [tuple(int(v) for v in s.split(":")) for s in FLAGS.sweep_scann]
      sweep += bench.scann_sweep(methods["scann_tuned_mean"].run.index, q_mean, query_ids,
                                 FLAGS.k, pts, exact["mean"])
    if "faiss_ivf_mean" in methods:
      sweep += bench.faiss_sweep("ivf", methods["faiss_ivf_mean"].run.index, q_mean, query_ids,
                                 FLAGS.k, [int(v) for v in FLAGS.sweep_ivf_nprobe],
                                 exact["mean"])
    if "faiss_hnsw_mean" in methods:
      sweep += bench.faiss_sweep("hnsw", methods["faiss_hnsw_mean"].run.index, q_mean,
                                 query_ids, FLAGS.k, [int(v) for v in FLAGS.sweep_hnsw_ef],
                                 exact["mean"])
    for p in sweep:
      _log(f"sweep {p['method']} {p['setting']}: qps={p['qps']:.0f} recall={p['recall']:.4f}")
    if sweep:
      bench.plot_sweep(sweep, rows, str(out_dir / "recall_vs_qps.png"))
  payload = {
      "experiment": "bench_retrieval", "data": data_info, "num_items": n,
      "num_queries": int(len(query_ids)), "k": FLAGS.k, "rows": rows, "sweep": sweep,
      "talk_rows": bench.TALK_ROWS, "total_seconds": time.perf_counter() - t0,
      "flags": {f.name: f.value for f in FLAGS.get_key_flags_for_module(__name__)},
  }
  reporting.write_json(out_dir / "metrics.json", payload)
  (out_dir / "report.md").write_text(bench.report_markdown(payload), encoding="utf-8")
  _log(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'} "
       f"in {time.perf_counter() - t0:.1f} s total")
  print(bench.report_markdown(payload))


if __name__ == "__main__":
  app.run(main)
