"""Blog recommendations from post embeddings: related, diverse and personalised lists."""

from typing import List, Optional, Sequence

import numpy as np

from tfrs_emb.core.linalg import exact_top_k
from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.core.linalg import top_k_excluding_self


class BlogRecommender:
  """Recommendations over a blog's posts.

  Args:
    post_ids: N post identifiers.
    embeddings: float [N, dim] post embeddings (rows are L2-normalised here).
    dates: N sortable publication dates (for ``diverse``: newest first).
    clusters: int [N] cluster of each post (for ``diverse``), e.g. spherical k-means labels.
  """

  def __init__(self, post_ids: Sequence[str], embeddings: np.ndarray,
               dates: Optional[Sequence] = None, clusters: Optional[Sequence[int]] = None):
    e = np.asarray(embeddings, np.float32)
    if e.ndim != 2 or e.shape[0] != len(post_ids):
      raise ValueError(f"embeddings must be [N={len(post_ids)}, dim], got {e.shape}")
    self.post_ids = list(post_ids)
    self.embeddings = l2_normalize(e)
    self.dates = list(dates) if dates is not None else None
    self.clusters = np.asarray(clusters) if clusters is not None else None
    self._index = {p: i for i, p in enumerate(self.post_ids)}
    if len(self._index) != len(self.post_ids):
      raise ValueError("post_ids must be unique")

  def _row(self, post) -> int:
    if isinstance(post, (int, np.integer)):
      if not 0 <= post < len(self.post_ids):
        raise IndexError(f"post index {post} out of range [0, {len(self.post_ids)})")
      return int(post)
    if post not in self._index:
      raise KeyError(f"unknown post id {post!r}")
    return self._index[post]

  def related(self, post, k: int = 4) -> List[str]:
    """The k posts most similar (cosine) to ``post`` (an id or row index), itself excluded."""
    i = self._row(post)
    _, rows = top_k_excluding_self(self.embeddings[i:i + 1], self.embeddings, [i], k)
    return [self.post_ids[j] for j in rows[0] if j >= 0]

  def diverse(self, post, k: int = 1, related_k: int = 4) -> List[str]:
    """Newest posts of ``post``'s cluster that are not itself nor in ``related(post)``.

    Returns up to k ids (newest first); empty when the cluster has no other post.
    """
    if self.clusters is None or self.dates is None:
      raise ValueError("diverse() needs dates and clusters")
    i = self._row(post)
    skip = {i} | {self._index[p] for p in self.related(i, related_k)}
    same = [j for j in np.flatnonzero(self.clusters == self.clusters[i]) if j not in skip]
    same.sort(key=lambda j: (self.dates[j], self.post_ids[j]), reverse=True)
    return [self.post_ids[j] for j in same[:k]]

  def personalized(self, history: Sequence, k: int = 4) -> List[str]:
    """Posts nearest the mean embedding of the reader's history, read posts excluded."""
    rows = [self._row(p) for p in history]
    if not rows:
      raise ValueError("personalized() needs a non-empty reading history")
    query = l2_normalize(self.embeddings[rows].mean(axis=0, keepdims=True))
    read = set(rows)
    # The read posts may all rank first: fetch k more than needed, then drop them.
    _, found = exact_top_k(query, self.embeddings, k + len(read))
    return [self.post_ids[j] for j in found[0] if j not in read][:k]
