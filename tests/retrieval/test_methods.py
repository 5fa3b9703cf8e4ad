"""Search methods: exact ones agree with a full sort, approximate ones find most of it,
search-time knobs apply without a rebuild, and a reloaded SavedModel answers the same."""

import numpy as np
import pytest

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.retrieval import ScannConfig
from tfrs_emb.retrieval import export_index
from tfrs_emb.retrieval import methods

K = 5


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(20, 16))
  db = l2_normalize(centers[rng.integers(0, 20, 2000)] + 0.5 * rng.normal(size=(2000, 16)))
  queries = l2_normalize(rng.normal(size=(64, 16)))
  truth = np.argsort(-(queries @ db.T), axis=1, kind="stable")[:, :K]
  return db, queries, truth


def _recall(found, truth):
  return np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth)])


@pytest.mark.parametrize("make", [lambda: methods.TfrsBruteForce(batch_size=10),
                                  methods.Exact, methods.FaissFlat])
def test_exact_methods_match_a_full_sort(data, make):
  db, queries, truth = data
  m = make()
  m.build(db, K)
  found = m.search(queries, K)
  assert found.dtype == np.int64 and found.shape == (64, K)
  np.testing.assert_array_equal(found, truth)


def test_faiss_knobs_move_recall_without_a_rebuild(data):
  db, queries, truth = data
  ivf = methods.FaissIVF(nlist=32, nprobe=1, train_size=2000)
  ivf.build(db, K)
  low = _recall(ivf.search(queries, K), truth)
  ivf.set_search_params(nprobe=32)               # every list: exact
  np.testing.assert_array_equal(ivf.search(queries, K), truth)
  assert low < 1.0
  hnsw = methods.FaissHNSW(m=8, ef_construction=40, ef_search=8)
  hnsw.build(db, K)
  hnsw.set_search_params(ef_search=200)
  assert _recall(hnsw.search(queries, K), truth) > 0.95


def test_ivfpq_fastscan_refine_is_exact_when_every_list_and_row_is_rescored(data):
  db, queries, truth = data
  pq = methods.FaissIVFPQFastScanRefine(nlist=32, m=8, nprobe=1, k_factor=1, train_size=2000)
  pq.build(db, K)
  coarse = _recall(pq.search(queries, K), truth)
  pq.set_search_params(nprobe=32, k_factor=len(db) // K)   # every list, every row rescored
  np.testing.assert_array_equal(pq.search(queries, K), truth)
  assert coarse < 1.0
  pq.set_search_params(k_factor=4)                        # nprobe kept
  assert pq.ivf.nprobe == 32 and pq.index.k_factor == 4
  with pytest.raises(ValueError, match="m=5 sub-quantizers must divide the vector size 16"):
    methods.FaissIVFPQFastScanRefine(nlist=8, m=5).build(db, K)


def test_hnswlib_is_exact_with_an_ef_as_large_as_the_database(data):
  db, queries, truth = data
  hnsw = methods.Hnswlib(m=8, ef_construction=40, ef=K)
  hnsw.build(db, K)
  coarse = hnsw.search(queries, K)
  assert coarse.dtype == np.int64 and coarse.shape == (64, K)
  hnsw.set_search_params(ef=len(db))
  np.testing.assert_array_equal(hnsw.search(queries, K), truth)


def test_scann_search_params_and_the_reloaded_savedmodel(data, tmp_path):
  db, queries, truth = data
  scann = methods.TfrsScaNN(batch_size=16, config=ScannConfig(
      num_leaves=20, num_leaves_to_search=1, num_reordering_candidates=50,
      training_sample_size=2000))
  scann.build(db, K)
  coarse = _recall(scann.search(queries, K), truth)
  scann.set_search_params(leaves_to_search=20, reorder=200)    # all leaves, more rescored
  fine = scann.search(queries, K)
  assert _recall(fine, truth) > 0.98 and coarse < _recall(fine, truth)
  reloaded = methods.Reloaded(str(export_index(scann.layer, tmp_path / "scann", k=K)),
                              batch_size=24)
  reloaded.build(None, K)
  np.testing.assert_array_equal(reloaded.search(queries, K), fine)
  with pytest.raises(NotImplementedError):
    methods.Exact().set_search_params(nprobe=2)
