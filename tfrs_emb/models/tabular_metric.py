"""A learned metric embedding of table rows for neighbour-label retrieval.

TabR (Gorishniy et al. 2023) finds each row's nearest training rows with a *linear*
encoder of the raw features and L2 distance; a Transformer's [CLS] embedding, fine-tuned
with cross-entropy, instead collapses the training rows of a class together, so its
neighbours add little beyond the classifier. ``NeighborMetricEncoder`` is that linear
encoder, trained with neighbourhood component analysis (NCA, Goldberger et al. 2004): each
training row is classified by a softmax over its squared L2 distances to every *other*
training row (itself excluded), and the loss is the negative log of the probability mass
on rows of its own class.

Shapes: B rows, C continuous features, K categorical features, m embedding width, N
candidate (training) rows.
"""

import time
from typing import Dict, List, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

Features = Dict[str, np.ndarray]


class NeighborMetricEncoder(tf.keras.Model):
  """Additive linear row embedding: z = sum_c x_c w_c + sum_k E_k[id_k], float [B, m].

  Inputs as ``TabularEncoder``: ``continuous`` float [B, C] scaled (NaN = missing:
  the feature's learned missing vector replaces x_c w_c), ``categorical`` int [B, K]
  (id 0 missing, 1 out of vocabulary: learned rows like any other).
  """

  def __init__(self, num_continuous: int, cardinalities: Sequence[int], dim: int = 32,
               **kwargs):
    super().__init__(**kwargs)
    self.num_continuous = num_continuous
    self.cardinalities = tuple(int(c) for c in cardinalities)
    self.dim = dim
    self.embeddings = [tf.keras.layers.Embedding(
        c, dim, embeddings_initializer=tf.keras.initializers.RandomNormal(0, 0.3 / np.sqrt(dim)),
        name=f"categorical_{i}") for i, c in enumerate(self.cardinalities)]

  def build(self, input_shape):
    c, m = self.num_continuous, self.dim
    self.cont_kernel = self.add_weight(
        "cont_kernel", [c, m], initializer=tf.keras.initializers.RandomNormal(0, 1 / np.sqrt(m)))
    self.missing = self.add_weight("missing", [c, m], initializer="zeros")
    for e in self.embeddings:
      e.build(None)
    super().build(input_shape)

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Feature dict → [B, m]."""
    cont = tf.cast(inputs["continuous"], tf.float32)
    missing = tf.math.is_nan(cont)[:, :, None]  # [B, C, 1]
    terms = tf.where(missing, self.missing[None],
                     tf.where(missing, 0.0, cont[:, :, None]) * self.cont_kernel[None])
    z = tf.reduce_sum(terms, axis=1)  # [B, m]
    for i, e in enumerate(self.embeddings):
      z += e(inputs["categorical"][:, i])
    return z

  def get_config(self):
    return {**super().get_config(), "num_continuous": self.num_continuous,
            "cardinalities": list(self.cardinalities), "dim": self.dim}


def l2_scores(queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
  """-||q - x||^2 [B, N] of queries [B, m] to candidate rows [N, m] (TensorFlow twin of
  ``retrieval.neighbors.l2_neighbors``' scores)."""
  return (2.0 * tf.matmul(queries, candidates, transpose_b=True)
          - tf.reduce_sum(candidates ** 2, axis=1)[None]
          - tf.reduce_sum(queries ** 2, axis=1, keepdims=True))


def nca_loss(query_z: tf.Tensor, candidate_z: tf.Tensor, query_rows: tf.Tensor,
             candidate_y: tf.Tensor) -> tf.Tensor:
  """Leave-self-out NCA loss, mean over the queries that have another row of their class.

  Args:
    query_z: float [B, m]; the queries are candidates ``query_rows``.
    candidate_z: float [N, m].
    query_rows: int [B], each query's own row in the candidates (excluded).
    candidate_y: int [N] class ids.
  """
  scores = l2_scores(query_z, candidate_z)  # [B, N]
  is_self = tf.one_hot(query_rows, tf.shape(candidate_z)[0], on_value=True, off_value=False)
  scores = tf.where(is_self, tf.float32.min, scores)
  same = tf.logical_and(tf.equal(tf.gather(candidate_y, query_rows)[:, None],
                                 candidate_y[None]), tf.logical_not(is_self))
  has_same = tf.cast(tf.reduce_any(same, axis=1), tf.float32)
  own = tf.reduce_logsumexp(tf.where(same, scores, tf.float32.min), axis=1)
  loss = (tf.reduce_logsumexp(scores, axis=1) - own) * has_same
  return tf.reduce_sum(loss) / tf.maximum(tf.reduce_sum(has_same), 1.0)


def fit_neighbor_metric(encoder: NeighborMetricEncoder, features: Features,
                        labels: np.ndarray, *, epochs: int, batch_size: int, lr: float,
                        seed: int, deadline: float = float("inf")) -> List[float]:
  """Trains ``encoder`` with ``nca_loss``: each step's queries are a batch of the rows,
  its candidates all rows (memory O(batch_size x N)). Epoch e visits the rows in an order
  seeded by (seed, e). After the first epoch, no epoch starts that would end after
  ``deadline`` (a ``time.monotonic`` value) if it lasted as long as the last one. Returns
  the mean loss per epoch run."""
  cand = {k: tf.constant(v) for k, v in features.items()}
  cand_y = tf.constant(labels, tf.int32)
  optimizer = tf.keras.optimizers.Adam(lr)

  @tf.function
  def step(rows):
    with tf.GradientTape() as tape:
      z = encoder(cand)
      loss = nca_loss(tf.gather(z, rows), z, rows, cand_y)
    grads = tape.gradient(loss, encoder.trainable_variables)
    optimizer.apply_gradients(zip(grads, encoder.trainable_variables))
    return loss

  n, history, last_seconds = len(labels), [], 0.0
  for e in range(epochs):
    if e and time.monotonic() + last_seconds > deadline:
      break
    started = time.monotonic()
    order = np.random.default_rng([seed, e]).permutation(n).astype(np.int32)
    losses = [float(step(tf.constant(order[s:s + batch_size])))
              for s in range(0, n, batch_size)]
    history.append(float(np.mean(losses)))
    last_seconds = time.monotonic() - started
  return history


def embed_rows(encoder: NeighborMetricEncoder, features: Features,
               batch_size: int = 8192) -> np.ndarray:
  """Metric embeddings float32 [N, m]."""
  return np.concatenate([
      encoder({k: v[s:s + batch_size] for k, v in features.items()}).numpy()
      for s in range(0, len(features["continuous"]), batch_size)])
