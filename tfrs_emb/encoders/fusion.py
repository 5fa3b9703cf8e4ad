"""Equal-weight fusion of two fit/encode encoders' cosine similarities."""

from typing import Optional, Sequence

import numpy as np


class FusionEncoder:
  """Concatenates two encoders' unit embeddings, each scaled by 1/√2.

  For unit vectors a and b the fused embedding ``[a / √2, b / √2]`` is a unit vector and
  the fused cosine of two texts is ``(cos_A + cos_B) / 2``, so the fusion is searched (and
  served) like any other embedding. The equal weight is the parameter-free choice.

  Args:
    first, second: fit/encode encoders with unit rows.
    name: report name; default ``fusion(<first>+<second>)``.
  """

  def __init__(self, first, second, name: Optional[str] = None):
    self.first, self.second = first, second
    self.name = name or f"fusion({first.name}+{second.name})"

  def fit(self, corpus: Sequence[str]) -> "FusionEncoder":
    self.first.fit(corpus)
    self.second.fit(corpus)
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, dim_A + dim_B] unit rows."""
    a, b = self.first.encode(texts), self.second.encode(texts)
    return (np.concatenate([a, b], axis=1) / np.sqrt(2.0)).astype(np.float32)

  __call__ = encode
