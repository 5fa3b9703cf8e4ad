"""The retrieval bench's equal-budget comparison: the budget check, the build choice on
validation queries, and verdicts from interleaved medians."""

import numpy as np
import pytest

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.experiments import bench_peers
from tfrs_emb.experiments import bench_retrieval as br
from tfrs_emb.experiments.bench_timing import Truth
from tfrs_emb.retrieval import methods

K = 5


def _space(name, builds, settings, make=lambda b: methods.FaissIVF(nlist=b)):
  return bench_peers.AnnSpace(name, tuple(builds), make, lambda b: list(settings))


def test_unequal_builds_or_settings_raise_naming_the_short_method():
  two = [("a", {}), ("b", {})]
  with pytest.raises(ValueError, match=r"method 'peer' has 1 builds, fewer than the 2 of "
                                       r"'scann' 2"):
    bench_peers.check_budgets([_space("scann", [1, 2], two), _space("peer", [1], two)])
  with pytest.raises(ValueError, match=r"method 'scann' has 1 settings, fewer than the 2 of "
                                       r"'peer' 2"):
    bench_peers.check_budgets([_space("scann", [1, 2], two[:1]), _space("peer", [1, 2], two)])
  assert bench_peers.check_budgets([_space("scann", [1, 2], two), _space("peer", [3, 4], two)]) \
      == {"scann": {"builds": 2, "settings": 2}, "peer": {"builds": 2, "settings": 2}}


def test_the_bench_refuses_unequal_budgets_before_any_work():
  config = br.Config(source="clustered", clustered_cases=100, ivf_nlists=(8,),
                     search_leaves=(10, 20), search_dims_per_block=(2,),
                     ivfpq_nlists=(8,), ivfpq_m=(4, 8), hnsw_ms=(8,),
                     hnsw_ef_constructions=(20, 40))
  with pytest.raises(ValueError, match="method 'faiss ivf' has 1 builds, fewer than the 2"):
    br.run(config)
  spaces = br.ann_spaces(config)
  assert [s.name for s in spaces] == ["scann", "faiss ivf", "faiss ivfpq-fs+refine",
                                      "faiss hnsw", "hnswlib"]
  # ScaNN's sweep points are per 1,000 leaves, scaled to each build's leaf count.
  scann = spaces[0]
  assert [p for _, p in scann.settings(scann.builds[0])][0] == dict(leaves_to_search=1,
                                                                    reorder=20)


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(20, 16))
  db = l2_normalize(centers[rng.integers(0, 20, 3000)]
                    + 0.5 * rng.normal(size=(3000, 16))).astype(np.float32)
  return db, rng.choice(3000, 100, replace=False), rng.choice(3000, 100, replace=False)


def test_the_kept_build_is_the_fastest_reaching_the_target_on_validation(data):
  db, validation_ids, _ = data
  # Two builds, two settings each: every list probed (exact) and one list probed. The kept
  # build is the one holding the fastest (median QPS) point among those reaching 0.99.
  space = bench_peers.AnnSpace(
      "faiss ivf", (1, 30), lambda n: methods.FaissIVF(nlist=n, train_size=3000),
      lambda n: [(f"nprobe={n}", dict(nprobe=n)), ("nprobe=1", dict(nprobe=1))])
  kept = bench_peers.choose_build(space, db, Truth.compute(db, validation_ids, K), K, 0.99,
                                  rounds=3)
  assert len(kept.searched) == 4 and all(p["runs"] == 3 for p in kept.searched)
  reaching = [p for p in kept.searched if p["recall"] >= 0.99]
  best = max(reaching, key=lambda p: p["qps_median"])
  assert kept.build == space.builds[best["build_index"]]
  assert kept.validation == [p for p in kept.searched
                             if p["build_index"] == best["build_index"]]
  # Nothing reaches an impossible target: the most accurate point's build is kept.
  unreachable = bench_peers.choose_build(space, db, Truth.compute(db, validation_ids, K), K,
                                         1.01, rounds=1)
  assert max(p["recall"] for p in unreachable.validation) == max(
      p["recall"] for p in unreachable.searched)


def _kept(name, points):
  space = bench_peers.AnnSpace(name, ("b",), None, lambda b: [(p["setting"], {})
                                                              for p in points])
  return bench_peers.Kept(space, "b", None, 0.0,
                          [dict(p, method=name) for p in points], [])


def test_verdicts_are_median_ratios_of_the_interleaved_evaluation_runs():
  scann = _kept("scann", [dict(setting="s1", recall=0.96, qps_median=900.0),
                          dict(setting="s2", recall=0.995, qps_median=300.0)])
  ivf = _kept("faiss ivf", [dict(setting="p1", recall=0.97, qps_median=1000.0)])
  hnsw = _kept("hnswlib", [dict(setting="h1", recall=0.955, qps_median=500.0)])
  # Evaluation runs (seconds per round): s1 is 2× faster than p1 in every round but one
  # where p1 ran during a quiet moment (fastest-of-N would say 4×).
  points = [dict(method="scann", setting="s1", recall=0.96, qps_median=1.0,
                 run_seconds=[1.0, 1.0, 1.0, 1.0, 1.0]),
            dict(method="scann", setting="s2", recall=0.99, qps_median=1.0,
                 run_seconds=[1.0, 1.1, 0.9, 1.0, 1.0]),
            dict(method="faiss ivf", setting="p1", recall=0.97, qps_median=1.0,
                 run_seconds=[2.0, 2.2, 1.8, 4.0, 2.0]),
            dict(method="hnswlib", setting="h1", recall=0.95, qps_median=1.0,
                 run_seconds=[0.5, 0.5, 0.5, 0.5, 0.5])]
  v95, v97, v99 = bench_peers.verdicts([scann, ivf, hnsw], points, (0.95, 0.97, 0.99))
  # 0.95: hnswlib reaches it but ivf is faster on validation → ivf is the best peer.
  assert (v95["best_peer"], v95["ours_setting"], v95["peer_setting"]) == ("faiss ivf", "s1",
                                                                         "p1")
  assert v95["ratio_median"] == pytest.approx(2.0)
  assert (v95["ratio_min"], v95["ratio_max"]) == (pytest.approx(1.8), pytest.approx(4.0))
  assert v95["verdict"] == "win" and v95["rounds"] == 5
  # 0.97: ScaNN needs s2 (1× … ), ivf p1: ratios 2, 2, 2, 4, 2 → still a win.
  assert v97["ours_setting"] == "s2" and v97["verdict"] == "win"
  # 0.99: no peer reaches it on validation.
  assert v99["verdict"] == "win" and "no peer reaches" in v99["reason"]
  slower = [dict(p, run_seconds=[3.0, 1.0, 1.0, 1.0, 1.0]) if p["setting"] == "s1" else p
            for p in points]
  tie = bench_peers.verdicts([scann, ivf], slower, (0.95,))[0]
  assert tie["ratio_min"] < 1 < tie["ratio_max"] and tie["verdict"] == "tie"
  lost = bench_peers.verdicts([_kept("scann", [dict(setting="s1", recall=0.9,
                                                    qps_median=1.0)]), ivf], points, (0.95,))
  assert lost[0]["verdict"] == "loss" and "reaches recall 0.95 at no" in lost[0]["reason"]


def test_bruteforce_speedup_is_a_median_of_interleaved_rounds(data):
  db, _, query_ids = data
  brute, exact = methods.TfrsBruteForce(batch_size=50), methods.Exact()
  brute.build(db, K)
  exact.build(db, K)
  out = bench_peers.bruteforce_speedup(exact, brute, db[query_ids], K, rounds=5)
  assert out["rounds"] == 5 and out["queries"] == 100
  assert out["ratio_min"] <= out["ratio_median"] <= out["ratio_max"]
  with pytest.raises(ValueError, match=">= 5"):
    bench_peers.bruteforce_speedup(exact, brute, db[query_ids], K, rounds=3)
