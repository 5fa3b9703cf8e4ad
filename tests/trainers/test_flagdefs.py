"""Flags generated from a Config: defaults, types, choices and bounds checked up front."""

import dataclasses
from typing import Optional, Tuple

import pytest
from absl import flags

from tfrs_emb.experiments import common
from trainers import flagdefs


@dataclasses.dataclass(frozen=True)
class _Config:
  k: int = common.field(10, "neighbours", lower=1)
  rate: float = common.field(0.5, "a share", lower=0.0, upper=1.0)
  fractions: Tuple[float, ...] = common.field((0.1, 1.0), "label shares", lower=0.0)
  mode: str = common.field("mean", "aggregation", choices=("mean", "max"))
  export_dir: Optional[str] = common.field(None, "empty: no export")
  verbose: bool = common.field(True, "progress")


def _parse(argv):
  fv = flags.FlagValues()
  flagdefs.define_config_flags(_Config, flag_values=fv)
  fv(["prog"] + argv)
  return fv


def test_defaults_and_types_round_trip():
  config = flagdefs.config_from_flags(_Config, _parse([]))
  assert config == _Config()
  config = flagdefs.config_from_flags(
      _Config, _parse(["--k=3", "--fractions=0.5", "--mode=max", "--export_dir=out",
                       "--noverbose"]))
  assert (config.k, config.fractions, config.mode, config.export_dir, config.verbose) == (
      3, (0.5,), "max", "out", False)


def test_bounds_and_choices_fail_at_parse_time_naming_the_flag():
  with pytest.raises(flags.IllegalFlagValueError, match=r"--k must be in \[1, inf\]"):
    _parse(["--k=0"])
  with pytest.raises(flags.IllegalFlagValueError, match=r"--rate must be in \[0.0, 1.0\]"):
    _parse(["--rate=1.5"])
  with pytest.raises(flags.IllegalFlagValueError, match="mean|max"):
    _parse(["--mode=median"])


def test_config_check_names_the_field():
  with pytest.raises(ValueError, match=r"k=0 must be >= 1"):
    common.check_config(_Config(k=0))
  with pytest.raises(ValueError, match="mode='sum' is not one of mean, max"):
    common.check_config(_Config(mode="sum"))


def test_list_elements_are_checked():
  with pytest.raises(flags.IllegalFlagValueError, match="--fractions must be in"):
    _parse(["--fractions=0.1,-2"])
  with pytest.raises(flags.IllegalFlagValueError, match="--fractions must be in"):
    _parse(["--fractions=0.1,abc"])
  with pytest.raises(ValueError, match="fractions=-1.0 must be >= 0.0"):
    common.check_config(_Config(fractions=(0.5, -1.0)))
