"""TF Serving REST ``predict`` bodies for a signature, both ways.

TF Serving's REST API (``POST /v1/models/NAME:predict``) takes either form:

- row: ``{"instances": [...]}``, one item per example: an object ``{input: value}``, or
  the bare value when the signature has a single input;
- columnar: ``{"inputs": {input: batch_value}}`` (or the bare batch value for a single
  input).

String values are JSON strings (UTF-8); bytes that are not UTF-8 travel as
``{"b64": "..."}``, and TF Serving always uses that form for names ending in ``_bytes``.
Non-finite floats travel as the bare tokens ``NaN``, ``Infinity`` and ``-Infinity``, as
TF Serving reads and writes them (and Python's ``json`` does): a query embedding holding
NaN reaches the model, and an index's "no answer" scores come back as ``-Infinity``.
The response is ``{"predictions": [...]}`` for a row request (per example: the output
value when there is one output, else an object of outputs) and ``{"outputs": ...}`` for a
columnar one (the value, or an object of outputs).

Usage::

  fn = tf.saved_model.load(path).signatures["serving_default"]
  bodies = rest.request_bodies(fn, {"text": ["a", "b"]})   # {"row": ..., "columnar": ...}
  json.dumps(bodies["row"])                                  # what curl -d sends
  fn(**rest.tensors_from_request(bodies["row"], fn))        # what the server computes
"""

import base64
from typing import Dict, Mapping, Sequence, Union

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf

Signature = Union[tf.types.experimental.ConcreteFunction, Mapping[str, tf.TensorSpec]]


def input_specs(signature: Signature) -> Dict[str, tf.TensorSpec]:
  """Input name → TensorSpec of a signature function (or a mapping passed through).

  A loaded SavedModel signature takes keyword inputs; a concrete function traced from an
  ``input_signature`` takes positional ones named by their specs.
  """
  if isinstance(signature, Mapping):
    return dict(signature)
  args, kwargs = signature.structured_input_signature
  specs = dict(kwargs)
  for spec in args:
    if not isinstance(spec, tf.TensorSpec) or not spec.name:
      raise ValueError(f"signature input {spec!r} has no name; TF Serving feeds inputs by name")
    specs[spec.name] = spec
  return specs


def _json_value(value, name: str):
  """numpy value → JSON-ready nested lists (bytes as text, or {"b64": ...})."""
  if isinstance(value, np.ndarray):
    return [_json_value(v, name) for v in value] if value.ndim else _json_value(value.item(), name)
  if isinstance(value, (bytes, np.bytes_)):
    if not name.endswith("_bytes"):
      try:
        return bytes(value).decode("utf-8")
      except UnicodeDecodeError:
        pass
    return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
  return value.item() if isinstance(value, np.generic) else value


def _from_json(value):
  """Undoes ``{"b64": ...}`` anywhere in a nested value."""
  if isinstance(value, dict):
    if set(value) != {"b64"}:
      raise ValueError(f"a JSON object inside a tensor value must be {{\"b64\": ...}}, "
                       f"got keys {sorted(value)}")
    return base64.b64decode(value["b64"])
  if isinstance(value, list):
    return [_from_json(v) for v in value]
  return value


def _as_array(value, spec: tf.TensorSpec) -> np.ndarray:
  if spec.dtype == tf.string:
    return np.array(value if isinstance(value, np.ndarray) else tf.constant(value).numpy(),
                    dtype=object)
  return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)


def request_bodies(signature: Signature, examples: Mapping[str, object]) -> Dict[str, dict]:
  """Row and columnar ``predict`` bodies carrying ``examples``.

  Args:
    signature: the signature function (``loaded.signatures[...]``) or name → TensorSpec.
    examples: input name → batch value (numpy, tf.Tensor or nested lists), one entry per
      signature input, all with the same first dimension.

  Returns:
    {"row": {"instances": [...]}, "columnar": {"inputs": {...}}}, JSON-serialisable.
  """
  specs = input_specs(signature)
  if set(examples) != set(specs):
    raise ValueError(f"examples have inputs {sorted(examples)}, the signature wants "
                     f"{sorted(specs)}")
  arrays = {name: _as_array(v.numpy() if tf.is_tensor(v) else v, specs[name])
            for name, v in examples.items()}
  sizes = {name: (a.shape[0] if a.ndim else None) for name, a in arrays.items()}
  if len(set(sizes.values())) != 1 or None in sizes.values():
    raise ValueError(f"every input needs the same batch (first) dimension, got {sizes}")
  n = next(iter(sizes.values()))
  if len(specs) == 1:
    (name, array), = arrays.items()
    rows = [_json_value(array[i], name) for i in range(n)]
  else:
    rows = [{name: _json_value(a[i], name) for name, a in arrays.items()} for i in range(n)]
  columns = {name: _json_value(a, name) for name, a in arrays.items()}
  return {"row": {"instances": rows}, "columnar": {"inputs": columns}}


def _tensor(value, spec: tf.TensorSpec, name: str) -> tf.Tensor:
  value = value.numpy() if tf.is_tensor(value) else value
  try:
    tensor = tf.constant(_from_json(value), dtype=spec.dtype)
  except (ValueError, TypeError) as e:
    raise ValueError(f"input {name!r}: cannot read a {spec.dtype.name} tensor: {e}") from e
  if not spec.shape.is_compatible_with(tensor.shape):
    raise ValueError(f"input {name!r} has shape {tensor.shape}, the signature wants "
                     f"{spec.shape}")
  return tensor


def tensors_from_request(body: Mapping, signature: Signature) -> Dict[str, tf.Tensor]:
  """Input tensors of a ``predict`` body, read as TF Serving reads them.

  Raises:
    ValueError: neither or both of "instances" / "inputs", a missing or unknown input,
      instances that disagree on their inputs, or a value of the wrong type or shape.
  """
  specs = input_specs(signature)
  if ("instances" in body) == ("inputs" in body):
    raise ValueError('a predict body has exactly one of "instances" (row) or "inputs" '
                     f'(columnar); got keys {sorted(body)}')
  single = next(iter(specs)) if len(specs) == 1 else None
  if "inputs" in body:
    columns = body["inputs"]
    if single and not (isinstance(columns, dict) and set(columns) == {single}):
      columns = {single: columns}
  else:
    rows = body["instances"]
    if not isinstance(rows, list) or not rows:
      raise ValueError('"instances" must be a non-empty list')
    named = all(isinstance(r, dict) and set(r) != {"b64"} for r in rows)
    if single and not named:
      rows = [{single: r} for r in rows]
    elif not named:
      raise ValueError(f"with several inputs {sorted(specs)} every instance must be an "
                       "object of named inputs")
    keys = set(rows[0])
    if any(set(r) != keys for r in rows):
      raise ValueError("every instance must name the same inputs")
    columns = {name: [r[name] for r in rows] for name in keys}
  return signature_tensors(signature, columns)


def signature_tensors(signature: Signature, values: Mapping[str, object]
                      ) -> Dict[str, tf.Tensor]:
  """Input tensors for a signature, each value converted to its input's dtype and checked
  against its shape, so a bad value fails naming the input (TensorFlow's own error for a
  direct call says only "input #0 was expected to be a float tensor")::

    fn(**rest.signature_tensors(fn, {"amount": ["abc"], ...}))
    # ValueError: input 'amount': cannot read a float32 tensor: ...

  Raises:
    ValueError: a missing or unknown input, or a value of the wrong type or shape.
  """
  specs = input_specs(signature)
  if set(values) != set(specs):
    raise ValueError(f"request has inputs {sorted(values)}, the signature wants "
                     f"{sorted(specs)}")
  return {name: _tensor(values[name], specs[name], name) for name in specs}


def response_body(outputs: Mapping[str, object], row: bool) -> dict:
  """TF Serving's response to a row (``row=True``) or columnar request."""
  arrays = {name: np.asarray(v.numpy() if tf.is_tensor(v) else v) for name, v in outputs.items()}
  if row:
    n = {a.shape[0] for a in arrays.values()}
    if len(n) != 1:
      raise ValueError("a row-form response needs outputs with one batch size, "
                       f"got {({k: a.shape for k, a in arrays.items()})}")
    if len(arrays) == 1:
      (name, a), = arrays.items()
      return {"predictions": [_json_value(a[i], name) for i in range(n.pop())]}
    return {"predictions": [{k: _json_value(a[i], k) for k, a in arrays.items()}
                            for i in range(n.pop())]}
  if len(arrays) == 1:
    (name, a), = arrays.items()
    return {"outputs": _json_value(a, name)}
  return {"outputs": {k: _json_value(a, k) for k, a in arrays.items()}}


def outputs_from_response(body: Mapping, names: Sequence[str]) -> Dict[str, list]:
  """Output name → nested list, from either response form (inverse of response_body)."""
  names = list(names)
  if "predictions" in body:
    rows = body["predictions"]
    if len(names) == 1:
      return {names[0]: _from_json(rows)}
    return {k: [_from_json(r[k]) for r in rows] for k in names}
  outputs = body["outputs"]
  if len(names) == 1:
    return {names[0]: _from_json(outputs)}
  return {k: _from_json(outputs[k]) for k in names}
