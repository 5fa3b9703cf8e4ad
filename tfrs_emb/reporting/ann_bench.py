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
    pts = sorted((p for p in points if p["method"] == name), key=lambda p: p["qps_median"])
    ax.plot([p["qps_median"] for p in pts], [p["recall"] for p in pts], "o-",
            label=f"{name} sweep")
  shown = [r for r in rows if r["aggregation"] == aggregation]
  for i, r in enumerate(shown):
    ax.scatter([r["qps_median"]], [r["recall@10"]], marker=_MARKERS[i % len(_MARKERS)],
               color="black", s=40, label=r["method"])
    if "serving_qps" in r:
      ax.scatter([r["serving_qps_median"]], [r["serving_recall@10"]],
                 marker=_MARKERS[i % len(_MARKERS)], color="tab:red", s=40,
                 label=f"{r['method']} (reloaded SavedModel)")
  ax.set_xscale("log")
  ax.set_xlabel("queries per second, median of interleaved runs (log)")
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
  """Findings in words; every ratio is of medians (``qps_median``: median of a row's runs)."""
  rows, lines = result.rows, []
  brute, tuned = _row(rows, "bruteforce_mean"), _row(rows, "scann_tuned_mean")
  speedup = result.bruteforce_speedup
  if speedup:
    lines.append(
        f"- tuned ScaNN vs TFRS BruteForce ({speedup['aggregation']}), both searched "
        f"{speedup['rounds']} times interleaved on the same {speedup['queries']:,d} "
        f"evaluation queries: {speedup['text']} speed-up (median ratio, min–max of the "
        "per-round ratios).")
  if brute and tuned:
    lines.append(
        f"- tuned ScaNN vs TFRS BruteForce rows (mean, medians): in process "
        f"{tuned['qps_median'] / brute['qps_median']:.1f}× ({tuned['qps_median']:,.0f} vs "
        f"{brute['qps_median']:,.0f} QPS); through the reloaded SavedModels "
        f"{tuned['serving_qps_median'] / brute['serving_qps_median']:.1f}×; recall@10 "
        f"{tuned['recall@10']:.4f} (reloaded {tuned['serving_recall@10']:.4f}); rank_dice@10 "
        f"{tuned['rank_dice@10']:.4f} vs {brute['rank_dice@10']:.4f}.")
  ex, flat = _row(rows, "exact_mean"), _row(rows, "faiss_flat_mean")
  if ex and flat:
    lines.append(f"- exact_top_k vs faiss IndexFlatIP (medians): "
                 f"{ex['qps_median'] / flat['qps_median']:.2f}× its QPS; recall@10 "
                 f"{ex['recall@10']:.4f} / {flat['recall@10']:.4f} (ties "
                 f"{ex['recall@10_ties']:.4f} / {flat['recall@10_ties']:.4f}).")
  served = [r for r in rows if "serving_qps" in r]
  if served:
    lines.append("- reloaded SavedModel / in process (median QPS ratio, share of identical "
                 "ids): " + "; ".join(f"{r['method']} "
                                      f"{r['serving_qps_median'] / r['qps_median']:.2f}×, "
                                      f"{r['serving_same_ids']:.4f}" for r in served) + ".")
  if result.tuned_build:
    lines.append(f"- tuned ScaNN build: {result.tuned_build}.")
  if result.tuned_choice:
    c = result.tuned_choice
    lines.append(f"- tuned ScaNN search knobs chosen on the validation queries: "
                 f"{c['setting']} (validation recall@10 {c['recall']:.4f}, "
                 f"{c['qps_median']:,.0f} QPS median).")
  return lines


def _verdict_rows(verdicts: Sequence[dict]) -> list:
  """The verdict table's rows (a side reaching no target shows the reason)."""
  return [dict(v, ours=f"{v['ours_setting']} ({v['ours_recall']:.4f}, "
                       f"{format_number(v['ours_qps'])})" if "ratio" in v else "",
               peer=f"{v['best_peer']} {v['peer_setting']} ({v['peer_recall']:.4f}, "
                    f"{format_number(v['peer_qps'])})" if "ratio" in v else "",
               ratio=v.get("ratio", v.get("reason", "")))
          for v in verdicts]


def _sweep_lines(result, targets: Sequence[float]) -> list:
  """Budgets, kept builds, the QPS-at-recall table and the verdicts."""
  cols = [f"qps@{t:g}" for t in targets]
  budgets = [dict(method=name, **b) for name, b in result.budgets.items()]
  return [
      "Budgets (equal for every method, checked before the run): build configurations "
      "searched on the validation queries, and search settings per build (the same "
      "settings are the evaluation sweep).", "",
      markdown_table(budgets, ["method", "builds", "settings"]), "",
      "Kept builds (fastest median QPS at the target recall on the validation queries):", "",
      markdown_table(result.kept_builds, ["method", "build", "build_seconds"]), "",
      markdown_table(result.sweep_table, ["method", "measure"] + cols), "",
      "Verdicts: ScaNN vs the best peer at each recall target; each side's setting is the "
      "validation point fastest reaching the target, the best peer the peer fastest there "
      "on validation; ratio = ScaNN QPS / peer QPS from their interleaved evaluation runs "
      "(median, min–max of per-round ratios); win / loss when the range lies above / "
      "below 1, tie otherwise. Cells: setting (evaluation recall@10, median QPS).", "",
      markdown_table(_verdict_rows(result.verdicts),
                     ["target", "ours", "peer", "ratio", "verdict"]), ""]


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
      markdown_table(rows, ["search", "aggregation", "index", "query", "qps_median", "qps",
                            "spread", "reloaded", "serving_qps_median", "serving_spread",
                            "rank_dice@10",
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
      "of the config search and of the sweep among themselves); `qps_median` is the "
      "median run (every ratio below is of medians), `qps` the fastest run, `spread` the "
      "slowest / fastest run.", "",
  ]
  if result.sweep_table:
    lines += ["## Equal-budget sweep: median QPS at recall@10 targets (evaluation "
              "queries, interpolated on each curve's Pareto front; nan = not reached; "
              "measure `recall` = strict overlap with the exact top-10, `recall_ties` = "
              "tie-aware)", ""] + _sweep_lines(result, targets)
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
