"""What every experiment shares: the log callable, config fields and config records."""

import dataclasses
from typing import Any, Dict, Optional, Sequence

from tfrs_emb.core.files import check_output_dirs  # noqa: F401  (re-exported: run checks)
from tfrs_emb.core.log import Log, no_log  # noqa: F401  (re-exported for the experiments)


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


def check_config(config) -> None:
  """Raises ValueError naming the first field (or list element) outside its declared
  range or choices."""
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
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


def config_dict(config) -> Dict[str, Any]:
  """The full config as JSON-ready values (saved in every metrics.json)."""
  return {k: list(v) if isinstance(v, tuple) else v
          for k, v in dataclasses.asdict(config).items()}
