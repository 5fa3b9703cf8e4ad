"""Tag recommendation for blog posts: time split, `direct`, `mean` and `trained` tag embeddings.

A post is scored against every tag embedding by cosine; the top-5 tags are recommended.
Only tags seen on training posts can be recommended, so a test post's truth is its set of
tags that were seen in training (posts with none are not evaluated).

* ``direct``: the text encoder's embedding of the tag's name (the talk's first method).
* ``mean``: the normalised mean embedding of the training posts carrying the tag (the
  talk's second method).
* ``trained``: a TFRS retrieval model (``tfrs.tasks.Retrieval``) that learns the tag
  embeddings, initialised from ``mean``, against the frozen post embeddings.
"""

import dataclasses
import math
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.metrics import ndcg_at_k
from tfrs_emb.metrics import precision_at_k
from tfrs_emb.metrics import recall_at_k


@dataclasses.dataclass
class TagSplit:
  """Indices of train/test posts (by date) and the recommendable tag vocabulary."""
  train: np.ndarray
  test: np.ndarray
  tags: List[str]
  # Per test post: the indices (into ``tags``) of its recommendable tags.
  truth: List[List[int]]


def time_split(dates: Sequence, post_tags: Sequence[Sequence[str]],
               test_fraction: float = 0.17) -> TagSplit:
  """Newest ``test_fraction`` of posts evaluate (602 posts → 102), the rest train.

  Args:
    dates: sortable publication dates, one per post.
    post_tags: each post's tags.
    test_fraction: share of the newest posts held out (at least 1 post, at most N - 1).
  """
  n = len(dates)
  if n < 2:
    raise ValueError(f"a time split needs at least 2 posts, got {n}")
  order = sorted(range(n), key=lambda i: (dates[i], i))
  n_test = min(n - 1, max(1, int(round(n * test_fraction))))
  train, test = np.array(order[:n - n_test]), np.array(order[n - n_test:])
  vocab = sorted({t for i in train for t in post_tags[i]})
  index = {t: j for j, t in enumerate(vocab)}
  truth = [[index[t] for t in post_tags[i] if t in index] for i in test]
  return TagSplit(train, test, vocab, truth)


def direct_tag_embeddings(tags: Sequence[str], encode: Callable) -> np.ndarray:
  """float32 [T, dim]: the encoder's embedding of each tag's name."""
  return l2_normalize(encode(list(tags)))


def mean_tag_embeddings(tags: Sequence[str], post_embeddings: np.ndarray,
                        post_tags: Sequence[Sequence[str]],
                        rows: Sequence[int]) -> np.ndarray:
  """float32 [T, dim]: normalised mean embedding of the posts in ``rows`` carrying each tag."""
  index = {t: j for j, t in enumerate(tags)}
  sums = np.zeros((len(tags), post_embeddings.shape[1]), np.float64)
  for i in rows:
    for t in post_tags[i]:
      if t in index:
        sums[index[t]] += post_embeddings[i]
  return l2_normalize(sums)


class TagRetrievalModel(tfrs.Model):
  """Learns tag embeddings against frozen post embeddings with ``tfrs.tasks.Retrieval``.

  Each training example is one (post, tag) pair. The softmax runs over every tag (the
  positive plus all T tags as extra negatives), with the post's other tags masked out, so
  a post with several tags is not pushed away from any of them.

  Args:
    initial_tags: float32 [T, dim] initial tag embeddings (e.g. ``mean``).
    temperature: softmax temperature on cosine scores.
  """

  def __init__(self, initial_tags: np.ndarray, temperature: float = 0.05, **kwargs):
    super().__init__(**kwargs)
    self.num_tags, self.dim = initial_tags.shape
    self.temperature = temperature
    self.tag_table = tf.Variable(np.asarray(initial_tags, np.float32), name="tag_embeddings")
    self.task = tfrs.tasks.Retrieval(temperature=temperature)

  def tag_embeddings(self) -> tf.Tensor:
    """float32 [T, dim] unit rows."""
    return tf.math.l2_normalize(self.tag_table, axis=-1)

  def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """features: post float32 [B, dim], tag int32 [B], tag_mask bool [B, T] (post's tags)."""
    query = tf.math.l2_normalize(features["post"], axis=-1)
    tags = self.tag_embeddings()
    positives = tf.gather(tags, features["tag"])
    candidates = tf.concat([positives, tags], axis=0)  # [B + T, dim]
    b = tf.shape(query)[0]
    diagonal = tf.cast(tf.eye(b, b), tf.bool)
    score_mask = tf.concat([diagonal, tf.logical_not(features["tag_mask"])], axis=1)
    return self.task(query, candidates, score_mask=score_mask, compute_metrics=False,
                     compute_batch_metrics=False)

  def get_config(self):
    return {"num_tags": self.num_tags, "dim": self.dim, "temperature": self.temperature}


def trained_tag_embeddings(initial_tags: np.ndarray, post_embeddings: np.ndarray,
                           post_tag_ids: Sequence[Sequence[int]], rows: Sequence[int],
                           epochs: int = 20, batch_size: int = 64,
                           learning_rate: float = 1e-3, temperature: float = 0.05,
                           seed: int = 0) -> Tuple[np.ndarray, List[float]]:
  """Trains ``TagRetrievalModel`` on the (post, tag) pairs of the training posts.

  Args:
    initial_tags: float32 [T, dim].
    post_embeddings: float32 [N, dim] (frozen).
    post_tag_ids: per post, its tag indices into the T tags.
    rows: training post indices.
    seed: seed of the per-epoch shuffle of the pairs (the op seed of ``Dataset.shuffle``;
      TensorFlow mixes it with the global seed, which the trainers set and library code
      leaves alone).

  Returns:
    (learned tag embeddings float32 [T, dim] unit rows, loss per epoch).
  """
  num_tags = initial_tags.shape[0]
  pairs = [(i, t) for i in rows for t in post_tag_ids[i]]
  if not pairs:
    raise ValueError("no (post, tag) training pairs: training posts carry no tags")
  post_idx = np.array([p for p, _ in pairs])
  tag_idx = np.array([t for _, t in pairs], np.int32)
  mask = np.zeros((len(pairs), num_tags), bool)
  for r, i in enumerate(post_idx):
    mask[r, list(post_tag_ids[i])] = True
  ds = tf.data.Dataset.from_tensor_slices({
      "post": post_embeddings[post_idx].astype(np.float32), "tag": tag_idx, "tag_mask": mask})
  ds = ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
  model = TagRetrievalModel(initial_tags, temperature=temperature)
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))
  hist = model.fit(ds, epochs=epochs, verbose=0)
  return model.tag_embeddings().numpy(), [float(v) for v in hist.history["loss"]]


def recommend(post_embeddings: np.ndarray, tag_embeddings: np.ndarray, k: int = 5,
              tag_counts: "Sequence[int] | None" = None, decimals: int = 5) -> np.ndarray:
  """int [N, k]: indices of the k tags with the largest cosine, best first.

  Tags carried by the same single training post have identical ``mean`` embeddings, so
  exact ties are common; scores are rounded to ``decimals`` and ties go to the tag with
  more training posts (``tag_counts``), then the lower index, so float noise between two
  implementations of the same encoder cannot reorder them.
  """
  scores = np.round(l2_normalize(post_embeddings) @ l2_normalize(tag_embeddings).T, decimals)
  k = min(k, scores.shape[1])
  counts = np.zeros(scores.shape[1]) if tag_counts is None else np.asarray(tag_counts)
  index = np.arange(scores.shape[1])
  return np.stack([np.lexsort((index, -counts, -row))[:k] for row in scores]) \
      if len(scores) else np.zeros((0, k), np.int64)


def tag_counts(tags: Sequence[str], post_tags: Sequence[Sequence[str]],
               rows: Sequence[int]) -> np.ndarray:
  """int [T]: number of posts in ``rows`` carrying each tag."""
  index = {t: j for j, t in enumerate(tags)}
  counts = np.zeros(len(tags), np.int64)
  for i in rows:
    for t in post_tags[i]:
      if t in index:
        counts[index[t]] += 1
  return counts


def evaluate(ranked: np.ndarray, truth: Sequence[Sequence[int]], k: int = 5) -> Dict[str, float]:
  """Mean recall@k, precision@k, ndcg@k over posts with a non-empty truth."""
  rows = [(r.tolist(), t) for r, t in zip(ranked, truth) if t]
  if not rows:
    return {f"recall@{k}": math.nan, f"precision@{k}": math.nan, f"ndcg@{k}": math.nan,
            "evaluated": 0}
  return {
      f"recall@{k}": float(np.mean([recall_at_k(r, t, k) for r, t in rows])),
      f"precision@{k}": float(np.mean([precision_at_k(r, t, k) for r, t in rows])),
      f"ndcg@{k}": float(np.mean([ndcg_at_k(r, t, k) for r, t in rows])),
      "evaluated": len(rows),
  }
