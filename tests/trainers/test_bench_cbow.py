"""trainers/bench_cbow: flags → Config → run → the table and the load average."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_trainer_prints_the_table_and_the_load_average(tmp_path):
  cmd = [sys.executable, "-m", "trainers.bench_cbow", "--flagfile=configs/bench_cbow.flags",
         "--synthetic_cases=400", "--eval_sets=50", "--dim=8", "--epochs=1", "--min_count=2",
         "--repeats=1", "--workers=1", "--keras_grid=tokens_per_batch=1024",
         f"--cache_dir={tmp_path / 'cache'}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert ("| method | variant | kernel | epochs | train_seconds | tokens_per_s | heldout_recall@10 "
          "| class_agreement@10 |") in proc.stdout
  for method in ("| gensim |", "| keras | tokens_per_batch=1024 |", "| popularity |",
                 "| random |"):
    assert method in proc.stdout
  assert "load average (1 min)" in proc.stdout and "before" in proc.stdout


def test_trainer_rejects_a_flag_out_of_range():
  proc = subprocess.run([sys.executable, "-m", "trainers.bench_cbow", "--k=0"], cwd=ROOT,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode != 0 and "--k" in proc.stderr
