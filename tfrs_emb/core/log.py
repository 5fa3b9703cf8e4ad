"""The progress-log callable every layer accepts, and its silent default."""

from typing import Callable

Log = Callable[[str], None]


def no_log(message: str) -> None:
  """The default ``log``: discards progress messages (trainers pass ``print``)."""
  del message
