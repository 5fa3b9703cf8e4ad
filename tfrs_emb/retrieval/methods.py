"""Top-k search methods behind one interface, for side-by-side benchmarks.

Every method is built once on a database and then answers queries with database rows::

  m = FaissIVF(nlist=2048, nprobe=16)
  m.build(database, k=11)                       # float32 [N, D]
  rows = m.search(queries, k=11)                # int64 [Q, k], best first
  m.set_search_params(nprobe=64)                # search-time knob, no rebuild

TFRS layers (``TfrsBruteForce``, ``TfrsScaNN``) also have ``layer`` (exportable with
``index.export_index``); ``Reloaded`` answers through such an exported SavedModel.
faiss is imported only by the faiss methods, hnswlib only by ``Hnswlib``.
"""

from typing import Callable, Optional

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core.linalg import exact_top_k
from tfrs_emb.retrieval import index as index_lib


def ids_to_rows(ids) -> np.ndarray:
  """String ids "0".."N-1" (a tf.Tensor or array of bytes) → int64 database rows.

  Parsed by ``tf.strings.to_number`` in C++ rather than by numpy's bytes → int64
  conversion, so parsing the ids stays a small part of a fast search's time.
  """
  return tf.strings.to_number(ids, tf.int64).numpy()


def _batched(search_ids: Callable, queries: np.ndarray, batch_size: int) -> np.ndarray:
  """Concatenated rows of ``search_ids(batch)`` (string ids [B, k]) over query batches."""
  return np.concatenate([ids_to_rows(search_ids(queries[i:i + batch_size]))
                         for i in range(0, len(queries), batch_size)])


class Method:
  """A search method: ``build(database, k)`` once, then ``search(queries, k)``."""

  layer = None  # the TFRS layer, for methods that are one

  def build(self, database: np.ndarray, k: int) -> None:
    raise NotImplementedError

  def search(self, queries: np.ndarray, k: int) -> np.ndarray:
    """int64 [Q, k] database rows, best first."""
    raise NotImplementedError

  def set_search_params(self, **params) -> None:
    raise NotImplementedError(f"{type(self).__name__} has no search-time parameters")


class TfrsBruteForce(Method):
  """TFRS ``BruteForce`` layer (as the talk), queried in batches of ``batch_size``."""

  def __init__(self, batch_size: int = 1024):
    self.batch_size = batch_size

  def build(self, database, k):
    self.layer = index_lib.build_brute_force(database, k=k)

  def search(self, queries, k):
    return _batched(lambda q: self.layer(tf.constant(q), k=k)[1], queries, self.batch_size)


class TfrsScaNN(Method):
  """TFRS ScaNN layer (``index.build_scann`` of ``config``), batched-parallel calls of
  ``batch_size``.

  The searcher is cached across eager calls. Queries go in batches of ``batch_size``
  rather than one call with all of them; the batch size is the caller's choice (the
  retrieval bench's ``--scann_batch``).
  """

  def __init__(self, batch_size: int = 1024,
               config: index_lib.ScannConfig = index_lib.ScannConfig()):
    self.batch_size = batch_size
    self.config = config

  def build(self, database, k):
    self.layer = index_lib.build_scann(database, k=k, config=self.config,
                                       cache_searcher=True)
    self.layer(tf.constant(database[:1]), k=k)  # creates the cached searcher

  def search(self, queries, k):
    return _batched(lambda q: self.layer(tf.constant(q), k=k)[1], queries, self.batch_size)

  def set_search_params(self, leaves_to_search: Optional[int] = None,
                        reorder: Optional[int] = None) -> None:
    self.layer.set_search_params(leaves_to_search, reorder)


class Exact(Method):
  """``core.linalg.exact_top_k``; no index to build."""

  def __init__(self, block_size: int = 256):
    self.block_size = block_size

  def build(self, database, k):
    self.database = database

  def search(self, queries, k):
    return exact_top_k(queries, self.database, k, block_size=self.block_size)[1]


class _Faiss(Method):
  """A faiss index over inner products; subclasses make it in ``_make``."""

  def build(self, database, k):
    self.index = self._make(database)
    self.index.add(database)

  def _make(self, database):
    raise NotImplementedError

  def search(self, queries, k):
    return self.index.search(np.ascontiguousarray(queries), k)[1].astype(np.int64)


def _faiss():
  import faiss  # pylint: disable=g-import-not-at-top
  return faiss


class FaissFlat(_Faiss):
  """faiss ``IndexFlatIP`` (exact, BLAS + heaps)."""

  def _make(self, database):
    return _faiss().IndexFlatIP(database.shape[1])


def _training_rows(database: np.ndarray, train_size: int, seed: int) -> np.ndarray:
  """A seeded sample of ``min(train_size, N)`` database rows, float32 [n, D]."""
  rng = np.random.default_rng(seed)
  return database[rng.choice(len(database), min(train_size, len(database)), replace=False)]


class FaissIVF(_Faiss):
  """faiss ``IndexIVFFlat`` (inner product), trained on a seeded sample of the database."""

  def __init__(self, nlist: int = 2048, nprobe: int = 16, train_size: int = 200_000,
               seed: int = 0):
    self.nlist, self.nprobe, self.train_size, self.seed = nlist, nprobe, train_size, seed

  def _make(self, database):
    faiss = _faiss()
    dim = database.shape[1]
    self.quantizer = faiss.IndexFlatIP(dim)  # the IVF index does not own it
    ix = faiss.IndexIVFFlat(self.quantizer, dim, min(self.nlist, len(database)),
                            faiss.METRIC_INNER_PRODUCT)
    ix.train(_training_rows(database, self.train_size, self.seed))
    ix.nprobe = self.nprobe
    return ix

  def set_search_params(self, nprobe: int) -> None:
    self.index.nprobe = nprobe


class FaissIVFPQFastScanRefine(_Faiss):
  """faiss ``IndexIVFPQFastScan`` inside ``IndexRefineFlat`` (inner product): faiss's
  counterpart of ScaNN's tree + asymmetric hashing + reordering.

  Each of the ``nlist`` inverted lists stores 4-bit product-quantization codes (``m``
  sub-quantizers of 16 centres, scored with SIMD lookup tables, as ScaNN's LUT16); the
  ``k_factor`` · k best by those scores among the ``nprobe`` probed lists are rescored
  exactly from the float32 rows. Trained on a seeded sample of the database.
  """

  def __init__(self, nlist: int = 2048, m: int = 32, nprobe: int = 16, k_factor: int = 4,
               train_size: int = 200_000, seed: int = 0):
    self.nlist, self.m, self.nprobe, self.k_factor = nlist, m, nprobe, k_factor
    self.train_size, self.seed = train_size, seed

  def _make(self, database):
    faiss = _faiss()
    dim = database.shape[1]
    if dim % self.m:
      raise ValueError(f"FaissIVFPQFastScanRefine: m={self.m} sub-quantizers must divide "
                       f"the vector size {dim}")
    self.quantizer = faiss.IndexFlatIP(dim)  # neither wrapper owns the inner indexes
    self.ivf = faiss.IndexIVFPQFastScan(self.quantizer, dim, min(self.nlist, len(database)),
                                        self.m, 4, faiss.METRIC_INNER_PRODUCT)
    self.ivf.train(_training_rows(database, self.train_size, self.seed))
    self.ivf.nprobe = self.nprobe
    ix = faiss.IndexRefineFlat(self.ivf)
    ix.k_factor = self.k_factor
    return ix

  def set_search_params(self, nprobe: Optional[int] = None,
                        k_factor: Optional[int] = None) -> None:
    """None keeps the current value."""
    if nprobe is not None:
      self.ivf.nprobe = nprobe
    if k_factor is not None:
      self.index.k_factor = k_factor


class FaissHNSW(_Faiss):
  """faiss ``IndexHNSWFlat`` (inner product)."""

  def __init__(self, m: int = 32, ef_construction: int = 64, ef_search: int = 64):
    self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search

  def _make(self, database):
    faiss = _faiss()
    ix = faiss.IndexHNSWFlat(database.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
    ix.hnsw.efConstruction = self.ef_construction
    ix.hnsw.efSearch = self.ef_search
    return ix

  def set_search_params(self, ef_search: int) -> None:
    self.index.hnsw.efSearch = ef_search


class Hnswlib(Method):
  """hnswlib ``Index(space="ip")``: an HNSW graph with ``m`` links per node built with
  ``ef_construction``, searched with ``ef`` candidates (all threads for build and search)."""

  def __init__(self, m: int = 32, ef_construction: int = 64, ef: int = 64, seed: int = 0):
    self.m, self.ef_construction, self.ef, self.seed = m, ef_construction, ef, seed

  def build(self, database, k):
    import hnswlib  # pylint: disable=g-import-not-at-top
    n, dim = database.shape
    self.index = hnswlib.Index(space="ip", dim=dim)
    self.index.init_index(max_elements=n, M=self.m, ef_construction=self.ef_construction,
                          random_seed=self.seed)
    self.index.add_items(database, np.arange(n))
    self.index.set_ef(self.ef)

  def search(self, queries, k):
    return self.index.knn_query(np.ascontiguousarray(queries), k=k)[0].astype(np.int64)

  def set_search_params(self, ef: int) -> None:
    self.index.set_ef(ef)


class Reloaded(Method):
  """Searches through an exported index SavedModel (``serving_default``) in batches.

  ``build`` loads the SavedModel at ``path`` (the database argument is unused: the index
  is inside the model); the signature input is ``query_embedding`` [B, D].
  """

  def __init__(self, path: str, batch_size: int = 4096):
    self.path, self.batch_size = path, batch_size

  def build(self, database, k):
    self.serve = index_lib.load_serving_fn(self.path)

  def search(self, queries, k):
    return _batched(lambda q: self.serve(query_embedding=tf.constant(q))["ids"][:, :k],
                    queries, self.batch_size)
