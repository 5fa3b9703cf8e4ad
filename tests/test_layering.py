"""Imports only go down the layers: data → encoders → models → retrieval → metrics /
reporting / pipelines → analysis → experiments (→ trainers). A module may import its own package and any lower
layer, never a higher or a sibling layer."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tfrs_emb"

# Rank of each subpackage; a module may import packages of a strictly lower rank.
LAYERS = {
    "core": 0,
    "data": 1,
    "inputs": 2,
    "encoders": 3,
    "models": 4,
    "retrieval": 5,
    "metrics": 6,
    "reporting": 6,
    "pipelines": 6,
    "analysis": 7,
    "experiments": 8,
}


def _imported_packages(path: pathlib.Path):
  """(line, subpackage) for every ``tfrs_emb.<subpackage>`` import in the file."""
  tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
  for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                               if node.module == "tfrs_emb"]
    for name in names:
      parts = name.split(".")
      if parts[0] == "tfrs_emb" and len(parts) > 1:
        yield node.lineno, parts[1]


def _modules():
  for path in sorted(PACKAGE.rglob("*.py")):
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) > 1:
      yield path, rel.parts[0]


def test_every_subpackage_has_a_layer():
  packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
  assert packages <= set(LAYERS), f"give these a layer: {packages - set(LAYERS)}"
  top_level = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
  assert not top_level, f"modules outside a layer package: {top_level}"


@pytest.mark.parametrize("path,package", list(_modules()),
                         ids=lambda v: str(v.relative_to(PACKAGE)) if isinstance(
                             v, pathlib.Path) else v)
def test_imports_only_go_down(path, package):
  bad = [f"line {line}: tfrs_emb.{target} (layer {LAYERS.get(target)})"
         for line, target in _imported_packages(path)
         if target != package and target in LAYERS and LAYERS[target] >= LAYERS[package]]
  assert not bad, (f"{path.relative_to(ROOT)} is in layer {package} ({LAYERS[package]}) "
                   f"but imports: {bad}")
