"""An index split into K shards over disjoint ids, merged into the global top-k.

Usage::

  index = build_sharded(embeddings, ids, kind="brute_force", shards=4, k=10)
  scores, top_ids = index(tf.constant(queries))    # [B, k] float32, [B, k] string
  path = export_sharded(index, "exported_models/corpus_index")
  # serving_default(query_embedding=float32 [B, D]) → {"ids": [B, k], "scores": [B, k]}

Each id goes to shard ``crc32(id) mod K`` (stable across runs and machines, so a shard
can be rebuilt alone). Each shard is one of the project's indexes
(``tfrs_emb.retrieval.build_brute_force`` / ``build_scann``) answering its own top-k; the
merge keeps the k best scores of the K·k candidates. With brute-force shards this is the
exact top-k of the whole matrix (rows with equal scores, e.g. duplicate vectors, may come
in another order or be exchanged at the k-th place). ScaNN's knobs apply to every shard unchanged: each shard
has ``num_leaves`` leaves of N/K rows and searches ``num_leaves_to_search`` of them, so
the K shards together score as many candidates per query as one index with the same
knobs, choosing the leaves among K × ``num_leaves`` finer centroids. (Splitting the leaves
over the shards instead, ``num_leaves``/K each with ``num_leaves_to_search``/K searched,
gives a lower recall at the same cost.)

The export is one SavedModel that holds every shard and calls them in its signature; a
deployment that serves shards on separate machines would merge their answers the same way.
"""

import pathlib
import uuid
import zlib
from typing import Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import serving
from tfrs_emb.retrieval import ScannConfig, build_brute_force, build_scann

KINDS = ("brute_force", "scann")


def shard_of(ids: Sequence[str], shards: int) -> np.ndarray:
  """int [N]: the shard of each id, ``crc32(utf-8 id) mod shards``."""
  return np.fromiter((zlib.crc32(str(i).encode("utf-8")) % shards for i in ids), np.int64,
                     count=len(ids))


def _own_searcher_name(layer) -> None:
  """Gives a ScaNN layer's reloadable searcher a shared name of its own.

  ScaNN's ``ScannState.recreate_handle`` creates the searcher resource with an empty
  shared name, so the op's node name becomes the resource name: in a reloaded SavedModel
  that holds several ScaNN layers, every layer then gets the searcher created first. The
  replacement passes the same tensors with a unique ``shared_name``.
  """
  from scann.scann_ops.py import scann_ops  # pylint: disable=import-outside-toplevel
  state = layer._serialized_searcher  # pylint: disable=protected-access
  shared_name = f"{layer.name}/{uuid.uuid4()}"

  @tf.function(input_signature=[])
  def recreate_handle():
    return scann_ops.tensors_to_scann(
        state.dataset, state.scann_config, state.serialized_partitioner,
        state.datapoint_to_token, state.ah_codebook, state.hashed_dataset,
        state.int8_dataset, state.int8_multipliers, state.dp_norms,
        shared_name=shared_name)

  state.recreate_handle = recreate_handle


class ShardedIndex(tf.Module):
  """K index layers over disjoint rows; ``__call__`` merges their top-k.

  Attributes:
    shards: the K TFRS top-k layers.
    sizes: rows per shard.
    k: default number of results.
    dim: embedding width D.
    kind: "brute_force" or "scann".
  """

  def __init__(self, shards: Sequence[tf.Module], sizes: Sequence[int], k: int, dim: int,
               kind: str):
    super().__init__(name="sharded_index")
    self.shards = list(shards)
    self.sizes = [int(s) for s in sizes]
    self.k = int(k)
    self.dim = int(dim)
    self.kind = kind

  def __call__(self, queries: tf.Tensor, k: Optional[int] = None):
    """queries float32 [B, D] → (scores float32 [B, k], ids string [B, k]), best first."""
    k = self.k if k is None else int(k)
    scores, ids = [], []
    for layer, size in zip(self.shards, self.sizes):
      s, i = layer(queries, k=min(k, size))
      scores.append(s)
      ids.append(i)
    scores, ids = tf.concat(scores, axis=1), tf.concat(ids, axis=1)
    top = tf.math.top_k(scores, k=min(k, sum(self.sizes)))
    return top.values, tf.gather(ids, top.indices, batch_dims=1)


def build_sharded(embeddings: np.ndarray, ids: Sequence[str], kind: str = "brute_force",
                  shards: int = 4, k: int = 10,
                  scann: ScannConfig = ScannConfig()) -> ShardedIndex:
  """Builds ``shards`` indexes of ``kind`` over disjoint rows (see the module docstring).

  Args:
    embeddings: float32 [N, D].
    ids: N string ids (unique).
    kind: "brute_force" or "scann".
    shards: K ≥ 1 (at most N).
    k: results per query.
    scann: the ScaNN build of every shard (kind "scann").

  Returns:
    The ``ShardedIndex``.
  """
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  embeddings = np.asarray(embeddings, np.float32)
  ids = np.asarray([str(i) for i in ids], object)
  if embeddings.ndim != 2 or len(ids) != len(embeddings):
    raise ValueError(f"embeddings must be [N, D] with one id per row; got shape "
                     f"{embeddings.shape} and {len(ids)} ids")
  if not 1 <= shards <= len(ids):
    raise ValueError(f"shards must be in 1..{len(ids)} (rows), got {shards}")
  owner = shard_of(ids, shards)
  layers, sizes = [], []
  for s in range(shards):
    rows = np.flatnonzero(owner == s)
    if not len(rows):
      raise ValueError(f"shard {s} of {shards} got no rows; use fewer shards")
    name = f"shard_{s}"
    if kind == "brute_force":
      layer = build_brute_force(embeddings[rows], ids[rows], k=min(k, len(rows)), name=name)
    else:
      layer = build_scann(embeddings[rows], ids[rows], k=min(k, len(rows)), name=name,
                          config=scann)
      _own_searcher_name(layer)
    layers.append(layer)
    sizes.append(len(rows))
  return ShardedIndex(layers, sizes, k, embeddings.shape[1], kind)


def export_sharded(index: ShardedIndex, export_dir: "str | pathlib.Path",
                   version: Optional[int] = 1) -> pathlib.Path:
  """Saves ``index`` as one TF Serving SavedModel ``export_dir/VERSION``.

  ``serving_default``: ``query_embedding`` float32 [None, D] → ``ids`` string [None, k],
  ``scores`` float32 [None, k]. ScaNN shards are saved with the ``Scann`` op namespace
  (load with ``tfrs_emb.retrieval.load_serving_fn``, which registers ScaNN's ops).
  """

  @tf.function(input_signature=[tf.TensorSpec([None, index.dim], tf.float32,
                                              name="query_embedding")])
  def serve(query_embedding):
    scores, ids = index(query_embedding)
    return {"ids": ids, "scores": scores}

  return serving.save_for_serving(
      index, export_dir, {"serving_default": serve.get_concrete_function()},
      version=version, namespace_allowlist=["Scann"] if index.kind == "scann" else None)
