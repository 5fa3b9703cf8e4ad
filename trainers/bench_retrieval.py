"""BruteForce vs ScaNN vs faiss on JADER case embeddings (SPEC.md experiment 4).

python -m trainers.bench_retrieval --flagfile=configs/bench_retrieval.flags

Writes ``metrics.json`` (full config, rows, sweeps, ScaNN choices, machine conditions),
``report.md`` and ``recall_vs_qps.png`` under --output_dir and prints the report.
"""

import dataclasses
import pathlib
import time

from absl import app

from tfrs_emb import reporting
from tfrs_emb.experiments import bench_retrieval
from tfrs_emb.reporting import ann_bench
from trainers import flagdefs

flagdefs.define_config_flags(bench_retrieval.Config)


def _log(msg: str):
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv):
  del argv
  config = flagdefs.config_from_flags(bench_retrieval.Config)
  result = bench_retrieval.run(config, log=_log)
  out_dir = pathlib.Path(config.output_dir)
  reporting.write_json(out_dir / "metrics.json",
                       dict(experiment="bench_retrieval", **dataclasses.asdict(result)))
  report = ann_bench.report_markdown(result)
  reporting.write_text(out_dir / "report.md", report)
  if result.sweep:
    ann_bench.plot_recall_vs_qps(result.sweep, result.rows, str(out_dir / "recall_vs_qps.png"))
  _log(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'}")
  print(report)


if __name__ == "__main__":
  app.run(main)
