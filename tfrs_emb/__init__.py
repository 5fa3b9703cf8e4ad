"""tfrs-emb: embeddings for analysis, similarity search and recommendation.

TensorFlow Recommenders needs Keras 2 (``tf_keras``). TensorFlow picks its Keras at
import time from ``TF_USE_LEGACY_KERAS``, so this package sets it first thing, before
any submodule imports TensorFlow. Import ``tfrs_emb`` before ``tensorflow``.
"""

import os as _os
import sys as _sys

if "tensorflow" in _sys.modules and _os.environ.get("TF_USE_LEGACY_KERAS") != "1":
  raise ImportError(
      "tensorflow was imported before tfrs_emb without TF_USE_LEGACY_KERAS=1; "
      "TensorFlow Recommenders needs Keras 2. Import tfrs_emb first, or set "
      "TF_USE_LEGACY_KERAS=1 in the environment.")
_os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.1.0"
