"""Side-by-side benchmark of top-k search methods over one embedding matrix.

Every method answers the same queries (rows of the database itself, so each query's own
row is dropped from its results, as rank_dice@k requires) and is scored against the exact
top-k. Used by ``trainers.bench_retrieval``; no flags here.

A method is a ``Method(search, aggregation, run)`` where ``run(database, queries, k)``
returns ``(index_seconds, query_seconds, neighbors int64 [num_queries, k])``.
"""

import dataclasses
import gc
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb import metrics
from tfrs_emb.retrieval import index as index_lib
from tfrs_emb.core.linalg import exact_top_k

RunFn = Callable[[np.ndarray, np.ndarray, int], Tuple[float, float, np.ndarray]]

# The talk's published table (SPEC.md experiment 4): seconds and rank_dice@10.
TALK_ROWS = [
    dict(search="BruteForce", aggregation="mean", index_seconds=0.0692, query_seconds=111.0,
         score=0.525),
    dict(search="BruteForce", aggregation="max", index_seconds=0.0459, query_seconds=104.0,
         score=0.512),
    dict(search="ScaNN", aggregation="mean", index_seconds=14.5, query_seconds=3.14,
         score=0.490),
    dict(search="ScaNN (reorder=100)", aggregation="mean", index_seconds=14.2,
         query_seconds=3.80, score=0.522),
]


@dataclasses.dataclass
class Method:
  """One row of the benchmark: a search method on one aggregation's embeddings."""
  search: str
  aggregation: str
  run: RunFn


def _timed(fn):
  t0 = time.perf_counter()
  out = fn()
  return time.perf_counter() - t0, out


def _ids_to_rows(ids: tf.Tensor) -> np.ndarray:
  return np.asarray(ids.numpy(), dtype=bytes).astype(np.int64)


def tfrs_brute_force(batch_size: int = 1024) -> RunFn:
  """TFRS BruteForce layer (as the talk), queried in batches of ``batch_size``."""
  def run(db, queries, k):
    t_index, layer = _timed(lambda: index_lib.build_brute_force(db, k=k))
    def query():
      return np.concatenate([_ids_to_rows(layer(tf.constant(queries[i:i + batch_size]),
                                                k=k)[1])
                             for i in range(0, len(queries), batch_size)])
    t_query, nn = _timed(query)
    return t_index, t_query, nn
  return run


def tfrs_scann(**scann_kwargs) -> RunFn:
  """TFRS ScaNN layer (``index.build_scann``), all queries in one batched-parallel call."""
  def run(db, queries, k):
    t_index, layer = _timed(lambda: index_lib.build_scann(db, k=k, **scann_kwargs))
    t_query, out = _timed(lambda: layer(tf.constant(queries), k=k))
    run.index = layer
    return t_index, t_query, _ids_to_rows(out[1])
  return run


def tfrs_scann_tuned(validation_ids: np.ndarray, grid: Sequence[Tuple[int, int]],
                     target_recall: float = 0.96, **scann_kwargs) -> RunFn:
  """ScaNN layer whose search-time knobs are picked on validation queries.

  After the build, every (leaves_to_search, reorder) of ``grid`` is run on the
  ``validation_ids`` rows (disjoint from the benchmark queries) and the fastest setting
  reaching ``target_recall`` (recall@k vs exact, query dropped) is kept
  (``ScaNN.set_search_params``); the most accurate one if none does. The benchmark
  queries are then answered by the layer with that setting. ``run.tuning`` holds the
  validation table, ``run.chosen`` the setting, ``run.tune_seconds`` the time taken.
  """
  def run(db, queries, k):
    kwargs = dict(scann_kwargs, cache_searcher=True)
    t_index, layer = _timed(lambda: index_lib.build_scann(db, k=k, **kwargs))
    t0 = time.perf_counter()
    val_ids = np.asarray(validation_ids, np.int64)
    val = db[val_ids]
    _, nn = exact_top_k(val, db, k)
    val_exact = drop_self(nn, val_ids, k - 1)
    table = scann_sweep(layer, val, val_ids, k - 1, grid, val_exact)
    ok = [r for r in table if r["recall"] >= target_recall]
    best = max(ok, key=lambda r: r["qps"]) if ok else max(table, key=lambda r: r["recall"])
    layer.set_search_params(*best["params"])
    run.tuning, run.chosen = table, best
    run.tune_seconds = time.perf_counter() - t0
    t_warm, _ = _timed(lambda: layer(tf.constant(queries[:8]), k=k))  # caches the searcher
    t_index += t_warm
    t_query, out = _timed(lambda: layer(tf.constant(queries), k=k))
    run.index = layer
    return t_index, t_query, _ids_to_rows(out[1])
  return run


def exact(block_size: int = 256) -> RunFn:
  """``exact_top_k`` (strided group maximum, see exact.py); no index to build."""
  def run(db, queries, k):
    t_query, (_, nn) = _timed(lambda: exact_top_k(queries, db, k, block_size=block_size))
    return 0.0, t_query, nn
  return run


def _faiss():
  import faiss  # pylint: disable=g-import-not-at-top
  return faiss


def faiss_flat() -> RunFn:
  """faiss ``IndexFlatIP`` (exact, BLAS + heaps)."""
  def run(db, queries, k):
    faiss = _faiss()
    def build():
      ix = faiss.IndexFlatIP(db.shape[1])
      ix.add(db)
      return ix
    t_index, ix = _timed(build)
    t_query, (_, nn) = _timed(lambda: ix.search(queries, k))
    return t_index, t_query, nn.astype(np.int64)
  return run


def faiss_ivf(nlist: int = 2048, nprobe: int = 16, train_size: int = 200_000,
              seed: int = 0) -> RunFn:
  """faiss ``IndexIVFFlat`` (inner product), trained on a sample of the database."""
  def run(db, queries, k):
    faiss = _faiss()
    def build():
      quant = faiss.IndexFlatIP(db.shape[1])
      ix = faiss.IndexIVFFlat(quant, db.shape[1], min(nlist, len(db)),
                              faiss.METRIC_INNER_PRODUCT)
      rng = np.random.default_rng(seed)
      sample = db[rng.choice(len(db), min(train_size, len(db)), replace=False)]
      ix.train(sample)
      ix.add(db)
      return ix
    t_index, ix = _timed(build)
    ix.nprobe = nprobe
    t_query, (_, nn) = _timed(lambda: ix.search(queries, k))
    run.index = ix
    return t_index, t_query, nn.astype(np.int64)
  return run


def faiss_hnsw(m: int = 32, ef_construction: int = 64, ef_search: int = 64) -> RunFn:
  """faiss ``IndexHNSWFlat`` (inner product)."""
  def run(db, queries, k):
    faiss = _faiss()
    def build():
      ix = faiss.IndexHNSWFlat(db.shape[1], m, faiss.METRIC_INNER_PRODUCT)
      ix.hnsw.efConstruction = ef_construction
      ix.add(db)
      return ix
    t_index, ix = _timed(build)
    ix.hnsw.efSearch = ef_search
    t_query, (_, nn) = _timed(lambda: ix.search(queries, k))
    run.index = ix
    return t_index, t_query, nn.astype(np.int64)
  return run


def drop_self(neighbors: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
  """[Q, >=k+1] results → [Q, k] with each query's own row removed (else the last)."""
  neighbors = np.asarray(neighbors)
  is_self = neighbors == query_ids[:, None]
  no_self = ~is_self.any(axis=1)
  is_self[no_self, -1] = True            # nothing to drop: drop the last result instead
  keep = ~is_self
  keep &= np.cumsum(keep, axis=1) <= k
  return neighbors[keep].reshape(len(neighbors), k)


def tie_aware_recall(approx: np.ndarray, exact_scores_kth: np.ndarray, db: np.ndarray,
                     queries: np.ndarray, tol: float = 1e-5) -> float:
  """Share of approximate results scoring at least the exact k-th score (minus tol).

  Equals recall@k vs exact when there are no ties; counts an equally good duplicate
  (identical cases have identical embeddings) as a hit instead of a miss.
  """
  s = np.einsum("qd,qkd->qk", queries, db[approx])
  return float(np.mean(s >= exact_scores_kth[:, None] - tol))


def run_methods(embeddings: Dict[str, np.ndarray], query_ids: np.ndarray,
                sets: Sequence[frozenset], methods: Sequence[Method], k: int = 10,
                log: Callable[[str], None] = print) -> Tuple[List[dict], Dict[str, np.ndarray]]:
  """Runs each method on its aggregation's embeddings; returns one metrics row each.

  Args:
    embeddings: aggregation name → float32 [N, D] unit case embeddings.
    query_ids: int [Q] database rows used as queries.
    sets: element set of every row (rank_dice@k).
    methods: rows to run, in order.
    k: cut-off; every method retrieves k+1 so the query itself can be dropped.
    log: progress printer.

  Returns:
    (rows, exact) where rows have search, aggregation, index_seconds, query_seconds, qps, rank_dice@10,
    recall@10 (vs exact, strict overlap) and recall@10_ties (equal-score hits counted),
    and exact maps aggregation → exact top-k [Q, k] with the query dropped. Each method's
    ``run`` keeps what it built on ``run.index`` (for sweeps).
  """
  query_ids = np.asarray(query_ids, np.int64)
  truth: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
  rows = []
  for m in methods:
    db = embeddings[m.aggregation]
    queries = db[query_ids]
    if m.aggregation not in truth:
      _, nn = exact_top_k(queries, db, k + 1)
      exact_nn = drop_self(nn, query_ids, k)
      kth = np.einsum("qd,qd->q", queries, db[exact_nn[:, -1]])
      truth[m.aggregation] = (exact_nn, kth)
    log(f"running {m.search} ({m.aggregation}) on {len(queries):,d} queries × "
        f"{len(db):,d} items")
    t_index, t_query, nn = m.run(db, queries, k + 1)
    gc.collect()
    nn = np.asarray(nn, np.int64)
    top = drop_self(nn, query_ids, k)
    exact_top, kth = truth[m.aggregation]
    row = {
        "search": m.search, "aggregation": m.aggregation,
        "index_seconds": float(t_index), "query_seconds": float(t_query),
        "qps": float(len(queries) / max(t_query, 1e-9)),
        "rank_dice@10": float(metrics.rank_dice_at_k(nn, sets, k, query_ids=query_ids)),
        "recall@10": float(metrics.recall_vs_exact(top, exact_top, k)),
        "recall@10_ties": tie_aware_recall(top, kth, db, queries),
    }
    log("  " + ", ".join(f"{c}={v:.4g}" if isinstance(v, float) else f"{c}={v}"
                         for c, v in row.items()))
    rows.append(row)
  return rows, {a: t[0] for a, t in truth.items()}


def scann_sweep(layer: index_lib.ScaNN, queries: np.ndarray, query_ids: np.ndarray, k: int,
                settings: Sequence[Tuple[int, int]], exact_top: np.ndarray) -> List[dict]:
  """Recall/QPS of a built ScaNN layer at several (leaves_to_search, reorder) settings.

  The TF searcher op takes both knobs per call, so the index is not rebuilt.
  """
  from scann import scann_ops  # pylint: disable=g-import-not-at-top
  searcher = scann_ops.searcher_from_module(layer._serialized_searcher)  # pylint: disable=protected-access
  q = tf.constant(queries)
  out = []
  for leaves, reorder in settings:
    t, res = _timed(lambda: searcher.search_batched_parallel(
        q, final_num_neighbors=k + 1, pre_reorder_num_neighbors=reorder,
        leaves_to_search=leaves))
    top = drop_self(res.indices.numpy().astype(np.int64), query_ids, k)
    out.append(dict(method="scann", setting=f"leaves={leaves},reorder={reorder}",
                    params=(leaves, reorder),
                    qps=len(queries) / t, recall=metrics.recall_vs_exact(top, exact_top, k)))
  return out


def faiss_sweep(kind: str, ix, queries: np.ndarray, query_ids: np.ndarray, k: int,
                values: Sequence[int], exact_top: np.ndarray) -> List[dict]:
  """Recall/QPS of a built faiss IVF (nprobe) or HNSW (efSearch) index at several values."""
  out = []
  for v in values:
    if kind == "ivf":
      ix.nprobe = v
    else:
      ix.hnsw.efSearch = v
    t, (_, nn) = _timed(lambda: ix.search(queries, k + 1))
    top = drop_self(nn.astype(np.int64), query_ids, k)
    out.append(dict(method=f"faiss {kind}", setting=f"{'nprobe' if kind == 'ivf' else 'efSearch'}={v}",
                    qps=len(queries) / t, recall=metrics.recall_vs_exact(top, exact_top, k)))
  return out


def plot_sweep(points: Sequence[dict], rows: Sequence[dict], path: str,
               title: str = "recall@10 vs exact against QPS") -> str:
  """Writes a recall-vs-QPS PNG: sweep curves per method plus the table's rows."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 5))
  for name in sorted({p["method"] for p in points}):
    pts = sorted((p for p in points if p["method"] == name), key=lambda p: p["qps"])
    ax.plot([p["qps"] for p in pts], [p["recall"] for p in pts], "o-", label=name)
  for r in rows:
    if r["aggregation"] == "mean":
      ax.scatter([r["qps"]], [r["recall@10"]], marker="x", color="black")
      ax.annotate(r["search"].split(" (")[0].split(" [")[0], (r["qps"], r["recall@10"]),
                  fontsize=7,
                  textcoords="offset points", xytext=(3, 3))
  ax.set_xscale("log")
  ax.set_xlabel("queries per second (log)")
  ax.set_ylabel("recall@10 vs exact")
  ax.set_title(title)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def clustered_embeddings(num_items: int, dim: int = 64, num_clusters: int = 2000,
                         noise: float = 0.7, seed: int = 0
                         ) -> Tuple[np.ndarray, List[frozenset]]:
  """Clustered random unit vectors and a set per item (for development without JADER).

  Item i's set is {its cluster} ∪ three tokens drawn near it, so nearer items share more.

  Returns:
    (float32 [num_items, dim] unit rows, list of frozensets of ints).
  """
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(num_clusters, dim)).astype(np.float32)
  assign = rng.integers(0, num_clusters, num_items)
  x = centers[assign] + noise * rng.normal(size=(num_items, dim)).astype(np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  extra = (assign[:, None] * 10 + rng.integers(0, 10, (num_items, 3))) + num_clusters
  sets = [frozenset([int(a), *map(int, e)]) for a, e in zip(assign, extra)]
  return x.astype(np.float32), sets


def jader_embeddings(work_dir, num_cases: int, aggregations: Sequence[str],
                     jader_dir: Optional[str] = None, dim: int = 64, epochs: int = 5,
                     min_count: int = 5, seed: int = 0, log: Callable[[str], None] = print
                     ) -> Tuple[Dict[str, np.ndarray], List[frozenset], dict]:
  """JADER cases → CBOW element vectors → unit case embeddings per aggregation.

  Args:
    work_dir: folder for the generated synthetic release (reused when already there).
    num_cases: cases to generate when ``jader_dir`` is None (the talk: 692,821).
    aggregations: "mean" and/or "max".
    jader_dir: an existing release (real PMDA CSVs or synthetic) instead.
    dim, epochs, min_count, seed: CBOW settings.
    log: progress printer.

  Returns:
    (aggregation → float32 [num_cases, dim], element-id set per case, info dict).
  """
  import pathlib  # pylint: disable=g-import-not-at-top
  from tfrs_emb.data import jader  # pylint: disable=g-import-not-at-top
  from tfrs_emb.data import synthetic_jader  # pylint: disable=g-import-not-at-top
  from tfrs_emb.models import case_encoder  # pylint: disable=g-import-not-at-top
  from tfrs_emb.models import cbow  # pylint: disable=g-import-not-at-top
  info = {"source": "jader"}
  t0 = time.perf_counter()
  if jader_dir is None:
    release = pathlib.Path(work_dir) / f"jader_synthetic_{num_cases}_seed{seed}"
    marker = release / ".complete"
    if not marker.exists():
      log(f"writing a synthetic JADER release of {num_cases:,d} cases to {release}")
      synthetic_jader.write_release(release, num_cases=num_cases, seed=seed)
      marker.write_text("ok\n")
    else:
      log(f"reusing the synthetic JADER release in {release}")
    info["release"] = f"synthetic, {num_cases} cases, seed {seed}"
  else:
    release = pathlib.Path(jader_dir)
    info["release"] = str(release)
  info["generate_seconds"] = time.perf_counter() - t0
  t0 = time.perf_counter()
  cases = jader.load_cases(release, verbose=True)
  info["load_seconds"] = time.perf_counter() - t0
  log(cases.summary())
  result = cbow.train_cbow(cases.indptr, cases.indices, cases.vocab, dim=dim, epochs=epochs,
                           min_count=min_count, seed=seed, verbose=0)
  log(f"CBOW: {len(result.vocab):,d} elements, {result.train_seconds:.1f} s, "
      f"{result.tokens_per_s:,.0f} tokens/s")
  info.update(cbow_seconds=result.train_seconds, cbow_vocab=len(result.vocab),
              num_cases=len(cases))
  case_rows = case_encoder.map_elements(cases.vocab, result.vocab)[cases.indices]
  embeddings = {a: case_encoder.case_embeddings(cases.indptr, case_rows, result.vectors, a)
                for a in aggregations}
  info["_cases"], info["_cbow"] = cases, result     # for export_case_indexes (not JSON)
  return embeddings, cases.element_sets(), info


def export_case_indexes(export_dir, cases, cbow_result, embeddings: np.ndarray,
                        aggregation: str, scann_layer: Optional[index_lib.ScaNN],
                        probe_rows: Sequence[int], k: int = 10) -> dict:
  """Exports case elements → top-k case ids SavedModels (CaseEncoder + BruteForce / ScaNN).

  Writes ``export_dir/jader_bruteforce/1`` and, when ``scann_layer`` is given (its build
  and search settings are reused), ``export_dir/jader_scann/1``. Signature input:
  ``elements`` tf.string [B, max_len] ("" padded, ``kind:name`` strings); output ``ids``
  (識別番号) and ``scores``.

  Returns:
    {name: {"path", "probe_ids", "probe_scores"}} computed in memory for ``probe_rows``
    (cases used as queries), to compare with the reloaded models.
  """
  import pathlib  # pylint: disable=g-import-not-at-top
  from tfrs_emb.models import case_encoder  # pylint: disable=g-import-not-at-top
  encoder = case_encoder.CaseEncoder(cbow_result.vocab, cbow_result.vectors,
                                     aggregation=aggregation)
  spec = tf.TensorSpec([None, None], tf.string, name="elements")
  probes = [cases.elements(int(i)) for i in probe_rows]
  width = max(len(p) for p in probes)
  elements = tf.constant([p + [""] * (width - len(p)) for p in probes])
  out = {}
  indexes = {"jader_bruteforce": index_lib.build_brute_force(
      embeddings, cases.ids, query_model=encoder, k=k)}
  if scann_layer is not None:
    cfg = scann_layer.get_config()
    build_kw = {key: cfg[key] for key in (
        "num_leaves", "num_leaves_to_search", "num_reordering_candidates",
        "dimensions_per_block", "anisotropic_quantization_threshold", "training_iterations",
        "training_sample_size")}
    layer = index_lib.build_scann(embeddings, cases.ids, query_model=encoder, k=k,
                                  **build_kw)
    layer.set_search_params(cfg.get("search_leaves_to_search"), cfg.get("search_reorder"))
    indexes["jader_scann"] = layer
  for name, index in indexes.items():
    scores, ids = index(elements)
    path = index_lib.export_index(index, pathlib.Path(export_dir) / name,
                                  input_signature=spec, version=1)
    out[name] = {"path": str(path), "probe_elements": [list(p) for p in probes],
                 "probe_ids": np.asarray(ids.numpy(), bytes).astype(str).tolist(),
                 "probe_scores": scores.numpy().tolist()}
  return out


def _duration(seconds: float) -> str:
  if seconds < 1:
    return f"{seconds * 1000:.1f} ms"
  if seconds < 60:
    return f"{seconds:.2f} s"
  return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def report_markdown(payload: dict) -> str:
  """report.md: the talk's table beside ours, and the issue's checks with figures."""
  from tfrs_emb import reporting  # pylint: disable=g-import-not-at-top
  rows = payload["rows"]
  ours = [dict(r, index=_duration(r["index_seconds"]), query=_duration(r["query_seconds"]))
          for r in rows]
  talk = [dict(r, index=_duration(r["index_seconds"]), query=_duration(r["query_seconds"]))
          for r in payload["talk_rows"]]
  lines = [
      "# Retrieval benchmark (SPEC.md experiment 4)", "",
      f"{payload['num_items']:,d} cases, {payload['num_queries']:,d} queries, "
      f"top-{payload['k']} (query excluded); data: {payload['data']}.", "",
      "## The talk (Future Tech Night #17, real JADER, its CPU)", "",
      reporting.markdown_table(talk, ["search", "aggregation", "index", "query", "score"]), "",
      "## Ours (one run, same queries for every row)", "",
      reporting.markdown_table(ours, ["search", "aggregation", "index", "query", "qps",
                                      "rank_dice@10", "recall@10", "recall@10_ties"],
                               digits=4), "",
      "`score` / `rank_dice@10`: SPEC.md rank_dice@10 over element sets. `recall@10`: "
      "overlap with the exact top-10 of the same embeddings; `recall@10_ties` also counts "
      "a result scoring as high as the exact 10th (identical cases tie).", "",
  ]
  brute = next((r for r in rows if r["search"] == "bruteforce" and r["aggregation"] == "mean"),
               None)
  checks = []
  tuned = [r for r in rows if r["search"].startswith("scann tuned")]
  if brute and tuned:
    t = tuned[0]
    checks.append(
        f"- tuned ScaNN vs TFRS BruteForce (mean): {brute['query_seconds'] / t['query_seconds']:.1f}× "
        f"faster, recall@10 {t['recall@10']:.4f}, rank_dice@10 {t['rank_dice@10']:.4f} vs "
        f"{brute['rank_dice@10']:.4f} (diff {t['rank_dice@10'] - brute['rank_dice@10']:+.4f}).")
  ex = next((r for r in rows if r["search"].startswith("bruteforce exact_top_k")), None)
  flat = next((r for r in rows if r["search"] == "faiss IndexFlatIP"), None)
  if ex and flat:
    checks.append(f"- exact_top_k {_duration(ex['query_seconds'])} vs faiss IndexFlatIP "
                  f"{_duration(flat['query_seconds'])} "
                  f"({flat['query_seconds'] / ex['query_seconds']:.2f}× faster).")
  if brute and ex:
    checks.append(f"- exact_top_k vs TFRS BruteForce: "
                  f"{brute['query_seconds'] / ex['query_seconds']:.1f}× faster, same results "
                  f"(recall@10 {ex['recall@10']:.4f}).")
  ann = [r for r in rows if r["search"].startswith(("scann", "faiss IVF", "faiss HNSW"))]
  if ann:
    checks.append("- approximate rows at recall@10 ≥ 0.95, fastest first: " + "; ".join(
        f"{r['search']} {r['qps']:,.0f} QPS ({r['recall@10']:.3f})"
        for r in sorted(ann, key=lambda r: -r["qps"]) if r["recall@10"] >= 0.95) + ".")
  if payload.get("sweep"):
    checks.append("- sweep (recall_vs_qps.png): " + "; ".join(
        f"{p['method']} {p['setting']} {p['qps']:,.0f} QPS @ {p['recall']:.3f}"
        for p in payload["sweep"]) + ".")
  lines += ["## Checks", ""] + checks + [
      "", f"Total run time {_duration(payload['total_seconds'])} on a 2-core machine shared "
      "with other jobs (timings are inflated by contention, ratios within one run hold "
      "better).", ""]
  return "\n".join(lines)
