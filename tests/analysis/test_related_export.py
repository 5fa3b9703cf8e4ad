"""The related-articles SavedModel: text → the k most similar post ids, reload parity."""

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.analysis.related_export import export_related_articles
from tfrs_emb.analysis.related_export import load_related_articles


class CharHashTower(tf.keras.layers.Layer):
  """Tiny test tower: mean of hashed character embeddings, L2-normalised. [B] → [B, 16]."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.hashing = tf.keras.layers.Hashing(num_bins=512)
    self.embedding = tf.keras.layers.Embedding(512, 16)

  def call(self, text):
    chars = tf.strings.unicode_split(text, "UTF-8")
    pooled = tf.reduce_mean(self.embedding(self.hashing(chars)), axis=1)
    return tf.math.l2_normalize(pooled, axis=-1)


def test_related_articles_savedmodel_reload(tmp_path):
  tf.keras.utils.set_random_seed(0)
  tower = CharHashTower()
  texts = ["Goのテスト入門", "AWS Lambdaの設定", "Vue.jsのslot", "Terraform 101",
           "BigQuery入門"]
  ids = [f"2020/post-{i}" for i in range(len(texts))]
  emb = tower(tf.constant(texts)).numpy()
  path = export_related_articles(tower, ids, emb, tmp_path / "related_articles", k=3)
  assert path == tmp_path / "related_articles" / "1"
  loaded = tf.saved_model.load(str(path))
  sig = loaded.signatures["serving_default"]
  assert sig.structured_input_signature[1]["text"].dtype == tf.string
  out = sig(text=tf.constant(texts))
  assert out["ids"].dtype == tf.string and out["ids"].shape == (5, 3)
  assert out["scores"].dtype == tf.float32
  related = load_related_articles(path)
  got_ids, got_scores = related(texts)
  # Same ids as searching the in-memory embeddings exactly.
  scores = tower(tf.constant(texts)).numpy() @ emb.T
  expected = np.array(ids, object)[np.argsort(-scores, axis=1)[:, :3]]
  np.testing.assert_array_equal(got_ids, expected)
  assert got_ids[:, 0].tolist() == ids  # each text's nearest post is itself
  np.testing.assert_allclose(got_scores, np.sort(scores, axis=1)[:, ::-1][:, :3], atol=1e-5)
  # A second export goes to version 2 with version=None; reload gives identical ids.
  path2 = export_related_articles(tower, ids, emb, tmp_path / "related_articles", k=3,
                                  version=None)
  assert path2.name == "2"
  np.testing.assert_array_equal(load_related_articles(path2)(texts)[0], got_ids)
