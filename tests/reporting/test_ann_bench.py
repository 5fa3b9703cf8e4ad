"""The retrieval bench report: rows by method key, sweep verdicts, conditions, plot."""

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
  sweep: list
  sweep_table: list
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
  r = {"method": method, "search": search, "aggregation": "mean", "index_seconds": 1.0,
       "query_seconds": 100 / qps, "qps": qps, "rank_dice@10": 0.4, "recall@10": recall,
       "recall@10_ties": recall}
  if serving:
    r.update({"serving_qps": serving, "serving_query_seconds": 100 / serving,
              "serving_recall@10": recall, "serving_same_ids": 1.0})
  return r


def _result():
  rows = [_row("bruteforce_mean", "bruteforce", 100.0, 1.0, serving=90.0),
          _row("scann_tuned_mean", "scann tuned [leaves=20,reorder=40]", 20_000.0, 0.96,
               serving=18_000.0),
          _row("exact_mean", "bruteforce exact_top_k (tfrs_emb)", 800.0, 1.0),
          _row("faiss_flat_mean", "faiss IndexFlatIP", 600.0, 1.0)]
  sweep = [dict(method="scann", setting="a", qps=30_000.0, recall=0.94),
           dict(method="scann", setting="b", qps=10_000.0, recall=0.98),
           dict(method="faiss ivf", setting="c", qps=5_000.0, recall=0.99)]
  table = [dict(method="scann", measure="recall", **{"qps@0.95": 24_000.0,
                                                      "qps@0.99": math.nan}),
           dict(method="faiss ivf", measure="recall", **{"qps@0.95": 5_000.0,
                                                         "qps@0.99": 5_000.0})]
  return _Result(config={"recall_targets": [0.95, 0.99], "bruteforce_batch": 1024,
                           "scann_batch": 4096, "timing_rounds": 5}, data={},
                 num_items=1000, num_queries=100, k=10, rows=rows, sweep=sweep,
                 sweep_table=table, tuning=[], tuned_choice=dict(setting="leaves=20,reorder=40",
                                                                 recall=0.97, qps=21_000.0,
                                                                 qps_median=19_000.0),
                 tuned_build=dict(num_leaves=2000, scoring="ah"), config_search=[], config_front=[], exports={}, conditions_before=COND,
                 conditions_after=dict(COND, load_average_1m=1.5),
                 threads={"faiss_omp": 2}, total_seconds=75.0)


def test_report_states_ratios_verdicts_and_measured_conditions():
  text = ann_bench.report_markdown(_result())
  assert "200.0× (20,000 vs 100 QPS)" in text                    # tuned vs BruteForce
  assert "200.0× (18,000 vs 90 QPS)" in text                     # through SavedModels
  assert "1.33× its QPS" in text                                 # exact vs faiss flat
  assert "recall qps@0.95: ScaNN 24,000 vs best faiss (faiss ivf) 5,000 → 4.80×" in text
  assert "recall qps@0.99: ScaNN nan vs best faiss (faiss ivf) 5,000 → n/a" in text
  assert "load average (1 min) 0.50 before, 1.50 after" in text
  assert "1 min 15 s" in text and "'faiss_omp': 2" in text
  assert "- tuned ScaNN build: {'num_leaves': 2000, 'scoring': 'ah'}." in text
  assert "21,000 QPS fastest run, 19,000 median: the choice compares medians" in text


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
