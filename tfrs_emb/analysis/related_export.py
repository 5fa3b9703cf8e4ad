"""Related-articles SavedModel: text → the blog's k most similar post ids and scores.

The Keras text tower embeds the query text; the retrieval package's TFRS ``BruteForce``
index (``tfrs_emb.retrieval.build_brute_force``) over the blog's post embeddings returns
the top k by inner product (= cosine: the tower's rows are unit vectors). Exported with
``tfrs_emb.retrieval.export_index`` in TF Serving layout, signature ``serving_default``:
``text`` tf.string [None] → ``ids`` tf.string [None, k], ``scores`` float32 [None, k].
"""

import pathlib
from typing import Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.retrieval import build_brute_force
from tfrs_emb.retrieval import export_index
from tfrs_emb.retrieval import load_serving_fn


def export_related_articles(tower, post_ids: Sequence[str], post_embeddings: np.ndarray,
                            export_dir: "str | pathlib.Path", k: int = 4,
                            version: Optional[int] = 1) -> pathlib.Path:
  """Indexes the posts with BruteForce behind ``tower`` and saves it for TF Serving.

  Args:
    tower: Keras layer/model, tf.string [B] → float32 [B, dim] (L2-normalised).
    post_ids: N post ids returned by the model.
    post_embeddings: float32 [N, dim] embeddings of the posts by the same tower.
    export_dir: model base path (e.g. ``exported_models/related_articles``).
    k: related posts returned (clipped to N).
    version: version folder; None = next free one.

  Returns:
    The version folder written.
  """
  if len(post_ids) != len(post_embeddings):
    raise ValueError(f"{len(post_ids)} post ids but {len(post_embeddings)} embeddings")
  index = build_brute_force(np.asarray(post_embeddings, np.float32),
                            [str(p) for p in post_ids], query_model=tower,
                            k=int(min(k, len(post_ids))))
  return export_index(index, str(export_dir), version=version,
                      input_signature=tf.TensorSpec([None], tf.string, name="text"))


def load_related_articles(path: "str | pathlib.Path"):
  """Loads the exported model; returns a callable list[str] → (ids [B, k] str, scores)."""
  fn = load_serving_fn(str(path))

  def related(texts: Sequence[str]):
    out = fn(text=tf.constant(list(texts)))
    ids = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(out["ids"].numpy())
    return ids, out["scores"].numpy()

  return related
