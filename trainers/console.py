"""What a trainer prints when its output is piped: Keras progress bars (``verbose=1``)
redraw one line with carriage returns, which a file or pipe records as one garbled line per
update; ``for_console`` turns them into one line per epoch (``verbose=2``) there."""

import dataclasses
import sys
from typing import Optional, TextIO


def keras_verbose(verbose: int, stream: Optional[TextIO] = None) -> int:
  """Keras ``fit`` verbosity for output to ``stream`` (default ``sys.stdout``): the
  progress bar (1) becomes one line per epoch (2) unless the stream is a terminal; 0 and 2
  are kept."""
  stream = sys.stdout if stream is None else stream
  if verbose != 1:
    return verbose
  isatty = getattr(stream, "isatty", None)
  return 1 if isatty is not None and isatty() else 2


def for_console(config, stream: Optional[TextIO] = None):
  """``config`` (a dataclass, nested dataclasses included) with every integer ``verbose``
  field passed through ``keras_verbose``; boolean ``verbose`` fields are left as they are.
  Returns the same object when nothing changes."""
  changes = {}
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
      new = for_console(value, stream)
    elif f.name == "verbose" and type(value) is int:  # pylint: disable=unidiomatic-typecheck
      new = keras_verbose(value, stream)
    else:
      continue
    if new is not value and new != value:
      changes[f.name] = new
  return dataclasses.replace(config, **changes) if changes else config
