"""trainers.bench_retrieval end to end on the small flagfile, and its helpers."""

import dataclasses
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
  by_key = {r["method"]: r for r in rows}
  assert list(by_key) == payload["config"]["methods"]
  for key in ("bruteforce_mean", "bruteforce_max", "exact_mean", "faiss_flat_mean"):
    assert by_key[key]["recall@10_ties"] > 0.999, by_key[key]   # exact (ties aside)
  # Every TFRS layer was exported, reloaded and gave the in-process results.
  for key in ("bruteforce_mean", "bruteforce_max", "scann_mean", "scann_reorder_mean",
              "scann_tuned_mean"):
    assert by_key[key]["serving_qps"] > 0 and by_key[key]["serving_same_ids"] > 0.99, key
  assert "serving_qps" not in by_key["faiss_flat_mean"]
  # Real structure: CBOW neighbours share elements far above chance.
  assert by_key["bruteforce_mean"]["rank_dice@10"] > 0.1
  assert {(r["method"], r["measure"]) for r in payload["sweep_table"]} == {
      (m, r) for m in ("scann", "faiss ivf", "faiss hnsw") for r in ("recall", "recall_ties")}
  assert payload["conditions_before"]["usable_cpus"] >= 1
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
    # (ScaNN's reordered scores come from its own float kernels: 1e-4 is exceeded at
    # times, e.g. 0.99989.)
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], 1.0,
                               atol=1e-3 if "scann" in name else 1e-4)


def test_config_search_uses_validation_queries_and_reports_a_front():
  from tfrs_emb.experiments import bench_retrieval as br
  config = br.Config(source="clustered", num_cases=3000, num_queries=100, num_validation=150,
                     dim=16, methods=("scann_tuned_mean", "faiss_ivf_mean"),
                     tuned_leaves=30, tuned_grid_leaves=(67, 1000), tuned_grid_reorder=(100,),
                     tuned_target_recall=0.9, scann_config_search=True, search_leaves=(20, 40),
                     search_dims_per_block=(2,), search_grid_leaves=(50, 1000),
                     search_trees=("generic", "spherical+int8"), timing_rounds=2,
                     search_grid_reorder=(200,), search_scorings=("ah", "float32"),
                     faiss_ivf_nlist=30, sweep_scann=("67:20", "1000:200"),
                     sweep_ivf_nprobe=(1, 30), sweep_hnsw_ef=(), recall_targets=(0.5, 0.9))
  import tempfile
  with tempfile.TemporaryDirectory() as tmp:
    result = br.run(dataclasses.replace(config, output_dir=tmp))
  query_ids, validation_ids = br.split_queries(
      [frozenset([1])] * 3000, 100, 150, config.seed)
  assert not set(query_ids) & set(validation_ids)
  assert len(result.config_search) == 16     # 2 leaf counts × 2 trees × 2 scorings × 2 settings
  assert {(p["spherical"], p["quantize_centroids"]) for p in result.config_search} == {
      (False, False), (True, True)}
  assert all(p["runs"] == 2 and p["spread"] >= 1 for p in result.config_search)
  assert all(p["runs"] == 2 for p in result.sweep + result.tuning)
  assert {p["leaves_to_search"] for p in result.config_search} == {1, 20, 2, 40}
  exact_scan = [p for p in result.config_search
                if p["scoring"] == "float32" and p["leaves_to_search"] == p["num_leaves"]]
  assert min(p["recall"] for p in exact_scan) > 0.99   # every leaf scored exactly
  front = result.config_front
  assert front and all(p in result.config_search for p in front)
  assert all(a["recall"] < b["recall"] and a["qps"] > b["qps"] for a, b in zip(front, front[1:]))
  # The high-recall settings (every leaf, 200 reordered) are near exact.
  assert max(p["recall"] for p in result.config_search) > 0.95
  assert result.tuned_choice["setting"] == "leaves=30,reorder=100"
  row = result.rows[0]
  assert row["method"] == "scann_tuned_mean" and row["search"].endswith("[leaves=30,reorder=100]")
  assert result.tuned_build["num_leaves"] == 30                  # the --tuned_leaves flag
  assert row["serving_same_ids"] == 1.0 and row["serving_spread"] >= 1
  ivf = next(r for r in result.sweep_table if r["method"] == "faiss ivf")
  assert ivf["qps@0.9"] > 0                        # nprobe=30 of 30 lists is exact


def test_tree_knobs():
  from tfrs_emb.experiments import bench_retrieval as br
  assert br.tree_knobs("generic") == dict(spherical=False, quantize_centroids=False)
  assert br.tree_knobs("spherical+int8") == dict(spherical=True, quantize_centroids=True)
  with pytest.raises(ValueError, match="search_trees entry 'sphere'"):
    br.tree_knobs("sphere")
  with pytest.raises(ValueError, match="search_trees entry"):
    br.run(br.Config(source="clustered", num_cases=100, search_trees=("generic+int4",)))


def test_build_from_search_takes_the_fastest_build_reaching_the_target():
  from tfrs_emb.experiments import bench_retrieval as br
  points = [dict(num_leaves=1000, scoring="ah", dimensions_per_block=2,
                 anisotropic_quantization_threshold=0.2, training_sample_size=250_000,
                 qps=9_000.0, qps_median=8_500.0, recall=0.97),
            dict(num_leaves=3000, scoring="ah", dimensions_per_block=4,
                 anisotropic_quantization_threshold=0.3, training_sample_size=100_000,
                 spherical=True, qps=8_000.0, qps_median=7_900.0, recall=0.96),
            dict(num_leaves=4000, scoring="float32", training_sample_size=100_000,
                 qps=50_000.0, qps_median=45_000.0, recall=0.90),
            # One quiet moment: the fastest run wins, the median does not.
            dict(num_leaves=2000, scoring="ah", dimensions_per_block=2,
                 anisotropic_quantization_threshold=0.2, training_sample_size=250_000,
                 qps=20_000.0, qps_median=6_000.0, recall=0.98)]
  config = br.Config(tuned_target_recall=0.955)
  chosen = br.build_from_search(config, points)
  assert (chosen.tuned_leaves, chosen.tuned_scoring, chosen.tuned_dims_per_block,
          chosen.tuned_training_sample_size) == (1000, "ah", 2, 250_000)
  assert not chosen.tuned_spherical
  second = br.build_from_search(config, points[1:])
  assert (second.tuned_leaves, second.tuned_spherical, second.tuned_quantize_centroids) == (
      3000, True, False)
  strict = dataclasses.replace(config, tuned_target_recall=0.99)
  assert br.build_from_search(strict, points) == strict          # none reaches it
