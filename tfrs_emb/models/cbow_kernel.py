"""The fused CBOW epoch op (``cbow_kernel.cc``): build at set-up, load, or fall back.

``cbow_kernel.cc`` (next to this file) trains one whole epoch of CBOW negative sampling
over ``SetBatches.plan``'s epoch plan in C++ threads (Hogwild, as word2vec.c and gensim).
``make install`` compiles it against the installed TensorFlow wheel's own headers and
``libtensorflow_framework`` (``python -m trainers.build_cbow_kernel``) into
``DEFAULT_LIBRARY``; ``CBOW`` loads it with ``tf.load_op_library`` and, when it is absent
or does not load, trains with the pure-TF step instead (``resolve`` says why, once).

Usage::

  from tfrs_emb.models import cbow_kernel
  path = cbow_kernel.build()            # g++ -O3 -march=native, ~20 s of CPU
  ops = cbow_kernel.load(path)          # module with ops.cbow_epoch
  choice = cbow_kernel.resolve("auto")  # Choice(path="fused" | "tf", reason)
"""

import dataclasses
import os
import pathlib
import subprocess
from typing import Optional

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import cc_runner

SOURCE = pathlib.Path(__file__).with_name("cbow_kernel.cc")
# Inside the package (gitignored), so an installed package finds what set-up built.
DEFAULT_LIBRARY = SOURCE.with_name("_cbow_kernel.so")
# Overrides DEFAULT_LIBRARY (tests point it at a per-session build).
LIBRARY_ENV = "TFRS_EMB_CBOW_KERNEL"
KERNELS = ("auto", "fused", "tf")
# The op library loaded in this process: TensorFlow registers an op once, so a second
# library defining CbowEpoch would load as an empty module.
_loaded = []


class KernelUnavailable(RuntimeError):
  """The fused op's library is missing, does not load or cannot be built."""


def library_path() -> pathlib.Path:
  """Where the fused op's library is looked for: $TFRS_EMB_CBOW_KERNEL or DEFAULT_LIBRARY."""
  return pathlib.Path(os.environ.get(LIBRARY_ENV) or DEFAULT_LIBRARY)


def build(out_path: "str | pathlib.Path | None" = None,
          compiler: Optional[str] = None) -> pathlib.Path:
  """Compiles ``cbow_kernel.cc`` into a shared library; returns its path.

  Args:
    out_path: the .so to write (default ``library_path()``); written atomically, so a
      concurrent loader never sees half a file.
    compiler: C++ compiler; default ``g++`` from PATH.

  Raises:
    KernelUnavailable: no compiler, or the wheel lacks its headers, or the compile failed
      (stderr tail included).
  """
  try:
    compiler = cc_runner.toolchain("tensorflow/core/framework/op_kernel.h", compiler)
  except cc_runner.RunnerUnavailable as e:
    raise KernelUnavailable(str(e)) from e
  out = pathlib.Path(out_path or library_path())
  out.parent.mkdir(parents=True, exist_ok=True)
  staged = out.with_name(f".{out.name}.{os.getpid()}.tmp")
  # -march=native: the library is built on the machine that runs it (at set-up).
  # -fno-math-errno -ffp-contract=fast -fassociative-math: vectorised dot products (the
  # summation order changes, nothing else; no -ffast-math, which would drop inf checks).
  cmd = [compiler, "-shared", "-fPIC", "-O3", "-march=native", "-fno-math-errno",
         "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math",
         "-ffp-contract=fast", "-pthread", "-w", *tf.sysconfig.get_compile_flags(),
         str(SOURCE), "-o", str(staged), *tf.sysconfig.get_link_flags(),
         f"-Wl,-rpath,{tf.sysconfig.get_lib()}"]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    staged.unlink(missing_ok=True)
    raise KernelUnavailable(f"compiling {SOURCE.name} failed:\n{proc.stderr[-4000:]}")
  staged.replace(out)
  return out


def load(path: "str | pathlib.Path | None" = None):
  """``tf.load_op_library`` of the fused op (default ``library_path()``), once per
  process: later calls with an existing file return the library loaded first.

  Raises:
    KernelUnavailable: the file is missing or does not load (e.g. built for another
      TensorFlow).
  """
  path = pathlib.Path(path or library_path())
  if not path.is_file():
    raise KernelUnavailable(f"{path} not found (built by `make install`: "
                            "python -m trainers.build_cbow_kernel)")
  if not _loaded:
    try:
      module = tf.load_op_library(str(path))
    except (tf.errors.NotFoundError, tf.errors.OpError, OSError) as e:
      raise KernelUnavailable(f"{path} does not load: {e}") from e
    if not hasattr(module, "cbow_epoch"):
      raise KernelUnavailable(f"{path} defines no CbowEpoch op")
    _loaded.append(module)
  return _loaded[0]


@dataclasses.dataclass
class Choice:
  """Which CBOW update path runs: ``path`` "fused" (the op library loaded) or "tf"
  (``reason`` says why when the fused path was asked for or allowed)."""
  path: str
  reason: str = ""


def resolve(kernel: str, supported: bool = True, why_not: str = "") -> Choice:
  """The update path for ``kernel`` ("auto" | "fused" | "tf").

  Args:
    kernel: "fused" requires the op, "tf" never loads it, "auto" uses it when it loads.
    supported: whether the run's settings can use the fused op at all.
    why_not: why not, when ``supported`` is False.

  Raises:
    ValueError: an unknown ``kernel``.
    KernelUnavailable: ``kernel="fused"`` and the op cannot be used (the reason given).
  """
  if kernel not in KERNELS:
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
  if kernel == "tf":
    return Choice("tf")
  if not supported:
    if kernel == "fused":
      raise KernelUnavailable(f"the fused CBOW kernel cannot run {why_not}")
    return Choice("tf", reason=why_not)
  try:
    load()
    return Choice("fused")
  except KernelUnavailable as e:
    if kernel == "fused":
      raise
    return Choice("tf", reason=str(e))
