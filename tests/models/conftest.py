"""The fused CBOW op, compiled once per test session into a temporary folder."""

import os

import pytest

from tfrs_emb.models import cbow_kernel


@pytest.fixture(scope="session")
def cbow_ops(tmp_path_factory):
  """The loaded op library (built here; skips without a compiler or TF headers); while the
  session runs, ``cbow_kernel.library_path()`` points at this build."""
  try:
    path = cbow_kernel.build(tmp_path_factory.mktemp("cbow_kernel") / "cbow_kernel.so")
  except cbow_kernel.KernelUnavailable as e:
    pytest.skip(f"the fused CBOW op cannot be built here: {e}")
  before = os.environ.get(cbow_kernel.LIBRARY_ENV)
  os.environ[cbow_kernel.LIBRARY_ENV] = str(path)
  yield cbow_kernel.load(path)
  if before is None:
    os.environ.pop(cbow_kernel.LIBRARY_ENV)
  else:
    os.environ[cbow_kernel.LIBRARY_ENV] = before
