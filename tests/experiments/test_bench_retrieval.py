"""trainers.bench_retrieval end to end on the small flagfile, and its helpers."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.retrieval import load_serving_fn

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROW_KEYS = {"search", "aggregation", "index_seconds", "query_seconds", "qps", "rank_dice@10",
            "recall@10"}


@pytest.mark.slow
def test_small_bench_writes_metrics(tmp_path):
  out_dir = tmp_path / "bench"
  proc = subprocess.run(
      [sys.executable, "-m", "trainers.bench_retrieval",
       f"--flagfile={ROOT / 'configs' / 'bench_retrieval_small.flags'}",
       f"--output_dir={out_dir}", f"--export_dir={tmp_path / 'exported'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  payload = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
  rows = payload["rows"]
  assert len(rows) == 9
  for row in rows:
    assert ROW_KEYS <= set(row), row
    assert row["search"].startswith(("bruteforce", "scann", "faiss")), row["search"]
    assert row["aggregation"] in ("mean", "max")
    assert 0.0 <= row["rank_dice@10"] <= 1.0 and 0.0 <= row["recall@10"] <= 1.0
    assert row["qps"] > 0 and row["query_seconds"] > 0
  by_name = {(r["search"], r["aggregation"]): r for r in rows}
  exact_rows = [by_name[("bruteforce", "mean")], by_name[("bruteforce", "max")],
                by_name[("bruteforce exact_top_k (tfrs_emb)", "mean")],
                by_name[("faiss IndexFlatIP", "mean")]]
  for row in exact_rows:      # exact methods agree with the exact reference (ties aside)
    assert row["recall@10_ties"] > 0.999, row
  # Real structure: CBOW neighbours share elements far above chance.
  assert by_name[("bruteforce", "mean")]["rank_dice@10"] > 0.1
  assert payload["num_queries"] == 300 and payload["k"] == 10
  assert (out_dir / "report.md").read_text(encoding="utf-8").count("|") > 50
  assert (out_dir / "recall_vs_qps.png").stat().st_size > 1000
  # SavedModels: case elements → case ids, identical top-k after reload.
  assert set(payload["exports"]) == {"jader_bruteforce", "jader_scann"}
  for name, exp in payload["exports"].items():
    probes = exp["probe_elements"]
    width = max(len(p) for p in probes)
    elements = tf.constant([p + [""] * (width - len(p)) for p in probes])
    out = load_serving_fn(exp["path"])(elements=elements)
    assert out["ids"].numpy().astype(str).tolist() == exp["probe_ids"], name
    np.testing.assert_allclose(out["scores"].numpy(), exp["probe_scores"], rtol=1e-5,
                               atol=1e-6)
    assert out["ids"].shape == (len(probes), 10)
    # A case's own elements find a case with the same embedding (itself or a twin) first.
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], 1.0, atol=1e-4)
