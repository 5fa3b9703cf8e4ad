"""Which ops a SavedModel needs, and which op library a model server must carry for each.

A model server (``tensorflow_model_server``, or ``tfrs_emb/core/saved_model_runner.cc``)
has the ops of core TensorFlow plus the op libraries linked or loaded into it. "Core" is
measured, not listed: the ops registered in a fresh interpreter that imported only
``tensorflow``; each custom-op library's ops are those it registers when loaded there
(``TF_LoadLibrary``, as ``tf.load_op_library`` does).

Usage::

  from tfrs_emb.core import op_audit
  report = op_audit.audit("exported_models/article_tower/1")
  report.problems        # [] when a server with core TF + tf.text can run it
  report.extra_ops       # {"SentencepieceOp": ".../tensorflow_text/.../_sentencepiece_tokenizer.so", ...}
  report.libraries       # the .so files to load (or link) beside core TensorFlow
"""

import dataclasses
import functools
import glob
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
from typing import Dict, FrozenSet, List, Sequence

import tfrs_emb  # noqa: F401
from tensorflow.core.protobuf import saved_model_pb2

# Ops whose kernels call back into the Python interpreter (tf.py_function,
# tf.numpy_function and tf.compat.v1.py_func): no model server can run them.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

# Custom-op libraries a model server may carry: pip package → its kernel files (glob
# relative to the package folder). tf.text's are linked into the stock TF Serving build;
# ScaNN's only into ScaNN-enabled servers (see BUILD_NOTES.md, "Serving").
OP_LIBRARY_GLOBS = {
    "tensorflow_text": "python/ops/_*.so",
    "scann": "scann_ops/cc/_scann_ops.so",
}

_REGISTRY_SCRIPT = r"""
import json, sys
import tensorflow  # registers core TensorFlow's ops
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

def names(buffer):
  ops = op_def_pb2.OpList()
  ops.ParseFromString(buffer)
  return sorted(op.name for op in ops.op)

core = names(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
libraries = {path: names(c_api.TF_GetOpList(c_api.TF_LoadLibrary(path)))
             for path in json.loads(sys.argv[1])}
print(json.dumps({"core": core, "libraries": libraries}))
"""


def saved_model_ops(export_dir: "str | pathlib.Path") -> FrozenSet[str]:
  """Op types in ``saved_model.pb``: graph nodes and every function of the library."""
  proto = saved_model_pb2.SavedModel()
  proto.ParseFromString((pathlib.Path(export_dir) / "saved_model.pb").read_bytes())
  ops = set()
  for meta_graph in proto.meta_graphs:
    graph = meta_graph.graph_def
    ops.update(node.op for node in graph.node)
    for function in graph.library.function:
      ops.update(node.op for node in function.node_def)
  return frozenset(ops)


def op_libraries(packages: Sequence[str] = tuple(OP_LIBRARY_GLOBS)) -> Dict[str, List[str]]:
  """package → its installed op library files (packages not installed are left out).

  Looks the packages up without importing them, so their ops stay unregistered here.
  """
  found = {}
  for package in packages:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
      continue
    root = list(spec.submodule_search_locations)[0]
    files = sorted(glob.glob(os.path.join(root, OP_LIBRARY_GLOBS[package])))
    if files:
      found[package] = files
  return found


@dataclasses.dataclass(frozen=True)
class OpRegistry:
  """Ops of core TensorFlow and of each op library (absolute .so path → op names)."""
  core: FrozenSet[str]
  libraries: Dict[str, FrozenSet[str]]

  def provider(self, op: str) -> "str | None":
    """The op library that registers ``op``; None when core or unknown."""
    for path, ops in self.libraries.items():
      if op in ops:
        return path
    return None


@functools.lru_cache(maxsize=None)
def op_registry() -> OpRegistry:
  """Core ops and every installed op library's ops (see ``OP_LIBRARY_GLOBS``).

  Registers nothing in this process: asks a fresh interpreter that imported only
  ``tensorflow``, then loaded each library.
  """
  files = [f for fs in op_libraries().values() for f in fs]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, "-c", _REGISTRY_SCRIPT, json.dumps(files)],
                        capture_output=True, text=True, env=env, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"listing registered ops failed:\n{proc.stderr[-2000:]}")
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  return OpRegistry(frozenset(out["core"]),
                    {path: frozenset(ops) for path, ops in out["libraries"].items()})


@dataclasses.dataclass(frozen=True)
class Audit:
  """What serving one SavedModel needs.

  Attributes:
    ops: every op type in the SavedModel.
    python_ops: ops that need a Python interpreter (never servable).
    extra_ops: op → library file, for ops outside core TensorFlow that an allowed
      library registers.
    unknown_ops: op → library file that registers it ("" when none installed does), for
      ops neither in core TensorFlow nor in an allowed library.
  """
  ops: FrozenSet[str]
  python_ops: FrozenSet[str]
  extra_ops: Dict[str, str]
  unknown_ops: Dict[str, str]

  @property
  def libraries(self) -> List[str]:
    """Op library files a model server must load or link beside core TensorFlow."""
    return sorted(set(self.extra_ops.values()))

  @property
  def problems(self) -> List[str]:
    """Human-readable reasons a model server could not run the model ([] = none)."""
    out = []
    if self.python_ops:
      out.append(f"Python-only ops {sorted(self.python_ops)} (tf.py_function / "
                 "tf.numpy_function): no model server can run them")
    if self.unknown_ops:
      found = {op: os.path.basename(lib) or "no installed library"
               for op, lib in sorted(self.unknown_ops.items())}
      out.append(f"ops outside core TensorFlow and the allowed op libraries: {found}")
    return out


def audit(export_dir: "str | pathlib.Path",
          allowed_packages: Sequence[str] = ("tensorflow_text",)) -> Audit:
  """Classifies the ops of the SavedModel in ``export_dir`` (a version folder).

  Args:
    export_dir: folder holding ``saved_model.pb``.
    allowed_packages: op-library packages (keys of ``OP_LIBRARY_GLOBS``) the target
      model server carries; add ``"scann"`` for ScaNN exports.
  """
  unknown = sorted(set(allowed_packages) - set(OP_LIBRARY_GLOBS))
  if unknown:
    raise ValueError(f"unknown op-library packages {unknown}; known: {list(OP_LIBRARY_GLOBS)}")
  ops = saved_model_ops(export_dir)
  allowed = {f for fs in op_libraries(allowed_packages).values() for f in fs}
  registry = op_registry()
  python_ops = ops & PYTHON_OPS
  providers = {op: registry.provider(op) or "" for op in ops - python_ops - registry.core}
  return Audit(ops, python_ops,
               {op: lib for op, lib in providers.items() if lib in allowed},
               {op: lib for op, lib in providers.items() if lib not in allowed})
