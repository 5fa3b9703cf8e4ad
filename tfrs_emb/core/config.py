"""Config dataclasses declared once: fields with help and bounds, their checks, their record.

A model or an experiment declares each setting once with ``field`` (default, one help
line, bounds or choices); ``trainers/flagdefs.py`` turns the fields into absl flags,
``check_config`` checks a built config, ``config_dict`` records it in metrics.json. A
field made with ``nested`` holds a whole config of its own (a model's, e.g.
``models.cbow.CbowConfig``), whose fields become flags of their own names.
"""

import dataclasses
from typing import Any, Dict, Optional, Sequence


def field(default: Any, help: str, *, lower: Optional[float] = None,  # pylint: disable=redefined-builtin
          upper: Optional[float] = None, choices: Optional[Sequence[str]] = None):
  """A config field with its help text and allowed range, read by the trainers' flags.

  Args:
    default: default value (lists and tuples are stored as tuples).
    help: one line for ``--help``.
    lower, upper: inclusive bounds of a number; ``None`` for none.
    choices: allowed values of a string.
  """
  metadata = {"help": help, "lower": lower, "upper": upper, "choices": choices}
  if isinstance(default, (list, tuple)):
    default = tuple(default)
  return dataclasses.field(default=default, metadata=metadata)


def nested(default: Any, help: str, *, derived: Sequence[str] = ()):  # pylint: disable=redefined-builtin
  """A field holding a whole frozen config (``default``: an instance, whose values are
  the flags' defaults).

  Args:
    default: the nested config with this field's defaults.
    help: what the nested config configures.
    derived: names of nested fields that get no flag: the outer config sets them from
      its own fields (in its ``__post_init__``).
  """
  if not dataclasses.is_dataclass(default) or isinstance(default, type):
    raise TypeError(f"nested() takes a config instance, got {default!r}")
  return dataclasses.field(default=default, metadata={
      "help": help, "nested": True, "derived": tuple(derived)})


def is_nested(f: dataclasses.Field) -> bool:
  """True for a field made with ``nested``."""
  return bool(f.metadata.get("nested"))


def check_value(f: dataclasses.Field, value: Any) -> None:
  """Raises ValueError naming field ``f`` when ``value`` (or one of its elements) is
  outside the field's declared range or choices."""
  lower, upper, choices = (f.metadata.get(k) for k in ("lower", "upper", "choices"))
  if choices is not None and value not in choices:
    raise ValueError(f"{f.name}={value!r} is not one of {', '.join(map(str, choices))}")
  for number in value if isinstance(value, tuple) else (value,):
    if not isinstance(number, (int, float)) or isinstance(number, bool):
      continue
    if lower is not None and not number >= lower:
      raise ValueError(f"{f.name}={number!r} must be >= {lower}")
    if upper is not None and not number <= upper:
      raise ValueError(f"{f.name}={number!r} must be <= {upper}")


def check_fields(config_cls, **values) -> None:
  """``check_value`` for the named fields of ``config_cls`` (a class, no instance built)."""
  declared = {f.name: f for f in dataclasses.fields(config_cls)}
  for name, value in values.items():
    check_value(declared[name], value)


def check_config(config) -> None:
  """Raises ValueError naming the first field (or list element) outside its declared
  range or choices, nested configs included."""
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
    if is_nested(f):
      check_config(value)
    else:
      check_value(f, value)


def _json_ready(value):
  if isinstance(value, dict):
    return {k: _json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_ready(v) for v in value]
  return value


def config_dict(config) -> Dict[str, Any]:
  """The full config as JSON-ready values, nested configs as nested dicts (saved in every
  metrics.json; hashed by checkpoint guards)."""
  return _json_ready(dataclasses.asdict(config))
