"""Spherical k-means in TensorFlow, cluster naming, centroid linkage and a 2-D post map.

Spherical k-means clusters unit vectors by cosine similarity: each point goes to the
centroid with the largest inner product, and each centroid is the L2-normalised sum of its
points. Initialisation is k-means++ on the cosine distance ``1 - cos``; the restart with the
largest total cosine (the objective) wins.
"""

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf


@dataclasses.dataclass
class KMeansResult:
  """centroids float32 [k, dim] (unit rows), labels int [N], objective = Σ cos(x, c(x))."""
  centroids: np.ndarray
  labels: np.ndarray
  objective: float
  iterations: int


def _normalize(x: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)


def kmeans_plus_plus(x: tf.Tensor, k: int, seed: tf.Tensor) -> tf.Tensor:
  """k-means++ seeding on cosine distance.

  Args:
    x: float32 [N, dim] unit rows.
    k: number of centroids.
    seed: int32 [2] stateless random seed.

  Returns:
    float32 [k, dim] initial centroids (rows of x).
  """
  n = tf.shape(x)[0]
  first = tf.random.stateless_uniform([], seed, 0, n, dtype=tf.int32)
  chosen = [first]
  dist = tf.maximum(1.0 - tf.linalg.matvec(x, x[first]), 0.0)
  for j in range(1, k):
    # P(i) ∝ D(i)^2; points identical to a chosen centroid get probability 0.
    logits = tf.math.log(tf.square(dist) + 1e-30)
    nxt = tf.random.stateless_categorical(logits[None, :], 1, seed + j, dtype=tf.int32)[0, 0]
    chosen.append(nxt)
    dist = tf.minimum(dist, tf.maximum(1.0 - tf.linalg.matvec(x, x[nxt]), 0.0))
  return tf.gather(x, tf.stack(chosen))


@tf.function(reduce_retracing=True)
def _lloyd(x: tf.Tensor, centroids: tf.Tensor, max_iter: tf.Tensor, tol: tf.Tensor):
  """Spherical Lloyd iterations until the objective improves by < tol."""
  k = tf.shape(centroids)[0]

  def step(c):
    labels = tf.argmax(tf.matmul(x, c, transpose_b=True), axis=1, output_type=tf.int32)
    sums = tf.math.unsorted_segment_sum(x, labels, k)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(labels), labels, k)
    # An empty cluster keeps its previous centroid.
    new_c = tf.where(counts[:, None] > 0, _normalize(sums), c)
    obj = tf.reduce_sum(tf.reduce_max(tf.matmul(x, new_c, transpose_b=True), axis=1))
    return new_c, labels, obj

  c, labels, obj = step(centroids)
  i = tf.constant(1)
  prev = obj - 2.0 * tol - 1.0
  while i < max_iter and obj - prev > tol:
    prev = obj
    c, labels, obj = step(c)
    i += 1
  labels = tf.argmax(tf.matmul(x, c, transpose_b=True), axis=1, output_type=tf.int32)
  obj = tf.reduce_sum(tf.reduce_max(tf.matmul(x, c, transpose_b=True), axis=1))
  return c, labels, obj, i


def spherical_kmeans(embeddings: np.ndarray, k: int = 10, restarts: int = 10,
                     max_iter: int = 100, seed: int = 0, tol: float = 1e-6) -> KMeansResult:
  """Spherical k-means with k-means++ init and several restarts.

  Args:
    embeddings: float [N, dim]; rows are L2-normalised here.
    k: number of clusters (clipped to N).
    restarts: independent k-means++ initialisations; the best objective is kept.
    max_iter: Lloyd iterations per restart at most.
    seed: base seed; restart r uses (seed, r).
    tol: stop when the objective (sum of cosines) improves by less than this.

  Returns:
    KMeansResult of the best restart.
  """
  x = _normalize(tf.constant(np.asarray(embeddings, np.float32)))
  n = int(x.shape[0])
  if n == 0:
    raise ValueError("spherical_kmeans needs at least one embedding")
  k = max(1, min(k, n))
  best = None
  for r in range(restarts):
    init = kmeans_plus_plus(x, k, tf.constant([seed, r], tf.int32))
    c, labels, obj, it = _lloyd(x, init, tf.constant(max_iter), tf.constant(tol))
    if best is None or float(obj) > best.objective + 1e-9:
      best = KMeansResult(c.numpy(), labels.numpy().astype(np.int64), float(obj), int(it))
  return best


def name_clusters(centroids: np.ndarray, tag_names: Sequence[str], tag_embeddings: np.ndarray,
                  post_embeddings: np.ndarray, num_tags: int = 3,
                  num_posts: int = 4) -> List[Tuple[List[str], List[int]]]:
  """Names each cluster by its nearest tags and lists its nearest posts.

  Args:
    centroids: float [k, dim] unit rows.
    tag_names: T names; tag_embeddings float [T, dim] unit rows.
    post_embeddings: float [N, dim] unit rows.

  Returns:
    Per cluster: (the ``num_tags`` nearest tag names, the ``num_posts`` nearest post indices).
  """
  ts = centroids @ np.asarray(tag_embeddings).T
  ps = centroids @ np.asarray(post_embeddings).T
  out = []
  for j in range(len(centroids)):
    tags = [tag_names[i] for i in np.argsort(-ts[j], kind="stable")[:num_tags]]
    posts = [int(i) for i in np.argsort(-ps[j], kind="stable")[:num_posts]]
    out.append((tags, posts))
  return out


def centroid_linkage(centroids: np.ndarray) -> np.ndarray:
  """Ward linkage of the centroids on cosine distance, with optimal leaf ordering.

  Returns:
    scipy linkage matrix [k-1, 4].
  """
  from scipy.cluster import hierarchy
  from scipy.spatial.distance import pdist
  d = np.clip(pdist(np.asarray(centroids, np.float64), metric="cosine"), 0.0, None)
  return hierarchy.linkage(d, method="ward", optimal_ordering=True)


def cluster_quality(embeddings: np.ndarray, labels: np.ndarray,
                    categories: Sequence[str]) -> Tuple[float, float]:
  """(cosine silhouette, NMI of the cluster labels against each post's first category)."""
  from sklearn.metrics import normalized_mutual_info_score, silhouette_score
  n_labels = len(set(labels.tolist()))
  sil = (float(silhouette_score(embeddings, labels, metric="cosine"))
         if 1 < n_labels < len(labels) else float("nan"))
  nmi = float(normalized_mutual_info_score(list(categories), labels.tolist()))
  return sil, nmi


def project_2d(embeddings: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
  """2-D coordinates [N, 2] of the posts by PCA (numpy SVD) or UMAP (cosine)."""
  x = np.asarray(embeddings, np.float64)
  if method == "umap":
    import umap
    return umap.UMAP(n_components=2, metric="cosine", random_state=seed,
                     n_neighbors=min(15, len(x) - 1)).fit_transform(x)
  if method != "pca":
    raise ValueError(f"unknown projection {method!r}; expected 'pca' or 'umap'")
  x = x - x.mean(axis=0)
  u, s, _ = np.linalg.svd(x, full_matrices=False)
  return u[:, :2] * s[:2]
