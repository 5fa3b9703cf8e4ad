"""Shared fixtures: the real data folder (../shared/data) and skip markers."""

import pathlib

import pytest

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """Path of ../shared/data; skips the test when it is absent (users do not have it)."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real data folder {SHARED_DATA} is absent (only on dev machines and CI)")
  return SHARED_DATA
