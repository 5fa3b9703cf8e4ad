"""Atomic writes: the old file stays whole until the new one is complete."""

import json

import numpy as np
import pytest

from tfrs_emb.core import files


def test_write_json_is_atomic_and_knows_numpy(tmp_path):
  path = files.write_json(tmp_path / "a" / "metrics.json", {"x": np.float32(0.5),
                                                            "v": np.arange(2)})
  assert json.loads(path.read_text(encoding="utf-8")) == {"x": 0.5, "v": [0, 1]}

  class Unserialisable:
    pass

  with pytest.raises(TypeError):
    files.write_json(path, {"bad": Unserialisable()})
  assert json.loads(path.read_text(encoding="utf-8"))["x"] == 0.5  # old content intact
  assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp left
