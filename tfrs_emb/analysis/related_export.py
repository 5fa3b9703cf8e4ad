"""Related-articles SavedModel: text → the blog's k most similar post ids and scores.

The Keras text tower embeds the query text; a TFRS ``BruteForce`` index over the blog's
post embeddings returns the top k by inner product (= cosine, the tower's rows being unit
vectors). Exported in TF Serving layout with signature ``serving_default``:
``text`` tf.string [None] → ``ids`` tf.string [None, k], ``scores`` float32 [None, k].
"""

import pathlib
from typing import Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_emb.serving import save_for_serving


class RelatedArticles(tf.keras.Model):
  """Tower + BruteForce index over the blog's posts.

  Args:
    tower: Keras layer/model, tf.string [B] → float32 [B, dim] (L2-normalised).
    post_ids: N post ids (strings) returned by the index.
    post_embeddings: float32 [N, dim] embeddings of the posts by the same tower.
    k: number of related posts returned (clipped to N).
  """

  def __init__(self, tower, post_ids: Sequence[str], post_embeddings: np.ndarray,
               k: int = 4, **kwargs):
    super().__init__(**kwargs)
    if len(post_ids) != len(post_embeddings):
      raise ValueError(f"{len(post_ids)} post ids but {len(post_embeddings)} embeddings")
    self.tower = tower
    self.k = int(min(k, len(post_ids)))
    self.index = tfrs.layers.factorized_top_k.BruteForce(query_model=tower, k=self.k)
    self.index.index(tf.constant(np.asarray(post_embeddings, np.float32)),
                     tf.constant([str(p) for p in post_ids]))

  def call(self, text: tf.Tensor):
    """text tf.string [B] → {'ids': tf.string [B, k], 'scores': float32 [B, k]}."""
    scores, ids = self.index(text, k=self.k)
    return {"ids": ids, "scores": scores}

  def get_config(self):
    return {"k": self.k}


def export_related_articles(tower, post_ids: Sequence[str], post_embeddings: np.ndarray,
                            export_dir: "str | pathlib.Path", k: int = 4,
                            version: Optional[int] = 1) -> pathlib.Path:
  """Builds ``RelatedArticles`` and saves it under ``export_dir/<version>``.

  Returns:
    The version folder written.
  """
  model = RelatedArticles(tower, post_ids, post_embeddings, k=k)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve(text):
    return model(text)

  return save_for_serving(model, export_dir, {"serving_default": serve}, version=version)


def load_related_articles(path: "str | pathlib.Path"):
  """Loads the exported model; returns a callable list[str] → (ids [B, k] str, scores)."""
  fn = tf.saved_model.load(str(path)).signatures["serving_default"]

  def related(texts: Sequence[str]):
    out = fn(text=tf.constant(list(texts)))
    ids = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(out["ids"].numpy())
    return ids, out["scores"].numpy()

  return related
