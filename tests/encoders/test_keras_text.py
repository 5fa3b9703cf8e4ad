"""A Keras text layer behind fit/encode: graph-mode batches, unit rows, input checks."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.encoders.keras_text import KerasTextEncoder


class _LengthLayer(tf.keras.layers.Layer):
  """[B] strings → [B, 3]: (byte length, 1, number of 'a'), not normalised."""

  def call(self, texts):
    n = tf.cast(tf.strings.length(texts), tf.float32)
    a = tf.cast(tf.strings.length(tf.strings.regex_replace(texts, "[^a]", "")), tf.float32)
    return tf.stack([n, tf.ones_like(n), a], axis=1)


def test_batches_match_one_call_and_rows_are_unit():
  texts = ["a", "bb", "aaa", "テスト", "", "abcabc", "zz"]
  enc = KerasTextEncoder(_LengthLayer(), "len", batch_size=3)
  assert enc.fit(texts) is enc
  got = enc.encode(texts)
  raw = _LengthLayer()(tf.constant(texts)).numpy()
  np.testing.assert_allclose(got, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-6)
  assert got.dtype == np.float32 and enc.encode([]).shape == (0, 3)


def test_bad_input_and_batch_size_errors():
  with pytest.raises(ValueError, match="single string"):
    KerasTextEncoder(_LengthLayer(), "len").encode("one text")
  with pytest.raises(ValueError, match="batch_size must be >= 1"):
    KerasTextEncoder(_LengthLayer(), "len", batch_size=0).encode(["a"])
