"""Piped output: Keras progress bars become one line per epoch; terminals keep them."""

import dataclasses
import io

from trainers import console


class _Tty(io.StringIO):
  def isatty(self):
    return True


@dataclasses.dataclass(frozen=True)
class _Inner:
  verbose: int = 1


@dataclasses.dataclass(frozen=True)
class _Config:
  verbose: int = 1
  inner: _Inner = _Inner()
  progress: bool = True
  k: int = 1


@dataclasses.dataclass(frozen=True)
class _BoolVerbose:
  verbose: bool = True


def test_progress_bar_only_on_a_terminal():
  assert console.keras_verbose(1, _Tty()) == 1
  assert console.keras_verbose(1, io.StringIO()) == 2
  for v in (0, 2):
    assert console.keras_verbose(v, io.StringIO()) == v == console.keras_verbose(v, _Tty())


def test_for_console_maps_nested_verbose_fields_only():
  piped = console.for_console(_Config(), io.StringIO())
  assert piped == _Config(verbose=2, inner=_Inner(verbose=2))
  assert console.for_console(_Config(), _Tty()) == _Config()
  assert console.for_console(_BoolVerbose(), io.StringIO()) == _BoolVerbose()
  quiet = _Config(verbose=0, inner=_Inner(verbose=2))
  assert console.for_console(quiet, io.StringIO()) is quiet
