"""An exported embedding model, loaded with ``tf.saved_model.load``, called on batches.

Usage::

  model = load_embedder("exported_models/jader_case_encoder/1")
  model.input_name, model.dim        # "elements" (or "text"), embedding width D
  out = model.embed([("drug:a", "reac:b"), ("drug:c",)])
  out.embedding                      # float32 [B, D]
  out.known                          # int32 [B] known elements (None for text models)

Any SavedModel whose ``serving_default`` takes one string input, ``text`` [None]
(the article tower) or ``elements`` [None, None] (the case encoder, the set recommender),
and returns ``embedding`` float32 [None, D] is accepted. Set batches are padded with "" to
their longest set (the models ignore "" elements).

``SavedModelHandler`` wraps it as a Beam RunInference model handler: Beam's TensorFlow
handler loads through ``tf.keras.models.load_model``, which does not load these
SavedModels under Keras 3.
"""

import dataclasses
import pathlib
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np
from apache_beam.ml.inference import base

INPUT_NAMES = ("text", "elements")


class ModelLoadError(ValueError):
  """A model folder that does not load as an embedding SavedModel (names the path)."""


@dataclasses.dataclass
class Embedded:
  """One batch's answer: ``embedding`` float32 [B, D], ``known`` int32 [B] or None."""
  embedding: np.ndarray
  known: Optional[np.ndarray]


class Embedder:
  """The ``serving_default`` signature of an embedding SavedModel.

  Attributes:
    path: the version folder loaded.
    input_name: "text" (inputs are str) or "elements" (inputs are sequences of str).
    dim: embedding width D.
  """

  def __init__(self, path: str, loaded):
    self.path = path
    self._loaded = loaded   # owns the variables the signature captures
    signature = loaded.signatures["serving_default"]
    self._signature = signature
    _, specs = signature.structured_input_signature
    names = sorted(specs)
    if len(names) != 1 or names[0] not in INPUT_NAMES:
      raise ModelLoadError(f"{path}: serving_default takes {names}; expected one input, "
                           f"'text' (string [None]) or 'elements' (string [None, None])")
    self.input_name = names[0]
    outputs = signature.structured_outputs
    if "embedding" not in outputs:
      raise ModelLoadError(f"{path}: serving_default returns {sorted(outputs)}; expected "
                           "'embedding' (float32 [None, D])")
    self.dim = outputs["embedding"].shape[-1]
    if self.dim is None:
      raise ModelLoadError(f"{path}: the embedding width is not fixed in serving_default")
    self._has_known = "known_elements" in outputs

  def _inputs(self, values: Sequence[Any]) -> np.ndarray:
    if self.input_name == "text":
      return np.array([v.encode("utf-8") for v in values], object)
    width = max((len(v) for v in values), default=0) or 1
    out = np.full((len(values), width), b"", object)
    for i, elements in enumerate(values):
      out[i, :len(elements)] = [e.encode("utf-8") for e in elements]
    return out

  def embed(self, values: Sequence[Any]) -> Embedded:
    """Embeds a batch of texts (str) or sets (sequences of str); see the module docstring."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    out = self._signature(**{self.input_name: tf.constant(self._inputs(values))})
    known = out["known_elements"].numpy() if self._has_known else None
    return Embedded(out["embedding"].numpy().astype(np.float32), known)


def load_embedder(path: "str | pathlib.Path") -> Embedder:
  """Loads ``path`` (a version folder, ``exported_models/NAME/VERSION``).

  Raises:
    ModelLoadError: not a folder, not a SavedModel, or no embedding signature.
  """
  import tfrs_emb  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  path = str(path)
  if not pathlib.Path(path).is_dir() and "://" not in path:
    raise ModelLoadError(f"{path}: no such folder (expected an exported model version "
                         "folder, exported_models/NAME/VERSION)")
  try:
    loaded = tf.saved_model.load(path)
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise ModelLoadError(f"{path}: not a loadable SavedModel ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
  signatures = getattr(loaded, "signatures", {})
  if "serving_default" not in signatures:
    raise ModelLoadError(f"{path}: no serving_default signature (has {sorted(signatures)})")
  return Embedder(path, loaded)


class SavedModelHandler(base.ModelHandler):
  """Beam RunInference handler: inputs are texts or sets, inferences ``Embedded`` rows.

  Each ``PredictionResult.inference`` is ``(embedding float32 [D], known int or -1)``.
  """

  def __init__(self, path: str, batch_size: int = 256):
    super().__init__()
    self._path = str(path)
    self._batch_size = int(batch_size)

  def load_model(self) -> Embedder:
    return load_embedder(self._path)

  def run_inference(self, batch: Sequence[Any], model: Embedder,
                    inference_args: Optional[Dict[str, Any]] = None) -> Iterable[Any]:
    out = model.embed(batch)
    known = out.known if out.known is not None else np.full(len(batch), -1, np.int32)
    return [base.PredictionResult(x, (e, int(k)))
            for x, e, k in zip(batch, out.embedding, known)]

  def batch_elements_kwargs(self) -> Dict[str, Any]:
    return {"min_batch_size": 1, "max_batch_size": self._batch_size}

  def get_metrics_namespace(self) -> str:
    return "tfrs_emb_inference"
