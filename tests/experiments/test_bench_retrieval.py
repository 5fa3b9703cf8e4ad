"""trainers.bench_retrieval end to end on the small flagfile over a small jader_w2v run,
the run folder checks, and the bench's helpers."""

import dataclasses
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.experiments import bench_data
from tfrs_emb.experiments import bench_retrieval as br
from tfrs_emb.experiments import bench_scann
from tfrs_emb.experiments import jader_run
from tfrs_emb.retrieval import ScannConfig
from tfrs_emb.retrieval import load_serving_fn

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROW_KEYS = {"search", "aggregation", "index_seconds", "query_seconds", "qps", "rank_dice@10",
            "recall@10"}


def _trainer(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
  """(run folder, its flagfile): the small jader_w2v run (configs/jader_w2v_small.flags)
  trained into a temporary folder, as the main job's trainer runs it."""
  tmp = tmp_path_factory.mktemp("jader_run")
  flagfile = tmp / "jader_w2v_small.flags"
  flagfile.write_text(f"--flagfile={ROOT / 'configs' / 'jader_w2v_small.flags'}\n"
                      f"--output_dir={tmp / 'run'}\n--cache_dir={tmp / 'cache'}\n",
                      encoding="utf-8")
  proc = _trainer("trainers.jader_w2v", f"--flagfile={flagfile}")
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return tmp / "run", flagfile


@pytest.mark.slow
def test_small_bench_searches_the_runs_vectors(small_run, tmp_path):
  run_dir, run_flagfile = small_run
  out_dir = tmp_path / "bench"
  # --jader_flagfile names the run's config: the run folder holds exactly it, so it is
  # reused (not retrained) and its vectors are searched.
  proc = _trainer("trainers.bench_retrieval",
                  f"--flagfile={ROOT / 'configs' / 'bench_retrieval_small.flags'}",
                  f"--jader_flagfile={run_flagfile}", f"--jader_run={run_dir}",
                  f"--output_dir={out_dir}", f"--export_dir={tmp_path / 'exported'}")
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert f"reusing the jader_w2v run in {run_dir}" in proc.stdout
  payload = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
  run = jader_run.load(run_dir)
  assert payload["data"]["run"] == str(run_dir) and payload["data"]["run_digest"] == run.digest
  assert payload["data"]["vocab"] == len(run.vocab) and payload["data"]["dim"] == 32
  assert payload["num_items"] == 10_000
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
  # Real structure: the run's CBOW neighbours share elements far above chance.
  assert by_key["bruteforce_mean"]["rank_dice@10"] > 0.1
  # Equal budgets: every approximate method searched 4 builds × 4 settings on the
  # validation queries, its kept build swept at the same 4 settings on the evaluation ones.
  names = ("scann", "faiss ivf", "faiss ivfpq-fs+refine", "faiss hnsw", "hnswlib")
  assert payload["budgets"] == {m: {"builds": 4, "settings": 4} for m in names}
  assert len(payload["peer_search"]) == 5 * 16
  assert [b["method"] for b in payload["kept_builds"]] == list(names)
  assert sorted(p["method"] for p in payload["sweep"]) == sorted(names * 4)
  assert all(p["runs"] == 5 and len(p["run_seconds"]) == 5 for p in payload["sweep"])
  assert {(r["method"], r["measure"]) for r in payload["sweep_table"]} == {
      (m, r) for m in names for r in ("recall", "recall_ties")}
  # Verdicts at 0.95 / 0.97 / 0.99: ScaNN / best peer QPS as a median with min–max.
  assert [v["target"] for v in payload["verdicts"]] == [0.95, 0.97, 0.99]
  for v in payload["verdicts"]:
    assert v["verdict"] in ("win", "tie", "loss")
    if "ratio_median" in v:
      assert v["ratio_min"] <= v["ratio_median"] <= v["ratio_max"] and v["rounds"] == 5
      assert v["best_peer"] in names[1:]
  speedup = payload["bruteforce_speedup"]
  assert speedup["rounds"] == 5 and speedup["queries"] == 300 and speedup["ratio_median"] > 0
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
    # The query model is the run's CaseEncoder: its vectors embed the probes.
    assert set(out) >= {"ids", "scores", "known_elements"}
    # A case's own elements find a case with the same embedding (itself or a twin) first.
    # (ScaNN's reordered scores come from its own float kernels: 1e-4 is exceeded at
    # times, e.g. 0.99989.)
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], 1.0,
                               atol=1e-3 if "scann" in name else 1e-4)


def test_config_search_uses_validation_queries_and_reports_a_front():
  config = br.Config(source="clustered", clustered_cases=3000, num_queries=100,
                     num_validation=150, clustered_dim=16, methods=("scann_tuned_mean", "faiss_ivf_mean"),
                     tuned_leaves=30, tuned_grid_leaves=(67, 1000), tuned_grid_reorder=(100,),
                     tuned_target_recall=0.9, scann_config_search=True, search_leaves=(20, 40),
                     search_dims_per_block=(2,), search_grid_leaves=(50, 1000),
                     search_trees=("generic", "spherical+int8"), timing_rounds=2,
                     search_grid_reorder=(200,), search_scorings=("ah", "float32"),
                     faiss_ivf_nlist=30, sweep=False)
  import tempfile
  with tempfile.TemporaryDirectory() as tmp:
    result = br.run(dataclasses.replace(config, output_dir=tmp))
  query_ids, validation_ids = bench_data.split_queries(
      [frozenset([1])] * 3000, 100, 150, config.seed)
  assert not set(query_ids) & set(validation_ids)
  assert len(result.config_search) == 16     # 2 leaf counts × 2 trees × 2 scorings × 2 settings
  assert {(p["spherical"], p["quantize_centroids"]) for p in result.config_search} == {
      (False, False), (True, True)}
  assert all(p["runs"] == 2 and p["spread"] >= 1 for p in result.config_search)
  assert all(p["runs"] == 2 for p in result.tuning) and not result.sweep
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


def test_tree_knobs():
  assert bench_scann.tree_knobs("generic") == dict(spherical=False, quantize_centroids=False)
  assert bench_scann.tree_knobs("spherical+int8") == dict(spherical=True,
                                                          quantize_centroids=True)
  with pytest.raises(ValueError, match="search_trees entry 'sphere'"):
    bench_scann.tree_knobs("sphere")
  with pytest.raises(ValueError, match="search_trees entry"):
    br.run(br.Config(source="clustered", clustered_cases=100, search_trees=("generic+int4",)))


def test_build_from_search_takes_the_fastest_build_reaching_the_target():
  def point(qps, qps_median, recall, **build):
    return dict(dataclasses.asdict(ScannConfig(**build)), qps=qps, qps_median=qps_median,
                recall=recall)

  points = [point(9_000.0, 8_500.0, 0.97, num_leaves=1000, anisotropic_quantization_threshold=0.2,
                  training_sample_size=250_000),
            point(8_000.0, 7_900.0, 0.96, num_leaves=3000, dimensions_per_block=4,
                  anisotropic_quantization_threshold=0.3, spherical=True),
            point(50_000.0, 45_000.0, 0.90, num_leaves=4000, scoring="float32"),
            # One quiet moment: the fastest run wins, the median does not.
            point(20_000.0, 6_000.0, 0.98, num_leaves=2000,
                  anisotropic_quantization_threshold=0.2, training_sample_size=250_000)]
  fallback = br.Config().tuned_scann()
  chosen = bench_scann.build_from_search(points, 0.955, fallback)
  assert chosen == ScannConfig(num_leaves=1000, anisotropic_quantization_threshold=0.2,
                               training_sample_size=250_000)
  second = bench_scann.build_from_search(points[1:], 0.955, fallback)
  assert (second.num_leaves, second.spherical, second.dimensions_per_block) == (3000, True, 4)
  assert bench_scann.build_from_search(points, 0.99, fallback) is fallback   # none reaches it


def _copy_run(run_dir: pathlib.Path, to: pathlib.Path, *files: str) -> pathlib.Path:
  to.mkdir()
  for name in files:
    shutil.copy(run_dir / name, to / name)
  return to


def test_a_run_folder_without_vectors_is_refused_with_the_remedy(small_run, tmp_path):
  run_dir, _ = small_run
  old = _copy_run(run_dir, tmp_path / "old_run", "metrics.json")
  with pytest.raises(jader_run.RunFilesError,
                     match=r"element_vectors.npz not found.*trainers.jader_w2v"):
    bench_data.jader_data(str(old), ["mean"])
  with pytest.raises(jader_run.RunFilesError, match=r"metrics.json not found"):
    bench_data.jader_data(str(tmp_path), ["mean"])


def test_vectors_are_refused_after_a_config_or_release_change(small_run, tmp_path):
  run_dir, _ = small_run
  assert jader_run.load(run_dir).vectors.shape[1] == 32
  # A rerun that rewrote metrics.json with another config but not the vectors.
  changed = _copy_run(run_dir, tmp_path / "changed", "metrics.json", "element_vectors.npz")
  metrics = json.loads((changed / "metrics.json").read_text(encoding="utf-8"))
  metrics["config"]["cbow"]["epochs"] += 1
  (changed / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
  with pytest.raises(jader_run.RunFilesError, match="refusing to reuse it"):
    jader_run.load(changed)
  # The release regenerated (here: one more byte) since the vectors were trained; a
  # copy of the same files elsewhere is the same release.
  release = tmp_path / "release"
  shutil.copytree(jader_run.load(run_dir).release, release)
  moved = _copy_run(run_dir, tmp_path / "moved", "metrics.json", "element_vectors.npz")
  metrics = json.loads((moved / "metrics.json").read_text(encoding="utf-8"))
  (moved / "metrics.json").write_text(json.dumps(dict(metrics, release=str(release))),
                                      encoding="utf-8")
  assert jader_run.load(moved).digest == jader_run.load(run_dir).digest  # same files elsewhere
  first = sorted(release.glob("*.csv"))[0]
  with open(first, "ab") as f:
    f.write(b"\n")
  with pytest.raises(jader_run.RunFilesError, match="refusing to reuse it"):
    jader_run.load(moved)


@pytest.mark.parametrize("flag,names", [("--cbow_epochs=5", "--jader_run"),
                                        ("--num_cases=10000", "--clustered_cases")])
def test_removed_flags_fail_naming_the_new_flag(flag, names):
  proc = _trainer("trainers.bench_retrieval", flag, "--source=clustered", timeout=120)
  assert proc.returncode != 0
  assert f"{flag.partition('=')[0]} is no longer a bench_retrieval flag" in proc.stderr
  assert names in proc.stderr
