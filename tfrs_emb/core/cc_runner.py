"""Run a SavedModel from C++ with TF Serving's loader (``tensorflow::LoadSavedModel``).

``saved_model_runner.cc`` (next to this file) is compiled against the installed
TensorFlow wheel's headers, ``libtensorflow_framework`` and ``libtensorflow_cc``; it
loads only the op libraries it is given, so it answers the question "does this export
serve outside Python with core TensorFlow plus these op libraries?".

Usage::

  from tfrs_emb.core import cc_runner, op_audit
  runner = cc_runner.build_runner("/tmp/runner")     # compiles with g++ at -O0
  path = "exported_models/article_tower/1"
  out = cc_runner.run_saved_model(runner, path, {"text": np.array([b"hello"])},
                                  op_libraries=op_audit.audit(path).libraries)
  out["embedding"]                                  # numpy float32 [1, 512]
"""

import json
import pathlib
import shutil
import subprocess
import tempfile
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf
from google.protobuf import text_format

SOURCE = pathlib.Path(__file__).with_name("saved_model_runner.cc")

# DataTypeString names the runner prints → numpy dtypes (strings stay bytes objects).
_DTYPES = {"float": np.float32, "double": np.float64, "int32": np.int32,
           "int64": np.int64, "bool": np.bool_, "string": object}


class RunnerUnavailable(RuntimeError):
  """No C++ compiler, or the TensorFlow wheel lacks the headers or libraries."""


def _tensorflow_libraries() -> Sequence[pathlib.Path]:
  """libtensorflow_framework and libtensorflow_cc of the wheel, by path.

  The wheel ships versioned names only (``libtensorflow_cc.so.2``); libtensorflow_cc holds
  the session, the kernels and the C API, libtensorflow_framework the loader.
  """
  lib_dir = pathlib.Path(tf.sysconfig.get_lib())
  found = []
  for name in ("libtensorflow_framework", "libtensorflow_cc"):
    candidates = sorted(lib_dir.glob(f"{name}.so*"), key=lambda p: len(p.name))
    if not candidates:
      raise RunnerUnavailable(f"{name}.so* not found in {lib_dir}")
    found.append(candidates[0])
  return found


def toolchain(header: str, compiler: Optional[str] = None) -> str:
  """The C++ compiler for a build against the installed wheel: ``compiler`` or g++ from
  PATH, once the wheel's include folder has ``header`` (e.g. "tensorflow/cc/...h").

  Raises:
    RunnerUnavailable: no compiler, or the header is missing.
  """
  compiler = compiler or shutil.which("g++")
  if not compiler:
    raise RunnerUnavailable("no g++ on PATH")
  include = pathlib.Path(tf.sysconfig.get_include())
  if not (include / header).is_file():
    raise RunnerUnavailable(f"TensorFlow C++ headers not found under {include}")
  return compiler


def build_runner(out_dir: "str | pathlib.Path", compiler: Optional[str] = None) -> pathlib.Path:
  """Compiles ``saved_model_runner.cc`` into ``out_dir``; returns the executable.

  Args:
    out_dir: folder for the binary (created).
    compiler: C++ compiler; default ``g++`` from PATH.

  Raises:
    RunnerUnavailable: no compiler, no TensorFlow headers or no TensorFlow libraries.
    RuntimeError: the compile failed (stderr tail included).
  """
  compiler = toolchain("tensorflow/cc/saved_model/loader.h", compiler)
  libraries = _tensorflow_libraries()
  out = pathlib.Path(out_dir) / "saved_model_runner"
  out.parent.mkdir(parents=True, exist_ok=True)
  # -O0 -w: the binary only glues library calls; optimising would triple the compile time.
  # --no-as-needed: libtensorflow_cc registers the session and kernels in static
  # initialisers, so it must be loaded even though few of its symbols are referenced.
  cmd = [compiler, "-O0", "-w", *tf.sysconfig.get_compile_flags(), str(SOURCE), "-o", str(out),
         "-Wl,--no-as-needed", *map(str, libraries),
         f"-Wl,-rpath,{libraries[0].parent}"]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"compiling {SOURCE.name} failed:\n{proc.stderr[-4000:]}")
  return out


def _write_input(path: pathlib.Path, value) -> None:
  proto = tf.make_tensor_proto(np.asarray(value) if not tf.is_tensor(value) else value.numpy())
  path.write_text(text_format.MessageToString(proto), encoding="utf-8")


def _read_output(tensor: Mapping) -> np.ndarray:
  dtype = _DTYPES[tensor["dtype"]]
  values = tensor["values"]
  if dtype is object:  # bytes back from the surrogate-escaped UTF-8 decoding of stdout
    values = [v.encode("utf-8", "surrogateescape") for v in values]
  return np.array(values, dtype=dtype).reshape(tensor["shape"])


def run_saved_model(runner: "str | pathlib.Path", export_dir: "str | pathlib.Path",
                    inputs: Mapping[str, object], op_libraries: Sequence[str] = (),
                    signature: str = "serving_default",
                    timeout: float = 600) -> Dict[str, np.ndarray]:
  """Runs ``signature`` of the SavedModel in ``export_dir`` in the C++ runner.

  Args:
    runner: executable from ``build_runner``.
    export_dir: version folder (holds ``saved_model.pb``).
    inputs: signature input name → array-like (numpy, tf.Tensor, list).
    op_libraries: custom-op .so files to load first (e.g. ``Audit.libraries``).
    signature: signature name.
    timeout: seconds before the run is abandoned.

  Returns:
    Output name → numpy array (strings as bytes objects, as ``Tensor.numpy()``).

  Raises:
    RuntimeError: the runner failed (its stderr tail included).
  """
  with tempfile.TemporaryDirectory(prefix="saved_model_runner_") as tmp:
    args = [str(runner), str(export_dir), f"--signature={signature}"]
    args += [f"--op_library={lib}" for lib in op_libraries]
    for i, (name, value) in enumerate(inputs.items()):
      path = pathlib.Path(tmp) / f"input{i}.pbtxt"
      _write_input(path, value)
      args.append(f"--input={name}={path}")
    proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
  if proc.returncode != 0:
    err = proc.stderr.decode("utf-8", "replace")
    raise RuntimeError(f"saved_model_runner failed on {export_dir}:\n{err[-4000:]}")
  result = json.loads(proc.stdout.decode("utf-8", "surrogateescape"))
  return {name: _read_output(t) for name, t in result["outputs"].items()}
