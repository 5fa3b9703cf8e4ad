"""The retrieval bench report: rows by method key, ratios of medians, budgets and
verdicts, conditions, plot."""

import dataclasses
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg

from tfrs_emb.reporting import ann_bench

COND = {"load_average_1m": 0.5, "usable_cpus": 2, "cpu_count": 2, "blas_threads": {"openblas": 2}}


@dataclasses.dataclass
class _Result:
  config: dict
  data: dict
  num_items: int
  num_queries: int
  k: int
  rows: list
  bruteforce_speedup: dict
  budgets: dict
  peer_search: list
  kept_builds: list
  sweep: list
  sweep_table: list
  verdicts: list
  tuning: list
  tuned_choice: dict
  tuned_build: dict
  config_search: list
  config_front: list
  exports: dict
  conditions_before: dict
  conditions_after: dict
  threads: dict
  total_seconds: float
  talk_rows: tuple = ()


def _row(method, search, qps, recall, serving=None):
  """A row whose fastest run is twice its median (ratios must come from the medians)."""
  r = {"method": method, "search": search, "aggregation": "mean", "index_seconds": 1.0,
       "query_seconds": 100 / qps, "qps": 2 * qps, "qps_median": qps, "rank_dice@10": 0.4,
       "recall@10": recall, "recall@10_ties": recall}
  if serving:
    r.update({"serving_qps": 2 * serving, "serving_qps_median": serving,
              "serving_query_seconds": 100 / serving, "serving_recall@10": recall,
              "serving_same_ids": 1.0})
  return r


def _result():
  rows = [_row("bruteforce_mean", "bruteforce", 100.0, 1.0, serving=90.0),
          _row("scann_tuned_mean", "scann tuned [leaves=20,reorder=40]", 20_000.0, 0.96,
               serving=18_000.0),
          _row("exact_mean", "bruteforce exact_top_k (tfrs_emb)", 800.0, 1.0),
          _row("faiss_flat_mean", "faiss IndexFlatIP", 600.0, 1.0)]
  sweep = [dict(method="scann", setting="a", qps=30_000.0, qps_median=28_000.0, recall=0.94),
           dict(method="scann", setting="b", qps=10_000.0, qps_median=9_000.0, recall=0.98),
           dict(method="faiss ivf", setting="c", qps=5_000.0, qps_median=4_000.0,
                recall=0.99)]
  verdicts = [dict(target=0.95, best_peer="faiss ivf", ours_setting="b", ours_recall=0.98,
                   ours_qps=9_000.0, peer_setting="c", peer_recall=0.99, peer_qps=4_000.0,
                   ratio="2.25× (1.90–2.60, 5 rounds)", ratio_median=2.25, ratio_min=1.9,
                   ratio_max=2.6, rounds=5, verdict="win"),
              dict(target=0.99, verdict="loss",
                   reason="scann reaches recall 0.99 at no validation setting")]
  table = [dict(method="scann", measure="recall", **{"qps@0.95": 24_000.0,
                                                      "qps@0.99": math.nan}),
           dict(method="faiss ivf", measure="recall", **{"qps@0.95": 5_000.0,
                                                         "qps@0.99": 5_000.0})]
  return _Result(config={"recall_targets": [0.95, 0.99], "bruteforce_batch": 1024,
                           "scann_batch": 4096, "timing_rounds": 5}, data={},
                 num_items=1000, num_queries=100, k=10, rows=rows,
                 bruteforce_speedup=dict(aggregation="mean", queries=2000, rounds=5,
                                         text="150.00× (120.00–180.00, 5 rounds)"),
                 budgets={"scann": {"builds": 4, "settings": 12},
                          "faiss ivf": {"builds": 4, "settings": 12}}, peer_search=[],
                 kept_builds=[dict(method="scann", build="1000 leaves", build_seconds=3.0),
                              dict(method="faiss ivf", build="nlist=2048",
                                   build_seconds=2.0)],
                 sweep=sweep, sweep_table=table, verdicts=verdicts, tuning=[], tuned_choice=dict(setting="leaves=20,reorder=40",
                                                                 recall=0.97, qps=21_000.0,
                                                                 qps_median=19_000.0),
                 tuned_build=dict(num_leaves=2000, scoring="ah"), config_search=[], config_front=[], exports={}, conditions_before=COND,
                 conditions_after=dict(COND, load_average_1m=1.5),
                 threads={"faiss_omp": 2}, total_seconds=75.0)


def test_report_states_ratios_verdicts_and_measured_conditions():
  text = ann_bench.report_markdown(_result())
  assert "200.0× (20,000 vs 100 QPS)" in text                    # tuned vs BruteForce
  assert "through the reloaded SavedModels 200.0×" in text       # medians, not fastest
  assert "same 2,000 evaluation queries: 150.00× (120.00–180.00, 5 rounds)" in text
  assert "1.33× its QPS" in text                                 # exact vs faiss flat
  assert "| scann | 4 | 12 |" in text and "| faiss ivf | nlist=2048 | 2.0000 |" in text
  assert ("| 0.9500 | b (0.9800, 9,000) | faiss ivf c (0.9900, 4,000) | "
          "2.25× (1.90–2.60, 5 rounds) | win |") in text
  assert "| 0.9900 |  |  | scann reaches recall 0.99 at no validation setting | loss |" in text
  assert "load average (1 min) 0.50 before, 1.50 after" in text
  assert "1 min 15 s" in text and "'faiss_omp': 2" in text
  assert "- tuned ScaNN build: {'num_leaves': 2000, 'scoring': 'ah'}." in text
  assert "(validation recall@10 0.9700, 19,000 QPS median)" in text


def test_plot_labels_are_legend_entries_not_text_on_the_data(tmp_path):
  result = _result()
  fig = ann_bench.plot_recall_vs_qps(result.sweep, result.rows, str(tmp_path / "p.png"))
  assert (tmp_path / "p.png").stat().st_size > 1000
  ax = fig.axes[0]
  assert not ax.texts                         # nothing written over the data
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  # 2 curves + 4 rows + 2 reloaded SavedModel markers, each once
  assert len(labels) == len(set(labels)) == 8
  renderer = FigureCanvasAgg(fig).get_renderer()
  legend_box = ax.get_legend().get_window_extent(renderer)
  assert legend_box.x0 >= ax.get_window_extent(renderer).x1   # beside the axes
