"""BruteForce vs ScaNN vs faiss on the case embeddings of a jader_w2v run (SPEC.md
experiment 4).

  python -m trainers.jader_w2v --flagfile=configs/jader_w2v_full.flags    # the run, first
  python -m trainers.bench_retrieval --flagfile=configs/bench_retrieval.flags

--jader_run names the run folder whose release and element vectors are searched; with
--jader_flagfile=FILE the bench first runs jader_w2v with the config of that flagfile (the
main job's path) into its --output_dir (or --jader_run when given), reusing a run folder
that holds exactly that config's run. Writes ``metrics.json`` (full config, rows, sweeps,
ScaNN choices, machine conditions), ``report.md`` and ``recall_vs_qps.png`` under
--output_dir and prints the report.
"""

import dataclasses
import pathlib
import time

from absl import app
from absl import flags

from tfrs_emb import reporting
from tfrs_emb.experiments import bench_data
from tfrs_emb.experiments import bench_retrieval
from tfrs_emb.experiments import jader_w2v
from tfrs_emb.reporting import ann_bench
from trainers import flagdefs

_TRAINS_NOTHING = ("the bench trains no CBOW: it searches the element vectors of the "
                   "--jader_run run (set it in that run's jader_w2v flags, or pass "
                   "--jader_flagfile=FILE to run it first)")
# Flags of the bench that trained its own CBOW → why each is gone and what replaces it.
REMOVED_FLAGS = {
    "num_cases": "the cases are those of the --jader_run run (its --synthetic_cases); the "
                 "clustered source's size is --clustered_cases",
    "dim": "the vector size is the --jader_run run's --dim; the clustered source's is "
           "--clustered_dim",
    "jader_dir": "the release is the --jader_run run's (pass --jader_dir to jader_w2v)",
    "cache_dir": "the bench keeps no cache; the release cache is jader_w2v's --cache_dir",
    "cbow_epochs": _TRAINS_NOTHING + " (its --epochs)",
    "cbow_min_count": _TRAINS_NOTHING + " (its --min_count)",
    "cbow_learning_rate": _TRAINS_NOTHING + " (its --learning_rate / --fused_learning_rate)",
}


def define_flags(flag_values=flags.FLAGS) -> None:
  """The bench's flags: its Config's, --jader_flagfile, and the removed flags (each fails
  naming what replaces it)."""
  flagdefs.define_config_flags(bench_retrieval.Config, flag_values=flag_values)
  flags.DEFINE_string("jader_flagfile", "", "Run jader_w2v with this flagfile's config "
                      "first (reused when its run folder already holds exactly that run), "
                      "then search its vectors; empty = only read --jader_run.",
                      flag_values=flag_values)
  for name, why in REMOVED_FLAGS.items():
    flags.DEFINE_string(name, None, f"Removed: {why}.", flag_values=flag_values)
    flags.register_validator(name, lambda value: value is None,
                             message=f"--{name} is no longer a bench_retrieval flag: {why}",
                             flag_values=flag_values)


define_flags()
FLAGS = flags.FLAGS


def _log(msg: str):
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def jader_config(flagfile: str, output_dir: str = "") -> jader_w2v.Config:
  """jader_w2v's Config from ``flagfile`` as its trainer parses it (``output_dir``
  replaces the flagfile's when given)."""
  values = flags.FlagValues()
  flagdefs.define_config_flags(jader_w2v.Config, flag_values=values)
  values(["jader_w2v", f"--flagfile={flagfile}"])
  overrides = {"output_dir": output_dir} if output_dir else {}
  return flagdefs.config_from_flags(jader_w2v.Config, flag_values=values, **overrides)


def main(argv):
  del argv
  config = flagdefs.config_from_flags(bench_retrieval.Config)
  if FLAGS.jader_flagfile:
    run_config = jader_config(FLAGS.jader_flagfile,
                              config.jader_run if FLAGS["jader_run"].present else "")
    flagdefs.configure_cbow_trainer(run_config.workers, run_config.cpu_replicas)
    config = dataclasses.replace(config,
                                 jader_run=bench_data.train_or_reuse(run_config, log=_log))
  result = bench_retrieval.run(config, log=_log)
  out_dir = pathlib.Path(config.output_dir)
  reporting.write_json(out_dir / "metrics.json",
                       dict(experiment="bench_retrieval", jader_flagfile=FLAGS.jader_flagfile,
                            **dataclasses.asdict(result)))
  report = ann_bench.report_markdown(result)
  reporting.write_text(out_dir / "report.md", report)
  if result.sweep:
    ann_bench.plot_recall_vs_qps(result.sweep, result.rows, str(out_dir / "recall_vs_qps.png"))
  _log(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'}")
  print(report)


if __name__ == "__main__":
  app.run(main)
