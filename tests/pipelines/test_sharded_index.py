"""K index shards over disjoint ids + merge: the same top-k as one index (brute force),
a ScaNN recall@10 as one ScaNN index's, the export reloads, Vertex files index the same."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core.linalg import exact_top_k
from tfrs_emb.pipelines import embed
from tfrs_emb.pipelines import sharded_index
from tfrs_emb.pipelines import vectors
from tfrs_emb.retrieval import ScannConfig, build_brute_force, build_scann, load_serving_fn
from tests.pipelines.test_embed import IN_MEMORY, _set_records

N, D, K = 6000, 16, 10


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(40, D))
  x = (centers[rng.integers(0, 40, N)] + 0.5 * rng.normal(size=(N, D))).astype(np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  q = x[rng.choice(N, 200, replace=False)] + 0.1 * rng.normal(size=(200, D))
  return x, np.array([f"id-{i}" for i in range(N)], object), q.astype(np.float32)


def _ids(result):
  return result[1].numpy().astype(str)


def test_shards_are_disjoint_and_cover_every_id(data):
  _, ids, _ = data
  owner = sharded_index.shard_of(ids, 4)
  assert set(owner.tolist()) == {0, 1, 2, 3}
  assert np.array_equal(owner, sharded_index.shard_of(list(ids), 4))   # stable


def test_brute_force_shards_give_the_single_index_top_k(data, tmp_path):
  x, ids, q = data
  single = _ids(build_brute_force(x, ids, k=K)(tf.constant(q)))
  sharded = sharded_index.build_sharded(x, ids, "brute_force", shards=4, k=K)
  assert sum(sharded.sizes) == N
  np.testing.assert_array_equal(_ids(sharded(tf.constant(q))), single)
  serve = load_serving_fn(sharded_index.export_sharded(sharded, tmp_path / "idx"))
  out = serve(query_embedding=tf.constant(q))
  np.testing.assert_array_equal(out["ids"].numpy().astype(str), single)


def _recall(found, exact):
  return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


def test_scann_shards_recall_within_001_of_one_scann_index(data, tmp_path):
  x, ids, q = data
  exact = ids[exact_top_k(q, x, K)[1]]
  knobs = ScannConfig(num_leaves=80, num_leaves_to_search=8, num_reordering_candidates=40)
  single = _recall(_ids(build_scann(x, ids, k=K, config=knobs)(tf.constant(q))), exact)
  sharded = sharded_index.build_sharded(x, ids, "scann", shards=4, k=K, scann=knobs)
  recall = _recall(_ids(sharded(tf.constant(q))), exact)
  assert recall >= single - 0.01, (recall, single)
  serve = load_serving_fn(sharded_index.export_sharded(sharded, tmp_path / "idx"))
  assert _recall(serve(query_embedding=tf.constant(q))["ids"].numpy().astype(str),
                 exact) == recall


def test_vertex_files_reloaded_give_the_same_top_10(tmp_path, case_encoder_path):
  embed.embed_corpus(case_encoder_path, tmp_path / "out", records=_set_records(400),
                     beam_args=IN_MEMORY, vertex_files=3)
  p_ids, p_emb = vectors.read_vectors(tmp_path / "out")
  v_ids, v_emb = vectors.read_vectors(tmp_path / "out", source="vertex")
  queries = tf.constant(p_emb[:50])
  np.testing.assert_array_equal(_ids(build_brute_force(v_emb, v_ids, k=K)(queries)),
                                _ids(build_brute_force(p_emb, p_ids, k=K)(queries)))


def test_bad_shard_counts_are_named(data):
  x, ids, _ = data
  with pytest.raises(ValueError, match="shards must be in 1..3"):
    sharded_index.build_sharded(x[:3], ids[:3], shards=4)
  with pytest.raises(ValueError, match="kind must be one of"):
    sharded_index.build_sharded(x, ids, kind="faiss")
