"""BruteForce and ScaNN retrieval indexes with a query model in front, exported for TF Serving.

One SavedModel answers raw input (text, case elements, or a query embedding) with the
top-k string ids and scores of an embedding matrix:

  raw input --query_model--> query embedding [B, D] --index--> ids [B, k], scores [B, k]

Usage (the same for any Keras query model, e.g. a text → article-embedding tower)::

  import tfrs_emb
  import tensorflow as tf
  from tfrs_emb.retrieval import build_brute_force, build_scann, export_index

  # embeddings: float32 [N, D]; ids: N strings; tower: Keras model, raw input → [B, D].
  index = build_brute_force(embeddings, ids, query_model=tower, k=4)
  scores, top_ids = index(tf.constant(["query text"]))      # [1, 4] float32, [1, 4] string
  path = export_index(index, "exported_models/related_articles",
                      input_signature=tf.TensorSpec([None], tf.string, name="text"))
  # path == exported_models/related_articles/1; serving_default(text=...) →
  #   {"ids": string [B, 4], "scores": float32 [B, 4]}

  ann = build_scann(embeddings, ids, k=10, config=ScannConfig(
      num_leaves=1000, num_leaves_to_search=50, num_reordering_candidates=100))
  # query_model=None: the input is [B, D]
  ann.set_search_params(leaves_to_search=30, reorder=60)   # search-time knobs, no rebuild
  export_index(ann, "exported_models/jader_scann")  # saved with the "Scann" op namespace

``ScannConfig(anisotropic_quantization_threshold=0.2)`` switches on ScaNN's
score-aware quantization (TFRS's layer leaves it off); ``trainers.bench_retrieval`` shows
its effect and picks the search knobs on validation queries.

Unknown input: an index whose query model is a ``CaseEncoder`` adds ``known_elements``
(int32 [B]) to its answer; a case with no known element gets ids "" and scores -inf
rather than arbitrary ids::

  enc = CaseEncoder(vocab, vectors)
  index = build_brute_force(case_embeddings, case_ids, query_model=enc, k=10)
  export_index(index, "exported_models/jader_similar_cases",
               input_signature=tf.TensorSpec([None, None], tf.string, name="elements"))
  # serving_default(elements=[["drug:未知", ""]]) →
  #   {"ids": [["", ...]], "scores": [[-inf, ...]], "known_elements": [0]}

Query embeddings (no query model): the input is checked in the graph, so TF Serving and
the C++ loader answer the same. A query of the wrong dimension fails naming the input
and the expected size ("input query_embedding: expected [batch, 32] float32 query
embeddings, got shape] [2 5]"); a query that is all zeros or holds NaN / ±inf gets ids ""
and scores -inf, and the answer adds ``valid_query`` (bool [B], False for such a row),
as the CaseEncoder path does with ``known_elements``::

  index = build_brute_force(case_embeddings, case_ids, k=10)
  export_index(index, "exported_models/jader_bruteforce")
  # serving_default(query_embedding=[[0, ..., 0], [nan, ...], [0.1, ...]]) →
  #   {"ids": [["", ...], ["", ...], ["c7", ...]], "scores": [[-inf, ...], [-inf, ...],
  #    [0.93, ...]], "valid_query": [False, False, True]}

``input_signature`` may be one ``tf.TensorSpec`` (its ``name`` becomes the signature input
name) or a dict ``name → TensorSpec``. When omitted it is taken from a functional query
model's inputs, or is ``query_embedding: float32 [None, D]`` when there is no query model.
Reload with ``tf.saved_model.load(path).signatures["serving_default"](**inputs)``; a
ScaNN SavedModel needs the ScaNN TF ops loaded in the process (``import scann``), or a TF
Serving build that links them (see BUILD_NOTES.md).
"""

import dataclasses
from typing import Mapping, Optional, Sequence, Union

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_emb.core import serving

SpecLike = Union[tf.TensorSpec, Mapping[str, tf.TensorSpec]]


# "int8" brute force is left out: ScaNN's TF ops cannot serialize such a searcher
# ("Searcher needs original dataset"), so it could not be exported.
SCORINGS = ("ah", "float32")


class ScaNN(tfrs.layers.factorized_top_k.ScaNN):
  """TFRS ScaNN layer that also exposes the anisotropic-quantization knobs.

  Same as ``tfrs.layers.factorized_top_k.ScaNN`` (tree partitioning, asymmetric hashing,
  optional exact reordering), plus ``anisotropic_quantization_threshold`` (ScaNN's
  score-aware loss; NaN = plain product quantization, as TFRS uses) and the training
  sample sizes. Output of ``call``: (scores float32 [B, k], identifiers [B, k]).

  ``scoring``: how candidates in the searched leaves are scored: "ah" (asymmetric hashing,
  TFRS's choice) or "float32" (exact brute force within the leaves, like faiss IVF-Flat);
  the optional reordering rescores in float32.

  ``spherical``: spherical k-means for the tree (centroids on the unit sphere; for unit
  rows). ``quantize_centroids``: the query is scored against int8 centroids (cheaper
  leaf selection, slightly coarser).

  ``cache_searcher``: TFRS re-creates the searcher from its serialized tensors on every
  call; with True, eager calls reuse one searcher built at the first call (traced and
  saved functions keep the TFRS behaviour, so SavedModels are unchanged).
  """

  def __init__(self, query_model: Optional[tf.keras.Model] = None, k: int = 10,
               distance_measure: str = "dot_product", num_leaves: int = 100,
               num_leaves_to_search: int = 10, training_iterations: int = 12,
               dimensions_per_block: int = 2,
               num_reordering_candidates: Optional[int] = None,
               anisotropic_quantization_threshold: float = float("nan"),
               training_sample_size: int = 100_000, scoring: str = "ah",
               spherical: bool = False, quantize_centroids: bool = False,
               parallelize_batch_searches: bool = True, cache_searcher: bool = False,
               name: Optional[str] = None):
    if scoring not in SCORINGS:
      raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    super().__init__(query_model=query_model, k=k, distance_measure=distance_measure,
                     num_leaves=num_leaves, num_leaves_to_search=num_leaves_to_search,
                     training_iterations=training_iterations,
                     dimensions_per_block=dimensions_per_block,
                     num_reordering_candidates=num_reordering_candidates,
                     parallelize_batch_searches=parallelize_batch_searches, name=name)
    self._config = dict(
        k=k, distance_measure=distance_measure, num_leaves=num_leaves,
        num_leaves_to_search=num_leaves_to_search, training_iterations=training_iterations,
        dimensions_per_block=dimensions_per_block,
        num_reordering_candidates=num_reordering_candidates,
        anisotropic_quantization_threshold=anisotropic_quantization_threshold,
        training_sample_size=training_sample_size, scoring=scoring, spherical=spherical,
        quantize_centroids=quantize_centroids,
        parallelize_batch_searches=parallelize_batch_searches, cache_searcher=cache_searcher)
    self._cache_searcher = cache_searcher
    self._eager_searcher = None
    self._search_leaves = -1
    self._search_reorder = -1
    from scann import scann_ops  # pylint: disable=g-import-not-at-top
    from scann.scann_ops.py.scann_builder import ReorderType  # pylint: disable=g-import-not-at-top
    import uuid  # pylint: disable=g-import-not-at-top

    def build_searcher(candidates):
      num_items = int(candidates.shape[0])
      sample = min(training_sample_size, num_items)
      builder = scann_ops.builder(db=candidates, num_neighbors=k,
                                  distance_measure=distance_measure)
      builder = builder.tree(num_leaves=min(num_leaves, num_items),
                             num_leaves_to_search=min(num_leaves_to_search, num_leaves,
                                                      num_items),
                             training_iterations=training_iterations,
                             training_sample_size=sample, spherical=spherical,
                             quantize_centroids=quantize_centroids)
      if scoring == "ah":
        builder = builder.score_ah(
            dimensions_per_block=dimensions_per_block,
            anisotropic_quantization_threshold=anisotropic_quantization_threshold,
            training_sample_size=sample)
      else:
        builder = builder.score_brute_force(quantize=ReorderType.FLOAT32)
      if num_reordering_candidates is not None:
        builder = builder.reorder(num_reordering_candidates)
      return builder.build(shared_name=f"{self.name}/{uuid.uuid4()}")

    self._build_searcher = build_searcher
    self._scann_ops = scann_ops

  def index(self, candidates: tf.Tensor, identifiers: Optional[tf.Tensor] = None) -> "ScaNN":
    self._eager_searcher = None
    return super().index(candidates, identifiers)

  def set_search_params(self, leaves_to_search: Optional[int] = None,
                        reorder: Optional[int] = None) -> "ScaNN":
    """Search-time overrides (no rebuild): leaves scored and candidates reordered.

    None keeps the values the index was built with. They apply to eager calls and to
    functions traced afterwards (so an export carries them).
    """
    self._search_leaves = -1 if leaves_to_search is None else int(leaves_to_search)
    self._search_reorder = -1 if reorder is None else int(reorder)
    self._config.update(search_leaves_to_search=leaves_to_search, search_reorder=reorder)
    return self

  def call(self, queries, k: Optional[int] = None):
    if self._serialized_searcher is None:
      raise ValueError("The `index` method must be called first to create the retrieval "
                       "index.")
    k = k if k is not None else self._k
    if self._cache_searcher and tf.executing_eagerly():
      if self._eager_searcher is None:
        self._eager_searcher = self._scann_ops.searcher_from_module(self._serialized_searcher)
      searcher = self._eager_searcher
    else:
      searcher = self._scann_ops.searcher_from_module(self._serialized_searcher)
    if self.query_model is not None:
      queries = self.query_model(queries)
    if not isinstance(queries, tf.Tensor) or len(queries.shape) != 2:
      raise ValueError(f"queries must be a rank-2 tensor [B, D] after the query model, "
                       f"got {queries!r}")
    search = (searcher.search_batched_parallel if self._parallelize_batch_searches
              else searcher.search_batched)
    leaves, reorder = self._search_leaves, self._search_reorder
    result = search(queries, final_num_neighbors=k,
                    leaves_to_search=None if leaves < 0 else leaves,
                    pre_reorder_num_neighbors=None if reorder < 0 else reorder)
    if self._identifiers is None:
      return result.distances, result.indices
    return result.distances, tf.gather(self._identifiers, result.indices)

  def get_config(self):
    return dict(self._config, name=self.name)


def _check_index_inputs(embeddings, ids) -> tuple:
  embeddings = np.asarray(embeddings, np.float32)
  if embeddings.ndim != 2 or embeddings.shape[0] == 0:
    raise ValueError(f"embeddings must be a non-empty float matrix [N, D], "
                     f"got shape {embeddings.shape}")
  if ids is None:
    ids = np.arange(embeddings.shape[0])
  ids = np.asarray([i.decode() if isinstance(i, bytes) else str(i) for i in ids], object)
  if ids.shape[0] != embeddings.shape[0]:
    raise ValueError(f"ids has {ids.shape[0]} entries but embeddings has "
                     f"{embeddings.shape[0]} rows; one string id per row is expected")
  return tf.constant(embeddings), tf.constant(ids, tf.string)


def build_brute_force(embeddings: np.ndarray, ids: Optional[Sequence] = None,
                      query_model: Optional[tf.keras.Model] = None, k: int = 10,
                      name: str = "brute_force") -> tfrs.layers.factorized_top_k.BruteForce:
  """Exact TFRS ``BruteForce`` index over ``embeddings`` with string ids.

  Args:
    embeddings: float32 [N, D] candidate embeddings (dot-product scores).
    ids: N ids (converted to strings); defaults to "0".."N-1".
    query_model: Keras model raw input → query embedding [B, D]; None = the index is
      queried with embeddings directly.
    k: default number of results.
    name: layer name.

  Returns:
    The indexed layer; ``layer(queries)`` → (scores float32 [B, k], ids string [B, k]).
  """
  candidates, identifiers = _check_index_inputs(embeddings, ids)
  layer = tfrs.layers.factorized_top_k.BruteForce(query_model=query_model, k=k, name=name)
  layer.embedding_dim = int(candidates.shape[1])
  return layer.index(candidates, identifiers)


@dataclasses.dataclass(frozen=True)
class ScannConfig:
  """Every build setting of a ScaNN index (``build_scann``), passed whole.

  Attributes:
    num_leaves: k-means partitions of the database (clipped to N).
    num_leaves_to_search: partitions scored per query (the default search setting).
    num_reordering_candidates: candidates rescored exactly; None = no reordering.
    dimensions_per_block: dimensions per AH sub-space (2 = finer, slower).
    anisotropic_quantization_threshold: ScaNN's score-aware quantization (e.g. 0.2);
      NaN = plain product quantization as in TFRS.
    training_iterations: k-means iterations of the tree.
    training_sample_size: rows sampled to train the tree and the codebooks.
    scoring: "ah" or "float32" scoring within the searched leaves (see ``ScaNN``).
    spherical: spherical k-means tree (see ``ScaNN``).
    quantize_centroids: int8 centroids for leaf selection (see ``ScaNN``).
  """
  num_leaves: int = 1000
  num_leaves_to_search: int = 50
  num_reordering_candidates: Optional[int] = 100
  dimensions_per_block: int = 2
  anisotropic_quantization_threshold: float = float("nan")
  training_iterations: int = 12
  training_sample_size: int = 100_000
  scoring: str = "ah"
  spherical: bool = False
  quantize_centroids: bool = False

  @classmethod
  def from_record(cls, record: Mapping) -> "ScannConfig":
    """The config of a record holding every field (e.g. a config-search point)."""
    return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})

  def with_search(self, leaves_to_search: int, reorder: int) -> "ScannConfig":
    """The same build searching ``leaves_to_search`` leaves and reordering ``reorder``."""
    return dataclasses.replace(self, num_leaves_to_search=leaves_to_search,
                               num_reordering_candidates=reorder)


def build_scann(embeddings: np.ndarray, ids: Optional[Sequence] = None,
                query_model: Optional[tf.keras.Model] = None, k: int = 10,
                config: ScannConfig = ScannConfig(), cache_searcher: bool = False,
                name: str = "scann") -> ScaNN:
  """Approximate ScaNN index (tree + asymmetric hashing + optional reordering).

  Args:
    embeddings: float32 [N, D] candidate embeddings (dot-product scores).
    ids: N ids (converted to strings); defaults to "0".."N-1".
    query_model: Keras model raw input → query embedding [B, D], or None.
    k: default number of results.
    config: the build settings (``ScannConfig``).
    cache_searcher: reuse one searcher across eager calls (see ``ScaNN``).
    name: layer name.

  Returns:
    The indexed layer; ``layer(queries)`` → (scores float32 [B, k], ids string [B, k]).
  """
  candidates, identifiers = _check_index_inputs(embeddings, ids)
  layer = ScaNN(query_model=query_model, k=k, cache_searcher=cache_searcher, name=name,
                **dataclasses.asdict(config))
  layer.embedding_dim = int(candidates.shape[1])
  return layer.index(candidates, identifiers)


def _resolve_signature(index: tfrs.layers.factorized_top_k.TopK,
                       input_signature: Optional[SpecLike]) -> list:
  """Returns a flat list of named TensorSpecs for the serving function."""
  if input_signature is None:
    qm = getattr(index, "query_model", None)
    if qm is None:
      dim = getattr(index, "embedding_dim", None)
      return [tf.TensorSpec([None, dim], tf.float32, name="query_embedding")]
    inputs = getattr(qm, "inputs", None)
    if not inputs:
      raise ValueError(
          f"cannot infer the serving input of query model {qm.name!r} (not a functional "
          "model with Keras Inputs); pass input_signature=tf.TensorSpec(shape, dtype, "
          "name=...) or a dict name → TensorSpec")
    return [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in inputs]
  if isinstance(input_signature, tf.TensorSpec):
    return [tf.TensorSpec(input_signature.shape, input_signature.dtype,
                          name=input_signature.name or "inputs")]
  if isinstance(input_signature, Mapping):
    return [tf.TensorSpec(s.shape, s.dtype, name=n) for n, s in input_signature.items()]
  raise TypeError(f"input_signature must be a tf.TensorSpec or a dict of them, "
                  f"got {type(input_signature).__name__}")


def valid_queries(queries: tf.Tensor, dim: int, name: str):
  """Checks query embeddings in the graph: (queries float32 [B, dim] with invalid rows
  zeroed, valid bool [B]). A row is valid when it is finite and not all zeros (a search
  with it would return arbitrary ids, or NaN scores / a ScaNN error). A second dimension
  other than ``dim`` fails with an InvalidArgumentError naming input ``name``."""
  queries = tf.convert_to_tensor(queries, tf.float32)
  check = tf.debugging.Assert(
      tf.equal(tf.shape(queries)[1], dim),
      [f"input {name}: expected [batch, {dim}] float32 query embeddings, got shape",
       tf.shape(queries)])
  with tf.control_dependencies([check]):
    queries = tf.identity(queries)
  valid = tf.logical_and(tf.reduce_all(tf.math.is_finite(queries), axis=1),
                         tf.reduce_any(tf.not_equal(queries, 0.0), axis=1))
  return tf.where(valid[:, None], queries, tf.zeros_like(queries)), valid


def no_answer_where(ids: tf.Tensor, scores: tf.Tensor, found: tf.Tensor) -> dict:
  """``ids`` string [B, k] and ``scores`` float32 [B, k] with the rows where ``found``
  (bool [B]) is False replaced by the defined "no answer": ids "" and scores -inf."""
  found = found[:, None]
  return {"ids": tf.where(found, ids, tf.fill(tf.shape(ids), "")),
          "scores": tf.where(found, scores, tf.fill(tf.shape(scores), -np.inf))}


class _ServingModule(tf.Module):
  """Holds the index (and its query model) and the serving function."""

  def __init__(self, index, specs, k):
    super().__init__()
    self.index = index
    self._dict_input = len(specs) > 1
    names = [s.name for s in specs]
    query_model = getattr(index, "query_model", None)
    # A query model that can embed nothing known (the CaseEncoder: zero vector) says so;
    # its answer for such a query would be arbitrary ids with score 0.
    count_known = getattr(query_model, "known_elements", None)
    embedding_input = query_model is None and len(specs) == 1
    dim = specs[0].shape[-1] if embedding_input else None
    dim = getattr(index, "embedding_dim", None) if dim is None else dim

    def serve(*args):
      queries = dict(zip(names, args)) if self._dict_input else args[0]
      if embedding_input:
        queries, valid = valid_queries(queries, dim, names[0])
        scores, ids = self.index(queries, k=k)
        return {**no_answer_where(ids, scores, valid), "valid_query": valid}
      scores, ids = self.index(queries, k=k)
      if count_known is None:
        return {"ids": ids, "scores": scores}
      known = count_known(queries)
      return {**no_answer_where(ids, scores, known > 0), "known_elements": known}

    self.serve = tf.function(serve, input_signature=specs)


def export_index(index: tfrs.layers.factorized_top_k.TopK, export_dir: str,
                 input_signature: Optional[SpecLike] = None, k: Optional[int] = None,
                 version: Optional[int] = 1) -> "serving.pathlib.Path":
  """Saves an index built here as a TF Serving SavedModel ``export_dir/VERSION/``.

  Args:
    index: a layer from ``build_brute_force`` / ``build_scann`` (or any TFRS TopK).
    export_dir: model base path (``exported_models/<name>``).
    input_signature: serving input (see the module docstring); inferred when None.
    k: results per query in the signature; defaults to the index's k.
    version: version folder; None = next free one.

  Returns:
    The version folder written. ``serving_default`` returns ``ids`` (string [B, k]) and
    ``scores`` (float32 [B, k]). When the query model has ``known_elements`` (the
    ``CaseEncoder``), it also returns ``known_elements`` (int32 [B]), and a query with
    none known gets ids "" and scores -inf instead of arbitrary neighbours of the zero
    vector. Without a query model the input is the query embedding: it also returns
    ``valid_query`` (bool [B]); an all-zero or non-finite query gets ids "" and scores
    -inf, and one of the wrong dimension fails naming the input and the expected size.
    ScaNN indexes are saved with the ``Scann`` op namespace allowed.
  """
  specs = _resolve_signature(index, input_signature)
  k = int(k if k is not None else index._k)  # pylint: disable=protected-access
  module = _ServingModule(index, specs, k)
  is_scann = isinstance(index, tfrs.layers.factorized_top_k.ScaNN)
  return serving.save_for_serving(
      module, export_dir, {"serving_default": module.serve.get_concrete_function()},
      version=version, namespace_allowlist=["Scann"] if is_scann else None)


def load_serving_fn(path: str):
  """Loads an exported index; returns its ``serving_default`` function.

  Imports ScaNN first so its custom ops are registered (needed for ScaNN exports).
  """
  try:
    import scann  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    pass
  return tf.saved_model.load(str(path)).signatures["serving_default"]
