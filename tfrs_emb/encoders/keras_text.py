"""Keras text layers run in graph mode by batches, behind the fit/encode interface.

The fit/encode interface (``tfrs_emb.encoders.registry``): ``fit(corpus)`` once on the
corpus (a no-op for pretrained towers), then ``encode(texts)`` → float32 [N, dim] unit rows,
so cosine similarity is an inner product.
"""

from typing import Callable, Sequence

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.core.text import check_text_batch


def graph_text_fn(layer: Callable) -> Callable:
  """``layer`` as one traced graph function: tf.string [None] → float32 [None, D]."""
  return tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)],
                     autograph=False)


def embed_in_batches(fn: Callable, texts: Sequence[str], batch_size: int,
                     what: str) -> np.ndarray:
  """Embeds ``texts`` with a ``graph_text_fn`` in slices of ``batch_size``.

  Args:
    fn: tf.string [B] → float32 [B, D].
    texts: n strings (str or UTF-8 bytes); checked with ``check_text_batch``.
    batch_size: strings per graph call (>= 1).
    what: caller named in input errors.

  Returns:
    float32 numpy [n, D].
  """
  if batch_size < 1:
    raise ValueError(f"{what}: batch_size must be >= 1, got {batch_size}")
  texts = check_text_batch(texts, what)
  n = int(texts.shape[0])
  if n == 0:  # the width D is only known from a call
    return np.zeros([0, int(fn(tf.constant([""])).shape[-1])], np.float32)
  return np.concatenate([fn(texts[i:i + batch_size]).numpy()
                         for i in range(0, n, batch_size)], axis=0)


class KerasTextEncoder:
  """A Keras text layer (tf.string [B] → float32 [B, D]) as a fit/encode encoder.

  Args:
    layer: the Keras layer; also the query model of an exported index.
    name: encoder name used in reports.
    batch_size: strings per graph call.
  """

  def __init__(self, layer, name: str, batch_size: int = 128):
    self.layer = layer
    self.name = name
    self.batch_size = batch_size
    self._fn = graph_text_fn(layer)

  def fit(self, corpus: Sequence[str]) -> "KerasTextEncoder":
    del corpus  # pretrained
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, D] unit rows."""
    return l2_normalize(embed_in_batches(self._fn, texts, self.batch_size,
                                         f"{self.name}.encode"))

  __call__ = encode
