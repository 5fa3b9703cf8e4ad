"""Pins the TFRS internals that tfrs_emb.retrieval.index relies on.

``index.ScaNN`` replaces TFRS's ``_build_searcher`` closure (to expose ScaNN's
anisotropic threshold and sample sizes) and reads ``_serialized_searcher``,
``_identifiers``, ``_k`` and ``_parallelize_batch_searches`` in its ``call``;
``export_index`` reads ``_k``. A TFRS upgrade that renames any of them must fail here,
loudly, rather than silently building TFRS's default searcher.
"""

import inspect

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_emb.retrieval import index


def test_tfrs_version_is_the_pinned_one():
  assert tfrs.__version__.lstrip("v") == "0.7.7", (
      f"tensorflow-recommenders {tfrs.__version__}: re-check the private attributes pinned "
      "in this file before moving the pin in pyproject.toml")


def test_scann_index_calls_the_replaceable_build_searcher():
  source = inspect.getsource(tfrs.layers.factorized_top_k.ScaNN.index)
  assert "self._serialized_searcher = self._build_searcher(" in source
  assert "self._identifiers" in source


def test_private_attributes_exist_after_indexing():
  layer = index.ScaNN(k=2, num_leaves=2, num_leaves_to_search=2, training_iterations=2)
  for name in ("_build_searcher", "_k", "_parallelize_batch_searches"):
    assert hasattr(layer, name), f"TFRS ScaNN lost {name}"
  vectors = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
  layer.index(tf.constant(vectors), tf.constant([str(i) for i in range(16)]))
  assert layer._serialized_searcher is not None  # pylint: disable=protected-access
  assert layer._identifiers.shape == (16,)  # pylint: disable=protected-access
  brute = tfrs.layers.factorized_top_k.BruteForce(k=3)
  assert brute._k == 3  # pylint: disable=protected-access
