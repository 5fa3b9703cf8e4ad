"""Report and recall-vs-QPS plot of the retrieval benchmark (``experiments.bench_retrieval``).

Takes the benchmark result (any object with its attributes: rows, sweep, sweep_table, ...);
rows are found by their method key (``scann_tuned_mean``), never by display label.
"""

import math
from typing import Optional, Sequence

from tfrs_emb.reporting import figures
from tfrs_emb.reporting.conditions import describe_conditions
from tfrs_emb.reporting.tables import format_number
from tfrs_emb.reporting.tables import markdown_table

_MARKERS = "xs^vD*P<>ph"


def duration(seconds: float) -> str:
  """``69.2 ms``, ``3.14 s``, ``1 min 51 s``."""
  if seconds < 1:
    return f"{seconds * 1000:.1f} ms"
  if seconds < 60:
    return f"{seconds:.2f} s"
  return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def plot_recall_vs_qps(points: Sequence[dict], rows: Sequence[dict],
                       path: Optional[str] = None, aggregation: str = "mean",
                       title: str = "recall@10 vs exact against QPS"):
  """One sweep curve per method, the table's rows as distinct markers; PNG at ``path``.

  Every label is a legend entry beside the axes (no text on the data), so none overlap;
  rows are labelled by their short method key (``scann_tuned_mean``), not the long display
  label, so the legend stays narrow.

  Returns:
    The matplotlib ``Figure`` (pyplot's global state is not used).
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(10, 5.5))
  ax = fig.add_subplot()
  for name in dict.fromkeys(p["method"] for p in points):
    pts = sorted((p for p in points if p["method"] == name), key=lambda p: p["qps"])
    ax.plot([p["qps"] for p in pts], [p["recall"] for p in pts], "o-", label=f"{name} sweep")
  shown = [r for r in rows if r["aggregation"] == aggregation]
  for i, r in enumerate(shown):
    ax.scatter([r["qps"]], [r["recall@10"]], marker=_MARKERS[i % len(_MARKERS)],
               color="black", s=40, label=r["method"])
    if "serving_qps" in r:
      ax.scatter([r["serving_qps"]], [r["serving_recall@10"]],
                 marker=_MARKERS[i % len(_MARKERS)], color="tab:red", s=40,
                 label=f"{r['method']} (reloaded SavedModel)")
  ax.set_xscale("log")
  ax.set_xlabel("queries per second (log)")
  ax.set_ylabel("recall@10 vs exact")
  ax.set_title(title)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
  if path:
    figures.apply_cjk_font(fig).savefig(path, dpi=120, bbox_inches="tight")  # the box includes the legend
  return fig


def _row(rows: Sequence[dict], key: str) -> Optional[dict]:
  return next((r for r in rows if r["method"] == key), None)


def _checks(result) -> list:
  rows, lines = result.rows, []
  brute, tuned = _row(rows, "bruteforce_mean"), _row(rows, "scann_tuned_mean")
  if brute and tuned:
    lines.append(
        f"- tuned ScaNN vs TFRS BruteForce (mean): in process "
        f"{tuned['qps'] / brute['qps']:.1f}× ({tuned['qps']:,.0f} vs {brute['qps']:,.0f} QPS); "
        f"through the reloaded SavedModels {tuned['serving_qps'] / brute['serving_qps']:.1f}× "
        f"({tuned['serving_qps']:,.0f} vs {brute['serving_qps']:,.0f} QPS); recall@10 "
        f"{tuned['recall@10']:.4f} (reloaded {tuned['serving_recall@10']:.4f}); rank_dice@10 "
        f"{tuned['rank_dice@10']:.4f} vs {brute['rank_dice@10']:.4f}.")
  ex, flat = _row(rows, "exact_mean"), _row(rows, "faiss_flat_mean")
  if ex and flat:
    lines.append(f"- exact_top_k {duration(ex['query_seconds'])} vs faiss IndexFlatIP "
                 f"{duration(flat['query_seconds'])}: {ex['qps'] / flat['qps']:.2f}× its QPS; "
                 f"recall@10 {ex['recall@10']:.4f} / {flat['recall@10']:.4f} (ties "
                 f"{ex['recall@10_ties']:.4f} / {flat['recall@10_ties']:.4f}).")
  served = [r for r in rows if "serving_qps" in r]
  if served:
    lines.append("- reloaded SavedModel / in process (QPS ratio, share of identical ids): "
                 + "; ".join(f"{r['method']} {r['serving_qps'] / r['qps']:.2f}×, "
                             f"{r['serving_same_ids']:.4f}" for r in served) + ".")
  if result.tuned_build:
    lines.append(f"- tuned ScaNN build: {result.tuned_build}.")
  if result.tuned_choice:
    c = result.tuned_choice
    lines.append(f"- tuned ScaNN search knobs chosen on the validation queries: "
                 f"{c['setting']} (validation recall@10 {c['recall']:.4f}, "
                 f"{c['qps']:,.0f} QPS fastest run, {c['qps_median']:,.0f} median: "
                 "the choice compares medians).")
  return lines


def _sweep_lines(result, targets: Sequence[float]) -> list:
  """The sweep table and, per recall measure and target, best ScaNN against best faiss."""
  cols = [f"qps@{t:g}" for t in targets]
  lines = [markdown_table(result.sweep_table, ["method", "measure"] + cols), ""]
  for measure in dict.fromkeys(r["measure"] for r in result.sweep_table):
    table = [r for r in result.sweep_table if r["measure"] == measure]
    scann = next((r for r in table if r["method"] == "scann"), None)
    faiss = [r for r in table if r["method"].startswith("faiss")]
    if scann is None or not faiss:
      continue
    for col in cols:
      reached = [(r[col], r["method"]) for r in faiss if not math.isnan(r[col])]
      if not reached:
        lines.append(f"- {measure} {col}: no faiss curve reaches it; ScaNN "
                     f"{format_number(scann[col])}")
        continue
      best, name = max(reached)
      verdict = "n/a (the ScaNN curve does not reach it)" if math.isnan(scann[col]) else (
          f"{scann[col] / best:.2f}×")
      lines.append(f"- {measure} {col}: ScaNN {format_number(scann[col])} vs best faiss "
                   f"({name}) {format_number(best)} → {verdict}")
  return lines + [""]


def report_markdown(result) -> str:
  """report.md: the talk's table beside ours, the sweeps, the ScaNN choices, the checks."""
  targets = result.config["recall_targets"]
  rows = [dict(r, index=duration(r["index_seconds"]), query=duration(r["query_seconds"]),
               reloaded=duration(r["serving_query_seconds"]) if "serving_qps" in r else "n/a")
          for r in result.rows]
  talk = [dict(r, index=duration(r["index_seconds"]), query=duration(r["query_seconds"]))
          for r in result.talk_rows]
  lines = [
      "# Retrieval benchmark (SPEC.md experiment 4)", "",
      f"{result.num_items:,d} cases, {result.num_queries:,d} queries, top-{result.k} (query "
      f"excluded); data: {result.data}.", "",
      f"Machine: {describe_conditions(result.conditions_before, result.conditions_after)}; "
      f"search threads {result.threads}. Total run time {duration(result.total_seconds)}.",
      "",
      "## The talk (Future Tech Night #17, real JADER, its CPU)", "",
      markdown_table(talk, ["search", "aggregation", "index", "query", "score"]), "",
      "## Ours (one run, same queries for every row)", "",
      markdown_table(rows, ["search", "aggregation", "index", "query", "qps", "spread",
                            "reloaded", "serving_qps", "serving_spread", "rank_dice@10",
                            "recall@10", "recall@10_ties"]),
      "",
      "`score` / `rank_dice@10`: SPEC.md rank_dice@10 over element sets. `recall@10`: "
      "overlap with the exact top-10 of the same embeddings; `recall@10_ties` also counts "
      "a result scoring as high as the exact 10th (identical cases tie). `reloaded` / "
      "`serving_qps`: the row's TFRS layer exported as a SavedModel, reloaded and its "
      "`serving_default` called on the same queries in the same batches as in process "
      f"(BruteForce {result.config['bruteforce_batch']:,d}, ScaNN "
      f"{result.config['scann_batch']:,d} queries; n/a: not a TFRS layer). Timing: a "
      f"search under 5 s runs {result.config['timing_rounds']} times, interleaved with what "
      "it is compared with (a row with its reloaded SavedModel; the points of a validation grid, "
      "of the config search and of the sweep among themselves); `qps` is the fastest run, "
      "`spread` the slowest / fastest run.", "",
  ]
  if result.sweep_table:
    lines += ["## Sweep: QPS at recall@10 targets (evaluation queries, interpolated on "
              "each curve's Pareto front; nan = not reached; measure `recall` = strict "
              "overlap with the exact top-10, `recall_ties` = tie-aware)", ""] + _sweep_lines(
                  result, targets)
    lines += [markdown_table(result.sweep, ["method", "setting", "qps", "qps_median", "spread",
                                            "recall", "recall_ties"]), ""]
  if result.config_front:
    lines += ["## ScaNN build-configuration search (validation queries): Pareto front", "",
              markdown_table(result.config_front, [
                  "num_leaves", "scoring", "dimensions_per_block", "anisotropic_quantization_threshold",
                  "training_sample_size", "spherical", "quantize_centroids",
                  "leaves_to_search", "reorder", "build_seconds", "qps", "spread", "recall",
                  "recall_ties"]), "",
              f"{len(result.config_search)} points searched.", ""]
  return "\n".join(lines + ["## Checks", ""] + _checks(result) + [""])
