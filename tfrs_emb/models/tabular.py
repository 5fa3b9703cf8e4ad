"""Feature-tokenising Transformer for tables, its self-supervised pretrainer and classifier.

Shapes: B rows, C continuous features, K categorical features, F = C + K feature tokens,
T = F + 1 tokens with the leading [CLS], d model width.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf


def quantile_bin_edges(values: np.ndarray, num_bins: int) -> List[List[float]]:
  """Per-feature bin edges for the piecewise-linear encoding: the distinct quantiles
  0, 1/B, ..., 1 of each column's present (non-NaN) values; a column with fewer than two
  distinct values gets the one bin [v, v + 1].

  Args:
    values: float [N, C] (NaN = missing), the training rows.
    num_bins: B, bins per feature at most.
  Returns: C lists of edges (2 to B + 1 increasing floats each).
  """
  edges = []
  for column in np.asarray(values, np.float64).T:
    present = column[~np.isnan(column)]
    q = (np.unique(np.quantile(present, np.linspace(0.0, 1.0, num_bins + 1)))
         if len(present) else np.zeros(1))
    edges.append([float(v) for v in (q if len(q) >= 2 else [q[0], q[0] + 1.0])])
  return edges


def piecewise_linear_arrays(edges: Sequence[Sequence[float]]) -> Dict[str, np.ndarray]:
  """The [C, B] arrays of ``piecewise_linear``: bin left edges ``left``, widths
  ``width``, and float masks ``valid`` (a real bin), ``first`` and ``last`` (the
  feature's first / last bin), B the most bins of any feature (padded bins invalid)."""
  b = max(len(e) - 1 for e in edges)
  out = {k: np.zeros((len(edges), b), np.float32) for k in ("left", "valid", "first", "last")}
  out["width"] = np.ones((len(edges), b), np.float32)
  for c, e in enumerate(edges):
    e = np.asarray(e, np.float64)
    n = len(e) - 1
    out["left"][c, :n], out["width"][c, :n] = e[:-1], np.diff(e)
    out["valid"][c, :n], out["first"][c, 0], out["last"][c, n - 1] = 1.0, 1.0, 1.0
  return out


def piecewise_linear(x: tf.Tensor, left: tf.Tensor, width: tf.Tensor, valid: tf.Tensor,
                     first: tf.Tensor, last: tf.Tensor) -> tf.Tensor:
  """Piecewise-linear encoding (Gorishniy et al. 2022, PLE): x [B, C] → [B, C, bins].

  Bin t of a feature holds (x - left_t) / width_t clipped to [0, 1], except that the
  first bin is not clipped below and the last not above (values outside the training
  range extrapolate linearly); padded bins are 0. The arrays are
  ``piecewise_linear_arrays``' [C, bins].
  """
  r = (x[:, :, None] - left[None]) / width[None]
  r = tf.where(first[None] > 0, r, tf.maximum(r, 0.0))
  r = tf.where(last[None] > 0, r, tf.minimum(r, 1.0))
  return r * valid[None]


class FeatureTokenizer(tf.keras.layers.Layer):
  """Turns a row into T = 1 + C + K tokens of width d.

  Each continuous variable goes through its own Dense(1 → d) layer (``linear``), its own
  periodic encoding followed by its own Dense(2m → d) + ReLU (``periodic``, the PLR
  embedding of Gorishniy et al. 2022), or its piecewise-linear encoding over quantile
  bins of the training rows (``bin_edges``) followed by its own Dense(bins → d) + ReLU
  (``ple``, Gorishniy et al. 2022); the C per-feature Dense layers are stored as one
  [C, ·, d] kernel, which is the same computation. Each categorical variable has its own
  Embedding (its id 0 is the learned "missing" token, see ``tfrs_emb.data.table``). A
  continuous value that is NaN (missing) gets the feature's learned "missing" vector
  instead. A learned [CLS] token leads; masked feature tokens are replaced by a learned
  per-feature [MASK] vector.
  """

  def __init__(self, dim: int, num_continuous: int, cardinalities: Sequence[int],
               numeric_embedding: str = "linear", num_frequencies: int = 8,
               frequency_scale: float = 1.0,
               bin_edges: Optional[Sequence[Sequence[float]]] = None, **kwargs):
    super().__init__(**kwargs)
    if numeric_embedding not in ("linear", "periodic", "ple"):
      raise ValueError("numeric_embedding must be 'linear', 'periodic' or 'ple', got "
                       f"{numeric_embedding!r}")
    if numeric_embedding == "ple" and (bin_edges is None or len(bin_edges) != num_continuous):
      raise ValueError(f"numeric_embedding 'ple' needs bin_edges for each of the "
                       f"{num_continuous} continuous features")
    self.bin_edges = ([list(map(float, e)) for e in bin_edges]
                      if numeric_embedding == "ple" else None)
    self.dim = dim
    self.num_continuous = num_continuous
    self.cardinalities = tuple(int(c) for c in cardinalities)
    self.numeric_embedding = numeric_embedding
    self.num_frequencies = num_frequencies
    self.frequency_scale = frequency_scale
    self.embeddings = [tf.keras.layers.Embedding(c, dim, name=f"categorical_{i}")
                       for i, c in enumerate(self.cardinalities)]

  def build(self, input_shape):
    c, d = self.num_continuous, self.dim
    if self.numeric_embedding == "linear":
      self.cont_kernel = self.add_weight("cont_kernel", [c, 1, d],
                                         initializer=tf.keras.initializers.RandomNormal(0, 1.0))
    elif self.numeric_embedding == "ple":
      arrays = piecewise_linear_arrays(self.bin_edges)
      self.ple = {k: self.add_weight(f"ple_{k}", v.shape, trainable=False,
                                     initializer=tf.keras.initializers.Constant(v))
                  for k, v in arrays.items()}
      self.cont_kernel = self.add_weight("cont_kernel", [c, arrays["left"].shape[1], d],
                                         initializer="glorot_uniform")
    else:
      self.frequencies = self.add_weight(
          "frequencies", [c, self.num_frequencies],
          initializer=tf.keras.initializers.RandomNormal(0, self.frequency_scale))
      self.cont_kernel = self.add_weight("cont_kernel", [c, 2 * self.num_frequencies, d],
                                         initializer="glorot_uniform")
    self.cont_bias = self.add_weight("cont_bias", [c, d], initializer="zeros")
    self.missing_tokens = self.add_weight(
        "missing_tokens", [c, d], initializer=tf.keras.initializers.RandomNormal(0, 0.02))
    num_features = c + len(self.cardinalities)
    self.mask_tokens = self.add_weight("mask_tokens", [num_features, d],
                                       initializer=tf.keras.initializers.RandomNormal(0, 0.02))
    self.cls_token = self.add_weight("cls_token", [1, 1, d],
                                     initializer=tf.keras.initializers.RandomNormal(0, 0.02))
    for e in self.embeddings:
      e.build(None)
    super().build(input_shape)

  def call(self, continuous: tf.Tensor, categorical: tf.Tensor,
           token_mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """continuous float [B, C] (NaN = missing), categorical int [B, K], token_mask bool
    [B, F] → [B, T, d]."""
    continuous = tf.cast(continuous, self.compute_dtype)
    missing = tf.math.is_nan(continuous)  # [B, C]
    x = tf.where(missing, tf.zeros_like(continuous), continuous)[:, :, None]  # [B, C, 1]
    if self.numeric_embedding == "periodic":
      angles = 2.0 * 3.141592653589793 * x * self.frequencies[None]  # [B, C, m]
      x = tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)  # [B, C, 2m]
    elif self.numeric_embedding == "ple":
      x = piecewise_linear(x[:, :, 0], **{k: tf.cast(v, x.dtype)
                                          for k, v in self.ple.items()})  # [B, C, bins]
    cont = tf.einsum("bcm,cmd->bcd", x, self.cont_kernel) + self.cont_bias[None]
    if self.numeric_embedding != "linear":
      cont = tf.nn.relu(cont)
    cont = tf.where(missing[:, :, None], self.missing_tokens[None], cont)
    cats = [e(categorical[:, i]) for i, e in enumerate(self.embeddings)]  # K × [B, d]
    tokens = tf.concat([cont] + ([tf.stack(cats, axis=1)] if cats else []), axis=1)  # [B, F, d]
    if token_mask is not None:
      m = tf.cast(token_mask, tokens.dtype)[:, :, None]
      tokens = tokens * (1.0 - m) + self.mask_tokens[None] * m
    cls = tf.tile(self.cls_token, [tf.shape(tokens)[0], 1, 1])
    return tf.concat([cls, tokens], axis=1)

  def get_config(self):
    return {**super().get_config(), "dim": self.dim, "num_continuous": self.num_continuous,
            "cardinalities": list(self.cardinalities),
            "numeric_embedding": self.numeric_embedding,
            "num_frequencies": self.num_frequencies, "frequency_scale": self.frequency_scale,
            "bin_edges": self.bin_edges}


class TransformerBlock(tf.keras.layers.Layer):
  """Pre-norm Transformer encoder block: [B, T, d] → [B, T, d]."""

  def __init__(self, dim: int, num_heads: int = 8, ff_multiplier: int = 2,
               dropout: float = 0.1, **kwargs):
    super().__init__(**kwargs)
    if dim % num_heads:
      raise ValueError(f"width {dim} must be divisible by num_heads {num_heads}")
    self.dim, self.num_heads = dim, num_heads
    self.ff_multiplier, self.dropout = ff_multiplier, dropout
    self.norm1 = tf.keras.layers.LayerNormalization(epsilon=1e-5)
    self.attention = tf.keras.layers.MultiHeadAttention(num_heads, dim // num_heads,
                                                        dropout=dropout)
    self.norm2 = tf.keras.layers.LayerNormalization(epsilon=1e-5)
    self.ff1 = tf.keras.layers.Dense(dim * ff_multiplier, activation="gelu")
    self.ff2 = tf.keras.layers.Dense(dim)
    self.drop = tf.keras.layers.Dropout(dropout)

  def call(self, x: tf.Tensor, training=None) -> tf.Tensor:
    h = self.norm1(x)
    x = x + self.drop(self.attention(h, h, training=training), training=training)
    h = self.ff2(self.drop(self.ff1(self.norm2(x)), training=training))
    return x + self.drop(h, training=training)

  def get_config(self):
    return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
            "ff_multiplier": self.ff_multiplier, "dropout": self.dropout}


class TabularEncoder(tf.keras.Model):
  """Tokenizer + Transformer; the [CLS] output is the row embedding.

  Inputs: dict ``continuous`` float [B, C] (scaled: ``data.table.Scaler``),
  ``categorical`` int [B, K].
  """

  def __init__(self, dim: int = 64, num_continuous: int = 10,
               cardinalities: Sequence[int] = (4, 40), num_heads: int = 8,
               num_layers: int = 4, ff_multiplier: int = 2, dropout: float = 0.1,
               numeric_embedding: str = "linear", num_frequencies: int = 8,
               frequency_scale: float = 1.0,
               bin_edges: Optional[Sequence[Sequence[float]]] = None, **kwargs):
    super().__init__(**kwargs)
    self._config = dict(bin_edges=bin_edges, dim=dim, num_continuous=num_continuous,
                        cardinalities=list(cardinalities), num_heads=num_heads,
                        num_layers=num_layers, ff_multiplier=ff_multiplier, dropout=dropout,
                        numeric_embedding=numeric_embedding, num_frequencies=num_frequencies,
                        frequency_scale=frequency_scale)
    self.dim = dim
    self.num_continuous = num_continuous
    self.cardinalities = tuple(cardinalities)
    self.tokenizer = FeatureTokenizer(dim, num_continuous, cardinalities, numeric_embedding,
                                      num_frequencies, frequency_scale, bin_edges)
    self.blocks = [TransformerBlock(dim, num_heads, ff_multiplier, dropout, name=f"block_{i}")
                   for i in range(num_layers)]
    self.norm = tf.keras.layers.LayerNormalization(epsilon=1e-5)

  @property
  def num_features(self) -> int:
    return self.num_continuous + len(self.cardinalities)

  def call(self, inputs: Dict[str, tf.Tensor], token_mask: Optional[tf.Tensor] = None,
           training=None) -> tf.Tensor:
    """Returns all token outputs [B, T, d]; token 0 is [CLS]."""
    return self.transform(self.tokenizer(inputs["continuous"], inputs["categorical"],
                                         token_mask), training=training)

  def transform(self, tokens: tf.Tensor, training=None) -> tf.Tensor:
    """The Transformer blocks and final norm: tokens [B', T, d] → [B', T, d], any number
    of rows B' (e.g. B·k: each row once per ensemble member, ``models.tabular_ensemble``)."""
    x = tokens
    for block in self.blocks:
      x = block(x, training=training)
    return self.norm(x)

  def embed(self, inputs: Dict[str, tf.Tensor], training=None) -> tf.Tensor:
    """Row embedding [B, d] (the [CLS] output)."""
    return self(inputs, training=training)[:, 0]

  def get_config(self):
    return dict(self._config)


def _mlp(hidden: int, out: int, name: str) -> tf.keras.Sequential:
  return tf.keras.Sequential([tf.keras.layers.Dense(hidden), tf.keras.layers.LayerNormalization(),
                              tf.keras.layers.ReLU(), tf.keras.layers.Dense(out)], name=name)


def _negative_cosine(p: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
  """Mean of -cos(p, stop_gradient(z)) over rows; p, z [B, e]."""
  p = tf.math.l2_normalize(p, axis=-1)
  z = tf.math.l2_normalize(tf.stop_gradient(z), axis=-1)
  return -tf.reduce_mean(tf.reduce_sum(p * z, axis=-1))


class TabularPretrainer(tf.keras.Model):
  """Self-supervised pretraining: masked-feature modelling + SimSiam on two corrupted views.

  Each view: every feature is, independently with probability ``corruption_rate``, replaced
  by its value in a random row of the batch (SCARF: a draw from the feature's empirical
  marginal), then each feature token is masked with probability ``mask_rate``. The
  masked-feature loss regresses the original scaled continuous values (MSE) and
  classifies the original categorical ids (cross-entropy) at every masked or corrupted
  position, in both views. The contrastive loss is SimSiam's symmetric negative cosine
  between the predictor output of one view and the stop-gradient projection of the other.
  ``loss = mfm_weight * mfm + contrastive_weight * contrastive``. Missing cells (NaN
  continuous values, categorical id 0) are never reconstruction targets.

  Corruption and masks are drawn from the model's own ``tf.random.Generator`` (seeded by
  ``seed``, saved in checkpoints), so a resumed pretraining draws what an uninterrupted
  one would.

  Fit on a dataset of feature dicts (no labels).
  """

  def __init__(self, encoder: TabularEncoder, projection_dim: int = 128,
               mask_rate: float = 0.15, corruption_rate: float = 0.3,
               mfm_weight: float = 1.0, contrastive_weight: float = 1.0, seed: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    self.encoder = encoder
    self.seed = seed
    self.rng = tf.random.Generator.from_seed(seed)
    self.mask_rate, self.corruption_rate = mask_rate, corruption_rate
    self.mfm_weight, self.contrastive_weight = mfm_weight, contrastive_weight
    self.projector = _mlp(projection_dim, projection_dim, "projector")
    self.predictor = _mlp(max(projection_dim // 4, 8), projection_dim, "predictor")
    d, c = encoder.dim, encoder.num_continuous
    self.cont_head_kernel = self.add_weight("cont_head_kernel", [c, d],
                                            initializer="glorot_uniform")
    self.cont_head_bias = self.add_weight("cont_head_bias", [c], initializer="zeros")
    self.cat_heads = [tf.keras.layers.Dense(k, name=f"cat_head_{i}")
                      for i, k in enumerate(encoder.cardinalities)]
    self.trackers = {n: tf.keras.metrics.Mean(n) for n in
                     ("loss", "mfm_loss", "contrastive_loss", "cont_mse", "cat_accuracy")}

  @property
  def metrics(self):
    return list(self.trackers.values())

  def call(self, inputs, training=None):
    return self.encoder.embed(inputs, training=training)

  def _view(self, inputs):
    cont, cat = inputs["continuous"], inputs["categorical"]
    b = tf.shape(cont)[0]
    f = self.encoder.num_features
    c = self.encoder.num_continuous
    rows = self.rng.uniform([f, b], 0, b, dtype=tf.int32)
    corrupt = self.rng.uniform([b, f]) < self.corruption_rate
    shuffled_cont = tf.transpose(tf.gather(tf.transpose(cont), rows[:c], batch_dims=1))
    shuffled_cat = tf.transpose(tf.gather(tf.transpose(cat), rows[c:], batch_dims=1))
    view = {"continuous": tf.where(corrupt[:, :c], shuffled_cont, cont),
            "categorical": tf.where(corrupt[:, c:], shuffled_cat, cat)}
    mask = self.rng.uniform([b, f]) < self.mask_rate
    return view, mask, tf.logical_or(mask, corrupt)

  def _pretrain_losses(self, inputs, training):
    c = self.encoder.num_continuous
    outs, mfm_terms, mse_terms, acc_terms = [], [], [], []
    for _ in range(2):
      view, mask, target = self._view(inputs)
      tokens = self.encoder(view, token_mask=mask, training=training)  # [B, T, d]
      feats = tokens[:, 1:]
      pred = tf.einsum("bcd,cd->bc", feats[:, :c], self.cont_head_kernel) + self.cont_head_bias
      present = tf.logical_not(tf.math.is_nan(inputs["continuous"]))
      w = tf.cast(tf.logical_and(target[:, :c], present), tf.float32)
      truth = tf.where(present, inputs["continuous"], tf.zeros_like(pred))
      mse = tf.reduce_sum(w * tf.square(pred - truth)) / tf.maximum(tf.reduce_sum(w), 1.0)
      ce_total, acc_total = 0.0, 0.0
      for i, head in enumerate(self.cat_heads):
        logits = head(feats[:, c + i])
        labels = tf.cast(inputs["categorical"][:, i], tf.int32)
        wi = tf.cast(tf.logical_and(target[:, c + i], labels != 0), tf.float32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        hit = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        denom = tf.maximum(tf.reduce_sum(wi), 1.0)
        ce_total += tf.reduce_sum(wi * ce) / denom
        acc_total += tf.reduce_sum(wi * hit) / denom
      mfm_terms.append(mse + ce_total)
      mse_terms.append(mse)
      acc_terms.append(acc_total / max(len(self.cat_heads), 1))
      z = self.projector(tokens[:, 0], training=training)
      outs.append((z, self.predictor(z, training=training)))
    (z1, p1), (z2, p2) = outs
    contrastive = 0.5 * (_negative_cosine(p1, z2) + _negative_cosine(p2, z1))
    mfm = 0.5 * (mfm_terms[0] + mfm_terms[1])
    loss = self.mfm_weight * mfm + self.contrastive_weight * contrastive
    return {"loss": loss, "mfm_loss": mfm, "contrastive_loss": contrastive,
            "cont_mse": 0.5 * (mse_terms[0] + mse_terms[1]),
            "cat_accuracy": 0.5 * (acc_terms[0] + acc_terms[1])}

  def _record(self, values):
    for name, value in values.items():
      self.trackers[name].update_state(value)
    return {name: t.result() for name, t in self.trackers.items()}

  def train_step(self, data):
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      values = self._pretrain_losses(data, training=True)
      # The optimizer sums the replicas' gradients: scale each replica's mean loss so the
      # update is their average (one replica: the loss itself, unchanged).
      loss = values["loss"] / replicas if replicas > 1 else values["loss"]
    grads = tape.gradient(loss, self.trainable_variables)
    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
    return self._record(values)

  def test_step(self, data):
    return self._record(self._pretrain_losses(data, training=False))

  def get_config(self):
    return {"mask_rate": self.mask_rate, "corruption_rate": self.corruption_rate,
            "seed": self.seed,
            "mfm_weight": self.mfm_weight, "contrastive_weight": self.contrastive_weight}


def _apply_used(optimizer, grads, variables):
  """Applies the gradients of the variables the loss used: the encoder's mask tokens
  (pretraining's corruption only) have none while a classifier trains."""
  optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])


class TabularClassifier(tf.keras.Model):
  """Encoder + linear head on the [CLS] embedding: features → logits [B, num_classes].

  With ``encoder_lr_multiplier`` ≠ 1 the encoder gets its own Adam whose learning rate is
  the compiled optimizer's times the multiplier (a smaller LR keeps pretrained weights).
  """

  def __init__(self, encoder: TabularEncoder, num_classes: int = 7, dropout: float = 0.1,
               encoder_lr_multiplier: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.encoder = encoder
    self.num_classes = num_classes
    self.head_dropout = dropout
    self.encoder_lr_multiplier = encoder_lr_multiplier
    self.drop = tf.keras.layers.Dropout(dropout)
    self.head = tf.keras.layers.Dense(num_classes, name="head")
    self.encoder_optimizer = None

  def compile(self, optimizer, **kwargs):
    super().compile(optimizer=optimizer, **kwargs)
    if self.encoder_lr_multiplier != 1.0:
      lr = float(tf.keras.backend.get_value(optimizer.learning_rate))
      self.encoder_optimizer = type(optimizer)(learning_rate=lr * self.encoder_lr_multiplier)

  def call(self, inputs, training=None):
    return self.head(self.drop(self.encoder.embed(inputs, training=training), training=training))

  def embed(self, inputs, training=None) -> tf.Tensor:
    """The row embedding [B, d] the head reads (the encoder's [CLS])."""
    return self.encoder.embed(inputs, training=training)

  def embed_and_logits(self, inputs):
    """(embedding [B, d], logits [B, num_classes]) in inference mode."""
    emb = self.encoder.embed(inputs, training=False)
    return emb, self.head(emb)

  def loss_and_logits(self, x, y):
    """(training loss, logits [B, num_classes]) of one training batch."""
    logits = self(x, training=True)
    return self.compute_loss(x, y, logits), logits

  def train_step(self, data):
    x, y = data
    with tf.GradientTape() as tape:
      loss, logits = self.loss_and_logits(x, y)
    if self.encoder_optimizer is None:
      grads = tape.gradient(loss, self.trainable_variables)
      _apply_used(self.optimizer, grads, self.trainable_variables)
    else:
      enc_vars = self.encoder.trainable_variables
      enc_ids = {id(v) for v in enc_vars}
      head_vars = [v for v in self.trainable_variables if id(v) not in enc_ids]
      enc_grads, head_grads = tape.gradient(loss, [enc_vars, head_vars])
      if enc_vars:   # none while the encoder is frozen (linear probing)
        _apply_used(self.encoder_optimizer, enc_grads, enc_vars)
      _apply_used(self.optimizer, head_grads, head_vars)
    return self.compute_metrics(x, y, logits, None)

  def get_config(self):
    return {"num_classes": self.num_classes, "dropout": self.head_dropout,
            "encoder_lr_multiplier": self.encoder_lr_multiplier}
