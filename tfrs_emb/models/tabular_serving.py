"""TF Serving export of a table classifier: raw columns in, labels / probabilities out.

Signature ``serving_default``: one [None] tensor per feature column, named by
``signature_keys`` (the column name where it is already a valid input name; otherwise
letters, digits and "_" only, e.g. ``credit amount`` → ``credit_amount``, ``1st`` →
``col_1st``; the mapping is saved as ``assets/signature_inputs.json`` and logged): continuous
columns float32 (NaN = missing), categorical columns string (stripped; "" = missing; a
value outside the training vocabulary = out-of-vocabulary id), one-hot group members
int64 (no 1 = missing; several 1s: the first). Outputs: ``label`` string [None] (the
label column's own values), ``class_id`` int64, ``probabilities`` float32 [None, classes]
(an ensemble: the mean of its classifiers' softmax), ``embedding`` float32 [None, d] (the
first classifier's [CLS]) and ``nonfinite_input`` bool [None]: a row with a ±inf
continuous value is flagged and that value treated as missing (probabilities stay
finite). Called through ``core.rest.signature_tensors`` (or a REST body, or TF Serving),
a value of the wrong type, e.g. text in a numeric field, fails naming its input.

With ``NeighborIndex`` indexes the model is retrieval-augmented: probabilities are
``(1 - weight) * softmax(logits) + weight * h``, h the softmax(score / temperature)-weighted
label histogram of the k nearest indexed training rows (the index is inside the SavedModel),
averaged over the indexes (one per cross-fitted fold, each in its own space): score =
cosine in one classifier's [CLS] embedding, or, with a metric encoder
(``models.tabular_metric``), -||z - x||^2 in its embedding.
"""

import dataclasses
import json
import pathlib
import re
from typing import Dict, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.core.log import Log, no_log
from tfrs_emb.core.serving import save_for_serving
from tfrs_emb.data import table as tbl
from tfrs_emb.models.tabular import TabularClassifier
from tfrs_emb.models.tabular_metric import NeighborMetricEncoder, l2_scores

# The export's assets/ file mapping raw columns to signature input names.
SIGNATURE_INPUTS = "signature_inputs.json"


@dataclasses.dataclass
class NeighborIndex:
  """Training rows for retrieval: embeddings float [N, d] (or [N, m] in ``metric``'s
  embedding), class ids int [N], and the neighbour head's settings (chosen on the
  validation split). ``metric``: None = cosine in the [CLS] embedding of the exported
  classifier at position ``classifier`` (0: the first; then the extra heads in order); a
  trained ``NeighborMetricEncoder`` = squared L2 in its embedding."""
  embeddings: np.ndarray
  labels: np.ndarray
  k: int
  temperature: float
  weight: float
  metric: Optional[NeighborMetricEncoder] = None
  classifier: int = 0


def cosine_scores(embeddings: tf.Tensor, index_embeddings: tf.Tensor) -> tf.Tensor:
  """Cosine similarities [B, N] of queries [B, d] to unit-norm index rows [N, d]."""
  return tf.matmul(tf.math.l2_normalize(embeddings, axis=-1), index_embeddings,
                   transpose_b=True)


def neighbor_histogram(scores: tf.Tensor, index_labels: tf.Tensor, k: int,
                       temperature: float, num_classes: int) -> tf.Tensor:
  """The retrieval head's label histogram in TensorFlow (the SavedModel's path;
  ``retrieval.neighbor_head`` is the numpy one used in training): float [B, C], the
  softmax(score / temperature)-weighted labels of the k best-scoring index rows.
  scores: [B, N]; index_labels: int [N]."""
  top = tf.math.top_k(scores, k=k)
  w = tf.nn.softmax(top.values / temperature, axis=-1)  # [B, k]
  onehot = tf.one_hot(tf.gather(index_labels, top.indices), num_classes)
  return tf.reduce_sum(onehot * w[:, :, None], axis=1)


class TableServingModule(tf.Module):
  """Classifier(s) + schema + scaling statistics (+ optional neighbour index) as one module.

  ``extra_heads``: more classifiers whose probabilities are averaged with ``classifier``'s.
  """

  def __init__(self, classifier: TabularClassifier, schema: tbl.TableSchema,
               scaler: tbl.Scaler, neighbors: Sequence[NeighborIndex] = (),
               extra_heads: Sequence[TabularClassifier] = ()):
    super().__init__()
    classifiers = [classifier, *extra_heads]
    if not all(c.built for c in classifiers):
      raise ValueError("the classifier must be built (called or trained) before export: "
                       "its head variables do not exist yet")
    # Track the variables, not the Keras model: saving a Keras model re-traces every
    # layer's call functions, which costs minutes on 2 cores and is not needed to serve.
    self._embed_and_logits = [c.embed_and_logits for c in classifiers]
    self.model_variables = [v for c in classifiers for v in c.variables]
    self.schema = schema
    self.keys = tuple(signature_keys(schema).items())   # (column, signature input name)
    self.mean = tf.constant(scaler.mean, tf.float32)
    self.std = tf.constant(scaler.std, tf.float32)
    self.log_mask = tf.constant(scaler.log1p, tf.bool)
    self.quantile_mask = tf.constant(scaler.quantile, tf.bool)
    self.knots = tf.constant(scaler.knots, tf.float32)     # [C, Q]
    self.knot_scores = tf.constant(scaler.scores, tf.float32)
    self.classes = tf.constant(list(schema.classes), tf.string)
    self.lookups = {}
    for f in schema.categorical:
      if not f.members and f.vocabulary:
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(f.vocabulary), tf.string),
            tf.range(tbl.FIRST_CATEGORY_ID, f.cardinality, dtype=tf.int64))
        self.lookups[f.name] = tf.lookup.StaticHashTable(init, default_value=tbl.OOV_ID)
    self.neighbors = tuple(neighbors)
    if len({(n.k, n.temperature, n.weight) for n in self.neighbors}) > 1:
      raise ValueError("every neighbour index of one export must share k, temperature and "
                       "weight (one head chosen on validation)")
    for n in self.neighbors:
      if not 0 <= n.classifier < len(classifiers):
        raise ValueError(f"neighbour index searches classifier {n.classifier}; the export "
                         f"has {len(classifiers)}")
    self._metrics = [None if n.metric is None else n.metric.call for n in self.neighbors]
    self.metric_variables = [v for n in self.neighbors if n.metric is not None
                             for v in n.metric.variables]
    # Cosine indexes are stored unit-norm; metric indexes as the metric embeds them.
    self.index_embeddings = [
        tf.Variable(np.asarray(n.embeddings if n.metric is not None
                               else l2_normalize(n.embeddings), np.float32), trainable=False)
        for n in self.neighbors]
    self.index_labels = [tf.Variable(np.asarray(n.labels, np.int32), trainable=False)
                         for n in self.neighbors]

  def scale(self, x: tf.Tensor) -> tf.Tensor:
    """Raw continuous columns float [B, C] (finite or NaN) → the model's inputs
    (``Scaler.transform`` in the graph)."""
    x = tf.where(self.log_mask, tf.sign(x) * tf.math.log1p(tf.abs(x)), x)
    return tf.where(self.quantile_mask, self._normal_scores(x), (x - self.mean) / self.std)

  def _normal_scores(self, x: tf.Tensor) -> tf.Tensor:
    """x float [B, C] → each column's knot scores interpolated at x, float [B, C]
    (``Scaler.transform``'s ``np.interp``; a knot repeated at the end adds nothing; NaN
    stays NaN)."""
    xt = tf.transpose(x)                                       # [C, B]
    hi = tf.searchsorted(self.knots, xt, side="left")          # first knot >= x
    last = tf.shape(self.knots, out_type=hi.dtype)[1] - 1
    lo = tf.clip_by_value(hi - 1, 0, last)
    hi = tf.minimum(hi, last)
    x0, x1 = (tf.gather(self.knots, i, batch_dims=1) for i in (lo, hi))
    s0, s1 = (tf.gather(self.knot_scores, i, batch_dims=1) for i in (lo, hi))
    t = tf.math.divide_no_nan(xt - x0, x1 - x0)               # 0 where x0 == x1 (the ends)
    return tf.where(tf.math.is_nan(x), x, tf.transpose(s0 + t * (s1 - s0)))

  def features(self, fields: Dict[str, tf.Tensor]):
    """Raw fields → (model inputs dict, nonfinite bool [B])."""
    cols = [tf.cast(fields[c], tf.float32) for c in self.schema.continuous]
    if cols:
      x = tf.stack(cols, axis=1)
      inf = tf.math.is_inf(x)
      x = tf.where(inf, tf.fill(tf.shape(x), np.float32(np.nan)), x)
      x = self.scale(x)
      nonfinite = tf.reduce_any(inf, axis=1)
    else:
      first = fields[next(iter(fields))]
      x = tf.zeros([tf.shape(first)[0], 0])
      nonfinite = tf.zeros([tf.shape(first)[0]], tf.bool)
    cats = []
    for f in self.schema.categorical:
      if f.members:
        onehot = tf.stack([tf.cast(fields[m], tf.float32) for m in f.members], axis=1)
        ids = tbl.FIRST_CATEGORY_ID + tf.argmax(onehot, axis=1, output_type=tf.int32)
        cats.append(tf.where(tf.reduce_sum(onehot, axis=1) >= 1, ids, tbl.MISSING_ID))
        continue
      s = tf.strings.strip(fields[f.name])
      ids = (tf.cast(self.lookups[f.name].lookup(s), tf.int32) if f.name in self.lookups
             else tf.fill(tf.shape(s), tbl.OOV_ID))
      cats.append(tf.where(tf.equal(s, ""), tbl.MISSING_ID, ids))
    cat = tf.stack(cats, axis=1) if cats else tf.zeros([tf.shape(x)[0], 0], tf.int32)
    return {"continuous": x, "categorical": cat}, nonfinite

  @tf.function
  def serve(self, **fields):
    """Signature inputs (``signature_keys`` names) → outputs (see the module docstring)."""
    inputs, nonfinite = self.features({column: fields[key] for column, key in self.keys})
    outputs = [f(inputs) for f in self._embed_and_logits]   # (embedding, logits) each
    probs = tf.add_n([tf.nn.softmax(logits) for _, logits in outputs]) / len(outputs)
    if self.neighbors:
      hists = []
      for n, metric, index, labels in zip(self.neighbors, self._metrics,
                                          self.index_embeddings, self.index_labels):
        scores = (cosine_scores(outputs[n.classifier][0], index) if metric is None
                  else l2_scores(metric(inputs), index))
        hists.append(neighbor_histogram(scores, labels, min(n.k, len(n.labels)),
                                        n.temperature, len(self.schema.classes)))
      weight = self.neighbors[0].weight
      probs = (1.0 - weight) * probs + weight * tf.add_n(hists) / len(hists)
    class_id = tf.argmax(probs, axis=1)
    return {"label": tf.gather(self.classes, class_id), "class_id": class_id,
            "probabilities": probs, "embedding": outputs[0][0],
            "nonfinite_input": nonfinite}


def feature_columns(schema: tbl.TableSchema) -> Dict[str, tf.DType]:
  """Raw feature column → its signature dtype, in signature order."""
  columns = {c: tf.float32 for c in schema.continuous}
  for f in schema.categorical:
    if f.members:
      columns.update({m: tf.int64 for m in f.members})
    else:
      columns[f.name] = tf.string
  return columns


_VALID_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def signature_keys(schema: tbl.TableSchema) -> Dict[str, str]:
  """Raw feature column → signature input name, unique and valid everywhere a SavedModel
  input name travels (TF function arguments, TF Serving, REST): a name matching
  ``[A-Za-z][A-Za-z0-9_]*`` is kept; otherwise every run of other characters becomes "_",
  a name not starting with a letter gets ``col_`` in front, one with no letter or digit
  left becomes ``col_<position>``, and a clash gets ``_2``, ``_3``, ..."""
  keys: Dict[str, str] = {}
  taken = {c for c in feature_columns(schema) if _VALID_KEY.fullmatch(c)}
  for position, column in enumerate(feature_columns(schema)):
    if _VALID_KEY.fullmatch(column):
      keys[column] = column
      continue
    base = re.sub(r"[^A-Za-z0-9]+", "_", column).strip("_")
    if not base:
      base = f"col_{position}"
    elif not base[0].isalpha():
      base = f"col_{base}"
    key, n = base, 1
    while key in taken:
      n += 1
      key = f"{base}_{n}"
    taken.add(key)
    keys[column] = key
  return keys


def input_specs(schema: tbl.TableSchema) -> Dict[str, tf.TensorSpec]:
  """Signature inputs: name (``signature_keys``) → TensorSpec [None] per raw feature
  column."""
  keys = signature_keys(schema)
  return {keys[c]: tf.TensorSpec([None], dtype, name=keys[c])
          for c, dtype in feature_columns(schema).items()}


def export_classifier(classifier: TabularClassifier, schema: tbl.TableSchema,
                      scaler: tbl.Scaler, export_dir: "str | pathlib.Path",
                      version: Optional[int] = 1,
                      neighbors: Sequence[NeighborIndex] = (),
                      extra_heads: Sequence[TabularClassifier] = (),
                      log: Log = no_log) -> pathlib.Path:
  """Saves ``serving_default`` under ``export_dir/<version>``; returns that folder.

  The column → signature input mapping (``signature_keys``) is written to the version's
  ``assets/signature_inputs.json`` ({"inputs": {column: input name}}), and the renamed
  columns are logged.
  """
  module = TableServingModule(classifier, schema, scaler, neighbors, extra_heads)
  fn = module.serve.get_concrete_function(**input_specs(schema))
  keys = signature_keys(schema)
  renamed = {c: k for c, k in keys.items() if c != k}
  if renamed:
    log("serving inputs renamed (column → signature input): " +
        ", ".join(f"{c!r} → {k}" for c, k in renamed.items()))
  mapping = json.dumps({"inputs": keys}, ensure_ascii=False, indent=2) + "\n"
  return save_for_serving(module, export_dir, {"serving_default": fn}, version=version,
                          assets={SIGNATURE_INPUTS: mapping})


def serving_fields(table: tbl.Table, schema: tbl.TableSchema) -> Dict[str, np.ndarray]:
  """The signature's inputs (by ``signature_keys`` name) for the rows of a read table
  (cells as the file has them)."""
  keys = signature_keys(schema)
  out = {}
  for c in schema.continuous:
    out[keys[c]] = tbl.column_numbers(table, c).astype(np.float32)
  for f in schema.categorical:
    if f.members:
      out.update({keys[m]: table.frame[m].replace("", "0").astype(np.int64).to_numpy()
                  for m in f.members})
    else:
      out[keys[f.name]] = table.frame[f.name].to_numpy(object).astype(str)
  return out
