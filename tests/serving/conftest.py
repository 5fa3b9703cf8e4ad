"""Fixtures of the serving checks: the exported models and the compiled C++ runner."""

import pathlib
from typing import Dict

import pytest

from tfrs_emb.core import cc_runner
from tests.serving.exports import Export, build_all


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> Dict[str, Export]:
  """name → Export, every model built and exported once per session."""
  return build_all(tmp_path_factory.mktemp("exported_models"))


@pytest.fixture
def export(exports, request) -> Export:
  """The export named by an indirect ``export`` parameter (skipped when not built)."""
  name = request.param
  if name not in exports:
    pytest.skip(f"{name} not built here (not in this tfrs_emb, or its weights are not "
                "installed)")
  return exports[name]


@pytest.fixture(scope="session")
def runner(tmp_path_factory) -> pathlib.Path:
  """The C++ SavedModel runner, compiled once per session (skipped without g++/headers)."""
  try:
    return cc_runner.build_runner(tmp_path_factory.mktemp("cc_runner"))
  except cc_runner.RunnerUnavailable as e:
    pytest.skip(f"C++ serving check unavailable: {e}")
