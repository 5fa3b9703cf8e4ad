"""What the CPU this process runs on can do, from the kernel's feature flags."""

import pathlib
from typing import FrozenSet, Iterable, Optional


def cpu_flags(cpuinfo: "str | pathlib.Path" = "/proc/cpuinfo") -> Optional[FrozenSet[str]]:
  """The feature flags of the first CPU in ``cpuinfo`` (e.g. ``"avx512_bf16"``).

  Returns:
    The flags, or None where they cannot be read (no ``/proc/cpuinfo``: not Linux,
    or a file without a ``flags`` line): unknown, not "none".
  """
  try:
    text = pathlib.Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
  except OSError:
    return None
  for line in text.splitlines():
    key, _, value = line.partition(":")
    if key.strip() == "flags":
      return frozenset(value.split())
  return None


def has_any_flag(wanted: Iterable[str],
                 cpuinfo: "str | pathlib.Path" = "/proc/cpuinfo") -> Optional[bool]:
  """Whether the CPU has at least one of the ``wanted`` flags; None when unknown."""
  flags = cpu_flags(cpuinfo)
  return None if flags is None else bool(flags & set(wanted))
