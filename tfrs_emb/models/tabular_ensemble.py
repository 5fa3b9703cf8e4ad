"""TabM-mini ensembling of the tabular classifier (Gorishniy et al. 2024, TabM).

k members share one backbone: the encoder's tokenizer and Transformer. Member i sees the
feature tokens multiplied elementwise by its own adapter r_i [T, d] (TabM-mini: one
multiplicative adapter, at the input of the shared Transformer blocks) and has its own
linear head. Training puts the same batch through all k members (the backbone runs on
B·k rows) and minimises the mean of the k members' cross-entropies; prediction is the
mean of the k members' softmax probabilities. The adapters start at random signs ±1
(ones when k = 1), so the members differ from the first step.

Shapes: B rows, T tokens ([CLS] + features), d model width, k members, C classes.
"""

import math

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models.tabular import TabularClassifier, TabularEncoder


def _random_signs(shape, dtype=None):
  """±1 with probability 1/2 each (drawn from TensorFlow's seeded global generator)."""
  return tf.where(tf.random.uniform(shape) < 0.5, -1.0, 1.0)


class MemberAdapter(tf.keras.layers.Layer):
  """TabM-mini's multiplicative adapters: tokens [B, T, d] → [B·k, T, d], row b·k + i =
  r_i ⊙ tokens[b] with r [k, T, d] (trainable; random signs, or ones when k = 1)."""

  def __init__(self, members: int, **kwargs):
    super().__init__(**kwargs)
    if members < 1:
      raise ValueError(f"an ensemble needs at least 1 member, got {members}")
    self.members = members

  def build(self, input_shape):
    self.r = self.add_weight("r", [self.members, *input_shape[1:]],
                             initializer=_random_signs if self.members > 1 else "ones")
    super().build(input_shape)

  def call(self, tokens: tf.Tensor) -> tf.Tensor:
    x = tokens[:, None] * tf.cast(self.r, tokens.dtype)[None]   # [B, k, T, d]
    return tf.reshape(x, [-1, *x.shape[2:]])

  def get_config(self):
    return {**super().get_config(), "members": self.members}


class MemberDense(tf.keras.layers.Layer):
  """k separate linear heads: [B, k, d] → [B, k, units], member i through its own kernel
  [d, units] and bias [units] (each initialised like a fresh ``Dense``)."""

  def __init__(self, members: int, units: int, **kwargs):
    super().__init__(**kwargs)
    self.members, self.units = members, units

  def build(self, input_shape):
    d = int(input_shape[-1])
    limit = math.sqrt(6.0 / (d + self.units))   # Glorot uniform of one [d, units] kernel
    self.kernel = self.add_weight(
        "kernel", [self.members, d, self.units],
        initializer=tf.keras.initializers.RandomUniform(-limit, limit))
    self.bias = self.add_weight("bias", [self.members, self.units], initializer="zeros")
    super().build(input_shape)

  def call(self, x: tf.Tensor) -> tf.Tensor:
    return tf.einsum("bkd,kdu->bku", x, self.kernel) + self.bias[None]

  def get_config(self):
    return {**super().get_config(), "members": self.members, "units": self.units}


def mean_probability_logits(member_logits: tf.Tensor) -> tf.Tensor:
  """[B, k, C] member logits → [B, C] log of the members' mean softmax probabilities
  (logits whose softmax is the ensemble's prediction)."""
  k = tf.cast(tf.shape(member_logits)[1], member_logits.dtype)
  return tf.reduce_logsumexp(tf.nn.log_softmax(member_logits), axis=1) - tf.math.log(k)


class TabularEnsembleClassifier(TabularClassifier):
  """A ``TabularClassifier`` with ``ensemble_k`` TabM-mini members (module docstring).

  ``call`` / ``embed_and_logits`` give [B, C] logits = log of the members' mean
  probabilities, so prediction, validation accuracy and the serving export
  (``models.tabular_serving``) treat it as one classifier; the row embedding [B, d] is
  the mean of the members' [CLS] outputs. Training loss: the mean over members of the
  compiled loss on each member's logits.
  """

  def __init__(self, encoder: TabularEncoder, num_classes: int = 7, dropout: float = 0.1,
               encoder_lr_multiplier: float = 1.0, ensemble_k: int = 4, **kwargs):
    super().__init__(encoder, num_classes, dropout, encoder_lr_multiplier, **kwargs)
    self.ensemble_k = ensemble_k
    self.adapter = MemberAdapter(ensemble_k, name="adapter")
    self.head = MemberDense(ensemble_k, num_classes, name="head")

  def members(self, inputs, training=None) -> tf.Tensor:
    """Each member's [CLS] output [B, k, d]."""
    tokens = self.encoder.tokenizer(inputs["continuous"], inputs["categorical"])
    out = self.encoder.transform(self.adapter(tokens), training=training)   # [B·k, T, d]
    return tf.reshape(out[:, 0], [-1, self.ensemble_k, self.encoder.dim])

  def member_logits(self, inputs, training=None) -> tf.Tensor:
    """Each member's logits [B, k, C]."""
    return self.head(self.drop(self.members(inputs, training), training=training))

  def call(self, inputs, training=None):
    return mean_probability_logits(self.member_logits(inputs, training))

  def embed(self, inputs, training=None) -> tf.Tensor:
    return tf.reduce_mean(self.members(inputs, training), axis=1)

  def embed_and_logits(self, inputs):
    cls = self.members(inputs, training=False)
    return tf.reduce_mean(cls, axis=1), mean_probability_logits(self.head(cls))

  def loss_and_logits(self, x, y):
    member_logits = self.member_logits(x, training=True)
    y = tf.repeat(tf.reshape(y, [-1, 1]), self.ensemble_k, axis=1)   # [B, k]
    return self.compute_loss(x, y, member_logits), mean_probability_logits(member_logits)

  def get_config(self):
    return {**super().get_config(), "ensemble_k": self.ensemble_k}
