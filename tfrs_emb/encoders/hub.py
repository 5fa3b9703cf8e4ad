"""Any TF-Hub text encoder (USE-L, LaBSE, …) by handle, as a Keras layer.

The handle is a local SavedModel folder, a ``file://`` path, or a TF-Hub / Kaggle
URL. A URL is looked up first in the TF-Hub cache (``TFHUB_CACHE_DIR``, as
``tensorflow_hub`` lays it out: ``<cache>/<sha1(handle)>/``), so nothing is
downloaded when the model is cached; otherwise ``tensorflow_hub`` tries to fetch
it. When neither works (e.g. offline and not cached) a ``HubHandleError`` names
the handle and the cache folder that was checked, instead of a stack trace
from deep inside the downloader.
"""

import hashlib
import pathlib
from typing import Optional

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_hub as hub

from tfrs_emb.core.text import check_text_batch


class HubHandleError(RuntimeError):
  """A TF-Hub handle could not be resolved to a loadable SavedModel."""


def _is_url(handle: str) -> bool:
  return "://" in handle and not handle.startswith("file://")


def cached_handle_dir(handle: str) -> pathlib.Path:
  """Folder where tensorflow_hub caches a URL handle (whether or not it exists)."""
  from tensorflow_hub import resolver  # pylint: disable=import-outside-toplevel
  cache = resolver.tfhub_cache_dir(use_temp=True)
  return pathlib.Path(cache) / hashlib.sha1(handle.encode("utf8")).hexdigest()


def resolve_handle(handle: str) -> str:
  """Returns a local SavedModel folder for ``handle`` or raises ``HubHandleError``.

  Args:
    handle: local folder, ``file://`` path, or TF-Hub / Kaggle URL.

  Raises:
    HubHandleError: the folder holds no SavedModel, or the URL is neither cached
      nor downloadable (offline).
  """
  if not isinstance(handle, str) or not handle:
    raise HubHandleError(f"TF-Hub handle must be a non-empty string, got {handle!r}")
  if not _is_url(handle):
    path = pathlib.Path(handle[len("file://"):] if handle.startswith("file://") else handle)
    if not (path / "saved_model.pb").is_file():
      why = "does not exist" if not path.exists() else "holds no saved_model.pb"
      raise HubHandleError(f"TF-Hub handle {handle!r}: local path {path} {why}")
    return str(path)
  cached = cached_handle_dir(handle)
  if (cached / "saved_model.pb").is_file():
    return str(cached)
  try:
    return hub.resolve(handle)
  except Exception as e:  # any download failure: DNS, HTTP, timeout, bad archive
    raise HubHandleError(
        f"TF-Hub handle {handle!r} is unreachable ({type(e).__name__}: {e}) and not in "
        f"the TF-Hub cache ({cached}). Download it on a connected machine and copy the "
        f"cache folder, or pass a local SavedModel path.") from None


class HubTextEncoder(tf.keras.layers.Layer):
  """Wraps ``tensorflow_hub.KerasLayer`` for a text SavedModel: strings → vectors.

  Works for models that take a batch of strings directly (USE, USE-L) and, with
  ``preprocessor``, for BERT-style ones that take the preprocessor's dict (LaBSE).

  Args:
    handle: the encoder (local folder, ``file://`` or TF-Hub URL).
    preprocessor: optional handle of a text preprocessing SavedModel whose
      output feeds the encoder.
    output_key: key of the encoder's output dict to use (e.g. ``"default"`` or
      ``"pooled_output"``); None when the encoder returns a tensor.
    normalize: L2-normalise the output rows.
    trainable: fine-tune the wrapped model.

  Call args:
    texts: tf.string [B].

  Returns:
    float32 [B, D].
  """

  def __init__(self, handle: str, preprocessor: Optional[str] = None,
               output_key: Optional[str] = None, normalize: bool = True,
               trainable: bool = False, **kwargs):
    super().__init__(trainable=trainable, **kwargs)
    self.handle, self.preprocessor_handle = handle, preprocessor
    self.output_key, self.normalize = output_key, normalize
    self.encoder = hub.KerasLayer(resolve_handle(handle), trainable=trainable)
    self.preprocessor = (hub.KerasLayer(resolve_handle(preprocessor))
                         if preprocessor else None)

  def call(self, texts):
    texts = check_text_batch(texts, f"{type(self).__name__}({self.handle!r})")
    inputs = self.preprocessor(texts) if self.preprocessor is not None else texts
    out = self.encoder(inputs)
    if isinstance(out, dict):
      if self.output_key is None or self.output_key not in out:
        raise ValueError(
            f"TF-Hub model {self.handle!r} returns a dict with keys {sorted(out)}; "
            f"pass output_key= one of them (got {self.output_key!r})")
      out = out[self.output_key]
    elif self.output_key is not None:
      raise ValueError(f"TF-Hub model {self.handle!r} returns a tensor, not a dict; "
                       f"output_key={self.output_key!r} does not apply")
    out = tf.cast(out, tf.float32)
    return tf.math.l2_normalize(out, axis=-1) if self.normalize else out

  def get_config(self):
    config = super().get_config()
    config.update({"handle": self.handle, "preprocessor": self.preprocessor_handle,
                   "output_key": self.output_key, "normalize": self.normalize})
    return config


__all__ = ["HubHandleError", "HubTextEncoder", "cached_handle_dir", "resolve_handle"]
