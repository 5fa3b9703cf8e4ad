"""Config fields declared once (tfrs_emb.core.config): checks, nested configs, records."""

import dataclasses
from typing import Tuple

import pytest

from tfrs_emb.core import config


@dataclasses.dataclass(frozen=True)
class _Inner:
  width: int = config.field(4, "width", lower=1, upper=64)
  mode: str = config.field("a", "mode", choices=("a", "b"))
  shares: Tuple[float, ...] = config.field([0.5, 1.0], "shares", lower=0.0)


@dataclasses.dataclass
class _Outer:
  inner: _Inner = config.nested(_Inner(width=8), "inner settings", derived=("mode",))
  k: int = config.field(10, "cut-off", lower=1)


def test_field_metadata_and_tuple_defaults():
  f = {f.name: f for f in dataclasses.fields(_Inner)}
  assert _Inner().shares == (0.5, 1.0)
  assert (f["width"].metadata["help"], f["width"].metadata["lower"],
          f["width"].metadata["upper"]) == ("width", 1, 64)
  outer = {f.name: f for f in dataclasses.fields(_Outer)}
  assert config.is_nested(outer["inner"]) and not config.is_nested(outer["k"])
  assert outer["inner"].metadata["derived"] == ("mode",)
  with pytest.raises(TypeError, match="config instance"):
    config.nested(_Inner, "a class, not an instance")


def test_check_config_recurses_into_nested_configs_naming_the_field():
  config.check_config(_Outer())
  with pytest.raises(ValueError, match="width=0 must be >= 1"):
    config.check_config(_Outer(inner=_Inner(width=0)))
  with pytest.raises(ValueError, match="width=65 must be <= 64"):
    config.check_config(_Outer(inner=_Inner(width=65)))
  with pytest.raises(ValueError, match="mode='c' is not one of a, b"):
    config.check_config(_Outer(inner=_Inner(mode="c")))
  with pytest.raises(ValueError, match="shares=-1.0 must be >= 0.0"):
    config.check_config(_Outer(inner=_Inner(shares=(0.5, -1.0))))
  with pytest.raises(ValueError, match="k=0 must be >= 1"):
    config.check_config(_Outer(k=0))


def test_check_fields_checks_values_without_building_a_config():
  config.check_fields(_Inner, width=3, mode="b")
  with pytest.raises(ValueError, match="width=100 must be <= 64"):
    config.check_fields(_Inner, width=100)
  with pytest.raises(KeyError):
    config.check_fields(_Inner, height=3)


def test_config_dict_is_json_ready_with_nested_dicts():
  assert config.config_dict(_Outer()) == {
      "inner": {"width": 8, "mode": "a", "shares": [0.5, 1.0]}, "k": 10}
