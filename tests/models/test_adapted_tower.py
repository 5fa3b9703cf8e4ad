"""The residual adapter: identity before training, its contrastive loss falls, and the
adapted tower's SavedModel reloads with the in-process embeddings."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.encoders.use_multilingual import UseMultilingualEncoder
from tfrs_emb.experiments.techblog_tower import export_tower
from tfrs_emb.models.adapted_tower import AdapterConfig
from tfrs_emb.models.adapted_tower import ResidualAdapter
from tfrs_emb.models.adapted_tower import train_adapter


def _pairs(n=40, d=32, seed=0):
  """Anchors and noisy positives of n clusters: positive i is anchor i plus noise."""
  rng = np.random.default_rng(seed)
  anchors = l2_normalize(rng.standard_normal((n, d)))
  positives = l2_normalize(anchors + 0.9 * rng.standard_normal((n, d)))
  return anchors, positives, np.arange(n)


def test_untrained_adapter_is_the_identity_on_unit_rows():
  u = _pairs()[0]
  adapter = ResidualAdapter(u.shape[1], hidden=8, weight=0.7, seed=1)
  np.testing.assert_allclose(adapter(tf.constant(u)).numpy(), u, atol=1e-6)


def test_contrastive_loss_falls_and_settings_are_checked():
  anchors, positives, owner = _pairs()
  config = AdapterConfig(hidden=64, steps=60, temperature=0.1, weight=1.0, batch_size=16,
                         learning_rate=1e-2)
  adapter, losses = train_adapter(anchors, positives, owner, config, seed=0)
  assert len(losses) == 60 and np.all(np.isfinite(losses))
  assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
  out = adapter(tf.constant(anchors)).numpy()
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match="weight=1.5 must be in"):
    AdapterConfig(weight=1.5)
  with pytest.raises(ValueError, match="1 anchors have a positive"):
    train_adapter(anchors, positives[:1], owner[:1], config)
  with pytest.raises(ValueError, match="owner has 2 entries for 40 positives"):
    train_adapter(anchors, positives, owner[:2], config)


def test_adapted_use_tower_export_reloads_with_parity(tmp_path):
  use = UseMultilingualEncoder()
  texts = ["Goのテスト入門", "AWS Lambdaの設定を説明します", "Vue.js slots", ""]
  base = use(tf.constant(texts)).numpy()
  anchors, positives, owner = _pairs(n=24, d=base.shape[1])
  adapter, _ = train_adapter(anchors, positives, owner,
                             AdapterConfig(hidden=32, steps=5, weight=0.5), seed=0)
  exported = export_tower(use, adapter, str(tmp_path / "tower"), 1, texts)
  assert exported["path"] == str(tmp_path / "tower" / "1")
  assert exported["reload_min_cosine"] > 0.9999 and exported["size_bytes"] > 1e6
  serve = tf.saved_model.load(exported["path"]).signatures["serving_default"]
  got = serve(text=tf.constant(texts))["embedding"].numpy()
  np.testing.assert_allclose(got, adapter(tf.constant(base)).numpy(), atol=1e-5)
  assert not np.allclose(got, base, atol=1e-3)  # the adapter changed the embeddings
