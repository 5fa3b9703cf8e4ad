"""Cheap baseline text encoders for the tech blog experiments (not learned towers).

Both follow the fit/encode interface of ``tfrs_emb.encoders.registry``: ``fit(corpus)``
(once, on the blog's texts) then ``encode(texts)`` → float32 [N, dim] L2-normalised rows.
"""

import hashlib
from typing import Optional, Sequence

import numpy as np

from tfrs_emb.core.linalg import l2_normalize


class TfidfCharNgramEncoder:
  """TF-IDF over character n-grams (scikit-learn), rows L2-normalised.

  Character n-grams need no Japanese word segmentation. The vocabulary and IDF are fitted
  on the corpus passed to ``fit`` (the blog itself: unsupervised, no labels used).

  Args:
    ngram_range: character n-gram lengths (inclusive).
    max_features: vocabulary cap (most frequent n-grams) so [N, dim] stays small.
    sublinear_tf: use 1 + log(tf).
  """

  name = "tfidf"

  def __init__(self, ngram_range=(1, 3), max_features: Optional[int] = 2 ** 16,
               sublinear_tf: bool = True):
    from sklearn.feature_extraction.text import TfidfVectorizer
    self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=tuple(ngram_range),
                                       max_features=max_features, sublinear_tf=sublinear_tf,
                                       lowercase=True, dtype=np.float32)
    self._fitted = False

  def fit(self, corpus: Sequence[str]) -> "TfidfCharNgramEncoder":
    self._vectorizer.fit(list(corpus))
    self._fitted = True
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, vocabulary] L2-normalised TF-IDF rows."""
    if not self._fitted:
      raise RuntimeError("TfidfCharNgramEncoder.encode called before fit(corpus)")
    return self._vectorizer.transform(list(texts)).toarray().astype(np.float32)

  __call__ = encode


class RandomEncoder:
  """Random unit vectors, a deterministic function of the text (chance-level baseline).

  Args:
    dim: embedding size.
    seed: mixed into the hash so different seeds give different baselines.
  """

  name = "random"

  def __init__(self, dim: int = 512, seed: int = 0):
    self.dim = dim
    self.seed = seed

  def fit(self, corpus: Sequence[str]) -> "RandomEncoder":
    del corpus
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, dim] unit vectors."""
    out = np.empty((len(texts), self.dim), np.float64)
    for i, t in enumerate(texts):
      h = hashlib.sha256(f"{self.seed}\0{t}".encode("utf-8")).digest()
      out[i] = np.random.default_rng(int.from_bytes(h[:8], "little")).standard_normal(self.dim)
    return l2_normalize(out)

  __call__ = encode
