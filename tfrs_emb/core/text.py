"""Input checks for text-taking layers and signatures."""

import tfrs_emb  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf


def check_text_batch(texts, who: str) -> tf.Tensor:
  """Converts ``texts`` to a tf.string tensor of rank 1 or raises a clear error.

  Args:
    texts: a tf.string tensor [B], or a list / numpy array of str or bytes.
    who: name of the caller, used in the error message.

  Returns:
    tf.string [B].

  Raises:
    TypeError: the input is not strings.
    ValueError: the input is not a rank-1 batch.
  """
  if isinstance(texts, (str, bytes)):
    raise ValueError(f"{who} expects a batch (rank-1) of strings, got a single string; "
                     "wrap it in a list: [text]")
  if isinstance(texts, (list, tuple)) and not texts:
    return tf.constant([], tf.string)
  if not isinstance(texts, (tf.Tensor, tf.Variable)):
    try:
      texts = tf.convert_to_tensor(texts)
    except (TypeError, ValueError) as e:
      raise TypeError(f"{who} expects a batch of UTF-8 strings (tf.string [batch]); "
                      f"could not convert the input to strings: {e}") from None
  if texts.dtype != tf.string:
    raise TypeError(f"{who} expects a batch of UTF-8 strings (tf.string [batch]), "
                    f"got a {texts.dtype.name} tensor of shape {texts.shape}")
  if texts.shape.rank is not None and texts.shape.rank != 1:
    raise ValueError(f"{who} expects a rank-1 batch of strings [batch], got shape "
                     f"{texts.shape}")
  return texts
