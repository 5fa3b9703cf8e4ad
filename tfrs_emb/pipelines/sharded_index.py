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
exact top-k of the whole matrix. ScaNN's ``num_leaves`` and ``num_leaves_to_search`` are
given for the whole index and split evenly over the shards, so the shards together
partition and search as many leaves as one index would.

The export is one SavedModel that holds every shard and calls them in its signature; a
deployment that serves shards on separate machines would merge their answers the same way.
"""

import math
import pathlib
import zlib
from typing import Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import serving
from tfrs_emb.retrieval import build_brute_force, build_scann

KINDS = ("brute_force", "scann")


def shard_of(ids: Sequence[str], shards: int) -> np.ndarray:
  """int [N]: the shard of each id, ``crc32(utf-8 id) mod shards``."""
  return np.fromiter((zlib.crc32(str(i).encode("utf-8")) % shards for i in ids), np.int64,
                     count=len(ids))


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
                  shards: int = 4, k: int = 10, num_leaves: int = 1000,
                  num_leaves_to_search: int = 50, **scann_kwargs) -> ShardedIndex:
  """Builds ``shards`` indexes of ``kind`` over disjoint rows (see the module docstring).

  Args:
    embeddings: float32 [N, D].
    ids: N string ids (unique).
    kind: "brute_force" or "scann".
    shards: K ≥ 1 (at most N).
    k: results per query.
    num_leaves, num_leaves_to_search: ScaNN's, for the whole index (split over shards).
    **scann_kwargs: further ``build_scann`` arguments (e.g. ``num_reordering_candidates``).

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
      layer = build_scann(embeddings[rows], ids[rows], k=min(k, len(rows)),
                          num_leaves=max(1, math.ceil(num_leaves / shards)),
                          num_leaves_to_search=max(1, math.ceil(num_leaves_to_search / shards)),
                          name=name, **scann_kwargs)
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
