"""CBOW under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 vs one.

What MultiWorkerMirroredStrategy implies for ``train_cbow`` (checked by hand, see
BUILD_NOTES.md "Multi-worker training"): with the DATA auto-shard policy every worker
runs the whole numpy batch plan, each global batch is split by rows (worker 0 the first
half, worker 1 the second), each worker draws its own noise elements (keyed by step and
replica id), and the summed-loss gradients are all-reduced densely with SUM, so both
workers apply the same update and hold bit-identical variables.
The global batches themselves differ from a one-replica run (``train_cbow`` rounds the
rows of a batch to a multiple of the replica count), so against one worker the test
asserts what survives that: the same vocabulary, per-epoch loss and the quality of the
case neighbourhoods (class_agreement@10), not the same vectors.
"""


import numpy as np

from tfrs_emb.core import linalg
from tfrs_emb.data import jader, synthetic_jader
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tests.models import workers as launch


def _class_agreement(cases, result) -> float:
  rows = case_encoder.map_elements(cases.vocab, list(result["vocab"]))[cases.indices]
  emb = case_encoder.case_embeddings(cases.indptr, rows, result["vectors"], "mean")
  _, neighbors = linalg.exact_top_k(emb, emb, 11)
  return set_embeddings.class_agreement_at_k(neighbors, cases.latent_class, 10,
                                             np.arange(len(emb)))


def test_two_workers_agree_with_one(tmp_path):
  release = synthetic_jader.cached_release(tmp_path / "cache", 1000, seed=0)
  args = [f"--release={release}", "--epochs=4"]
  single, chief, other = launch.single_and_two_workers("trainers.cbow_worker", args, tmp_path,
                                                        "vectors.npz")
  assert int(single["replicas"]) == 1
  assert int(chief["replicas"]) == int(other["replicas"]) == 2
  # Mirrored variables: every step applied the same all-reduced update on both workers.
  np.testing.assert_array_equal(chief["vectors"], other["vectors"])
  np.testing.assert_array_equal(chief["vocab"], single["vocab"])

  # Same training as one worker, up to the different grouping of rows into batches
  # (training seeds 0-2 measured: loss per epoch within 5 %; class_agreement within 0.016
  # with K = shared_negatives noise rows per set, within 0.041 / 0.001 / 0.064 since each
  # set draws max(K, set length) of them).
  assert single["loss"][-1] < single["loss"][0] - 0.5   # both runs really train
  np.testing.assert_allclose(chief["loss"], single["loss"], rtol=0.08)
  cases = jader.load_cases(release)
  multi_ca, single_ca = _class_agreement(cases, chief), _class_agreement(cases, single)
  untrained = np.random.default_rng(0).standard_normal(single["vectors"].shape)
  random_ca = _class_agreement(cases, {"vocab": single["vocab"], "vectors": untrained})
  assert single_ca > random_ca + 0.2, (single_ca, random_ca)
  assert abs(multi_ca - single_ca) < 0.08, (multi_ca, single_ca)
