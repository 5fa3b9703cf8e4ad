"""A light adapter on a frozen text tower, trained contrastively on a corpus's own pairs.

``ResidualAdapter`` maps the frozen tower's embeddings u (float32 [B, D]) to

    normalize((1 - w) * û + w * normalize(û + W2 · gelu(W1 · û + b1) + b2)),  û = normalize(u)

with W2 zero-initialised (an untrained adapter is the identity) and the fusion weight w
fixed at construction. ``train_adapter`` fits W1, b1, W2, b2 on precomputed frozen
embeddings of (anchor, positive) text pairs with a symmetric in-batch-negative softmax
loss, so the tower itself is never run during training. ``AdaptedTextEncoder`` chains a
text layer (tf.string [B] → [B, D]) and the adapter, the layer an ``ArticleTower`` wraps
for export (``text`` → ``embedding``).
"""

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
  """One adapter configuration (one trial of a search).

  Attributes:
    hidden: width of the adapter's hidden layer.
    steps: optimisation steps.
    temperature: softmax temperature of the contrastive loss.
    weight: fusion weight w of the adapted embedding against the frozen one (0: frozen).
    batch_size: anchors per step (at most the number of anchors with a positive); the
      other pairs of the batch are each pair's negatives.
    learning_rate: Adam learning rate.
  """
  hidden: int = 256
  steps: int = 200
  temperature: float = 0.05
  weight: float = 1.0
  batch_size: int = 64
  learning_rate: float = 1e-3

  def __post_init__(self):
    for name in ("hidden", "steps", "batch_size"):
      if getattr(self, name) < 1:
        raise ValueError(f"AdapterConfig.{name}={getattr(self, name)} must be >= 1")
    if not 0.0 <= self.weight <= 1.0:
      raise ValueError(f"AdapterConfig.weight={self.weight} must be in [0, 1]")
    if self.temperature <= 0 or self.learning_rate <= 0:
      raise ValueError("AdapterConfig.temperature and learning_rate must be > 0, got "
                       f"{self.temperature}, {self.learning_rate}")


class ResidualAdapter(tf.keras.layers.Layer):
  """Residual two-layer adapter with fusion weight ``weight`` (module docstring).

  Args:
    dim: embedding width D.
    hidden: hidden width.
    weight: fusion weight w in [0, 1].
    seed: seed of W1's initialiser.

  Call args:
    u: float32 [B, D].

  Returns:
    float32 [B, D] unit rows.
  """

  def __init__(self, dim: int, hidden: int, weight: float, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.dim, self.hidden, self.weight, self.seed = dim, hidden, weight, seed
    self.inner = tf.keras.layers.Dense(
        hidden, activation="gelu",
        kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed), name="inner")
    self.outer = tf.keras.layers.Dense(dim, kernel_initializer="zeros", name="outer")

  def adapted(self, u):
    """The adapted branch alone: float32 [B, D] → unit rows normalize(û + A(û))."""
    u = tf.math.l2_normalize(u, axis=-1)
    return tf.math.l2_normalize(u + self.outer(self.inner(u)), axis=-1)

  def call(self, u):
    mixed = (1.0 - self.weight) * tf.math.l2_normalize(u, axis=-1) \
        + self.weight * self.adapted(u)
    return tf.math.l2_normalize(mixed, axis=-1)

  def get_config(self):
    config = super().get_config()
    config.update({"dim": self.dim, "hidden": self.hidden, "weight": self.weight,
                   "seed": self.seed})
    return config


class AdaptedTextEncoder(tf.keras.layers.Layer):
  """A text layer followed by a ``ResidualAdapter``: tf.string [B] → float32 [B, D]."""

  def __init__(self, base: tf.keras.layers.Layer, adapter: ResidualAdapter, **kwargs):
    super().__init__(**kwargs)
    self.base = base
    self.adapter = adapter

  def call(self, texts):
    return self.adapter(self.base(texts))


def positives_by_anchor(owner: np.ndarray, num_anchors: int) -> List[np.ndarray]:
  """Rows of the positives of each anchor: owner int [M] (anchor of each positive) →
  one int array per anchor."""
  owner = np.asarray(owner, np.int64)
  if owner.size and (owner.min() < 0 or owner.max() >= num_anchors):
    raise ValueError(f"positive owners must lie in [0, {num_anchors}), got "
                     f"[{owner.min()}, {owner.max()}]")
  return [np.flatnonzero(owner == a) for a in range(num_anchors)]


def train_adapter(anchors: np.ndarray, positives: np.ndarray, owner: Sequence[int],
                  config: AdapterConfig, seed: int = 0) -> Tuple[ResidualAdapter, List[float]]:
  """Trains a ``ResidualAdapter`` on frozen embeddings of (anchor, positive) pairs.

  Each step draws up to ``batch_size`` distinct anchors that have a positive and one of
  each one's positives at random; the loss is the mean of the anchor → positive and
  positive → anchor softmax cross-entropies over the batch (logits: cosines of the
  adapted branch / temperature), so every other pair of the batch is a negative.

  Args:
    anchors: float32 [N, D] frozen embeddings of the anchors.
    positives: float32 [M, D] frozen embeddings of the positives.
    owner: int [M], the anchor row of each positive.
    config: the adapter configuration.
    seed: seeds the initialiser and the batch draws.

  Returns:
    The adapter and its loss at every step (float, ``config.steps`` values).

  Raises:
    ValueError: shapes disagree, or fewer than two anchors have a positive.
  """
  anchors = np.asarray(anchors, np.float32)
  positives = np.asarray(positives, np.float32)
  if anchors.ndim != 2 or positives.ndim != 2 or anchors.shape[1] != positives.shape[1]:
    raise ValueError(f"anchors [N, D] and positives [M, D] must share D, got "
                     f"{anchors.shape} and {positives.shape}")
  if len(owner) != len(positives):
    raise ValueError(f"owner has {len(owner)} entries for {len(positives)} positives")
  groups = positives_by_anchor(owner, len(anchors))
  eligible = np.array([a for a, g in enumerate(groups) if g.size], np.int64)
  if eligible.size < 2:
    raise ValueError(f"{eligible.size} anchors have a positive; in-batch negatives need "
                     "at least 2")
  batch = min(config.batch_size, eligible.size)
  adapter = ResidualAdapter(anchors.shape[1], config.hidden, config.weight, seed=seed)
  adapter.build(tf.TensorShape([None, anchors.shape[1]]))
  optimizer = tf.keras.optimizers.Adam(config.learning_rate)
  labels = tf.range(batch)
  scale = 1.0 / config.temperature

  @tf.function(input_signature=[tf.TensorSpec([batch, anchors.shape[1]], tf.float32)] * 2)
  def step(a, p):
    with tf.GradientTape() as tape:
      logits = tf.matmul(adapter.adapted(a), adapter.adapted(p), transpose_b=True) * scale
      loss = 0.5 * (
          tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
          + tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
              labels, tf.transpose(logits))))
    variables = adapter.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  rng = np.random.default_rng(seed)
  losses = []
  for _ in range(config.steps):
    rows = rng.choice(eligible, size=batch, replace=False)
    picks = np.array([rng.choice(groups[a]) for a in rows], np.int64)
    losses.append(float(step(anchors[rows], positives[picks])))
  return adapter, losses
