"""TF Serving export of the Cover Type classifier: raw CSV fields in, probabilities out."""

import pathlib
from typing import Optional

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import covertype as ct
from tfrs_emb.models.tabular import TabularClassifier
from tfrs_emb.core.serving import save_for_serving


class CovertypeServingModule(tf.Module):
  """Wraps a classifier with the standardisation statistics baked in as constants.

  ``serve(**fields)`` takes one [None] tensor per CSV feature field (the 10 continuous
  columns as float32, the 44 one-hot columns as int64; ``Id`` and ``Cover_Type`` are not
  inputs) and returns ``probabilities`` float32 [None, 7] and ``embedding`` float32
  [None, d]. A one-hot group with no 1 maps to id 0 (argmax); validate rows client-side.
  """

  def __init__(self, classifier: TabularClassifier, standardizer: ct.Standardizer):
    super().__init__()
    # Track the variables, not the Keras model: saving a Keras model re-traces every
    # layer's call functions, which costs minutes on 2 cores and is not needed to serve.
    self._embed_and_logits = classifier.embed_and_logits
    self.model_variables = list(classifier.variables)
    self.mean = tf.constant(standardizer.mean, tf.float32)
    self.std = tf.constant(standardizer.std, tf.float32)
    log_mask = [1.0 if i in standardizer.log1p_columns else 0.0
                for i in range(len(ct.CONTINUOUS_COLUMNS))]
    self.log_mask = tf.constant(log_mask, tf.float32)

  def features(self, fields):
    """CSV fields dict → model inputs dict (continuous [B, 10], categorical [B, 2])."""
    x = tf.stack([tf.cast(fields[c], tf.float32) for c in ct.CONTINUOUS_COLUMNS], axis=1)
    logx = tf.sign(x) * tf.math.log1p(tf.abs(x))
    x = self.log_mask * logx + (1.0 - self.log_mask) * x
    x = (x - self.mean) / self.std
    wild = tf.stack([tf.cast(fields[c], tf.float32) for c in ct.WILDERNESS_COLUMNS], axis=1)
    soil = tf.stack([tf.cast(fields[c], tf.float32) for c in ct.SOIL_COLUMNS], axis=1)
    cat = tf.stack([tf.argmax(wild, axis=1, output_type=tf.int32),
                    tf.argmax(soil, axis=1, output_type=tf.int32)], axis=1)
    return {"continuous": x, "categorical": cat}

  @tf.function
  def serve(self, **fields):
    emb, logits = self._embed_and_logits(self.features(fields))
    return {"probabilities": tf.nn.softmax(logits), "embedding": emb}


def input_specs():
  """Signature inputs: name → TensorSpec [None] for each of the 54 CSV feature fields."""
  return {name: tf.TensorSpec([None], tf.float32 if name in ct.CONTINUOUS_COLUMNS
                              else tf.int64, name=name) for name in ct.FEATURE_COLUMNS}


def export_classifier(classifier: TabularClassifier, standardizer: ct.Standardizer,
                      export_dir: "str | pathlib.Path", version: Optional[int] = 1
                      ) -> pathlib.Path:
  """Saves ``serving_default`` under ``export_dir/<version>``; returns that folder."""
  module = CovertypeServingModule(classifier, standardizer)
  fn = module.serve.get_concrete_function(**input_specs())
  return save_for_serving(module, export_dir, {"serving_default": fn}, version=version)
