"""TF Serving REST bodies: both request forms, b64 strings, errors, response forms."""

import json

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import rest

ONE = {"text": tf.TensorSpec([None], tf.string)}
TWO = {"x": tf.TensorSpec([None, 2], tf.float32), "ids_bytes": tf.TensorSpec([None], tf.string)}


def wire(body):
  return json.loads(json.dumps(body))


def test_single_input_rows_are_bare_values_and_read_back():
  bodies = rest.request_bodies(ONE, {"text": ["a", "日本語"]})
  assert bodies == {"row": {"instances": ["a", "日本語"]},
                    "columnar": {"inputs": {"text": ["a", "日本語"]}}}
  for body in [*bodies.values(), {"instances": [{"text": "a"}, {"text": "日本語"}]},
               {"inputs": ["a", "日本語"]}]:
    got = rest.tensors_from_request(wire(body), ONE)
    assert got["text"].numpy().tolist() == ["a".encode(), "日本語".encode()]


def test_several_inputs_rows_are_objects_and_bytes_travel_as_b64():
  x = np.array([[0.1, 2.0], [3.5, -1.0]], np.float32)
  ids = np.array([b"\xff\x00raw", b"text"], object)
  bodies = rest.request_bodies(TWO, {"x": x, "ids_bytes": ids})
  row = bodies["row"]["instances"]
  assert row[1] == {"x": [3.5, -1.0], "ids_bytes": {"b64": "dGV4dA=="}}  # *_bytes: always b64
  for body in bodies.values():
    got = rest.tensors_from_request(wire(body), TWO)
    np.testing.assert_array_equal(got["x"].numpy(), x)    # float32 survives JSON exactly
    assert got["ids_bytes"].numpy().tolist() == ids.tolist()
  assert rest.request_bodies(ONE, {"text": [b"\xff"]})["row"] == {"instances": [{"b64": "/w=="}]}


@pytest.mark.parametrize("body,message", [
    ({"instances": [[1.0, 2.0]]}, "object of named inputs"),
    ({"instances": [{"x": [1.0, 2.0], "ids_bytes": "a"}, {"x": [1.0, 2.0]}]}, "same inputs"),
    ({"inputs": {"x": [[1.0, 2.0]]}}, "wants"),
    ({"inputs": {"x": [[1.0, 2.0]], "ids_bytes": ["a"]}, "instances": []}, "exactly one"),
    ({"inputs": {"x": [[1.0, 2.0, 3.0]], "ids_bytes": ["a"]}}, "shape"),
    ({"inputs": {"x": [["a", "b"]], "ids_bytes": ["a"]}}, "float32"),
    ({"inputs": {"x": [[1.0, 2.0]], "ids_bytes": [{"hex": "00"}]}}, "b64"),
])
def test_bad_requests_name_the_problem(body, message):
  with pytest.raises(ValueError, match=message):
    rest.tensors_from_request(body, TWO)


def test_request_bodies_check_the_examples():
  with pytest.raises(ValueError, match="wants"):
    rest.request_bodies(TWO, {"x": np.zeros((2, 2), np.float32)})
  with pytest.raises(ValueError, match="batch"):
    rest.request_bodies(TWO, {"x": np.zeros((2, 2), np.float32), "ids_bytes": [b"a"]})


def test_response_forms_and_their_inverse():
  one = {"embedding": np.array([[1.5, 2.0], [0.0, -1.0]], np.float32)}
  two = dict(one, ids=np.array([b"p1", b"p2"], object))
  assert rest.response_body(one, row=True) == {"predictions": [[1.5, 2.0], [0.0, -1.0]]}
  assert rest.response_body(one, row=False) == {"outputs": [[1.5, 2.0], [0.0, -1.0]]}
  assert rest.response_body(two, row=True)["predictions"][1] == {
      "embedding": [0.0, -1.0], "ids": "p2"}
  assert rest.response_body(two, row=False)["outputs"]["ids"] == ["p1", "p2"]
  for outputs in (one, two):
    for row in (True, False):
      back = rest.outputs_from_response(wire(rest.response_body(outputs, row)), list(outputs))
      assert back["embedding"] == outputs["embedding"].tolist()
  with pytest.raises(ValueError, match="one batch size"):
    rest.response_body({"a": np.zeros(2), "b": np.zeros(3)}, row=True)


def test_signature_function_is_read_like_its_specs():
  fn = tf.function(lambda text: {"n": tf.strings.length(text)},
                   input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  concrete = fn.get_concrete_function()
  assert set(rest.input_specs(concrete)) == {"text"}
  tensors = rest.tensors_from_request({"instances": ["ab", "c"]}, concrete)
  assert concrete(**tensors)["n"].numpy().tolist() == [2, 1]


def test_non_finite_floats_travel_as_nan_and_infinity_tokens():
  spec = {"query_embedding": tf.TensorSpec([None, 2], tf.float32)}
  x = np.array([[np.nan, 1.0], [0.0, np.inf]], np.float32)
  body = json.dumps(rest.request_bodies(spec, {"query_embedding": x})["row"])
  assert body == '{"instances": [[NaN, 1.0], [0.0, Infinity]]}'
  got = rest.tensors_from_request(json.loads(body), spec)["query_embedding"].numpy()
  np.testing.assert_array_equal(got, x)
  out = {"scores": np.array([[-np.inf, -np.inf]], np.float32)}
  text = json.dumps(rest.response_body(out, row=False))
  assert text == '{"outputs": [[-Infinity, -Infinity]]}'
  assert np.isneginf(rest.outputs_from_response(json.loads(text), ["scores"])["scores"]).all()
