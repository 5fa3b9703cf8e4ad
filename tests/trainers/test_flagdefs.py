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


@dataclasses.dataclass(frozen=True)
class _Model:
  dim: int = common.field(8, "width", lower=1)
  rate: float = common.field(0.1, "step", lower=0.0)
  seed: int = common.field(0, "seed")


@dataclasses.dataclass
class _Experiment:
  model: _Model = common.nested(_Model(dim=16), "the model", derived=("seed",))
  seed: int = common.field(3, "experiment seed")

  def __post_init__(self):
    self.model = dataclasses.replace(self.model, seed=self.seed)


def test_nested_config_fields_become_flags_of_their_own_names():
  fv = flags.FlagValues()
  flagdefs.define_config_flags(_Experiment, flag_values=fv)
  fv(["prog", "--rate=0.5"])
  assert "dim" in fv and "rate" in fv and "model" not in fv
  assert fv["dim"].default == 16   # the nested default instance's value, not the class's
  config = flagdefs.config_from_flags(_Experiment, fv)
  assert config == _Experiment(model=_Model(dim=16, rate=0.5, seed=3))
  with pytest.raises(flags.IllegalFlagValueError, match=r"--dim must be in \[1, inf\]"):
    fv2 = flags.FlagValues()
    flagdefs.define_config_flags(_Experiment, flag_values=fv2)
    fv2(["prog", "--dim=0"])


def test_a_nested_flag_clashing_with_an_outer_one_is_refused():
  @dataclasses.dataclass
  class Clash:
    model: _Model = common.nested(_Model(), "the model")   # seed not derived
    seed: int = common.field(3, "experiment seed")

  with pytest.raises(flags.DuplicateFlagError):
    flagdefs.define_config_flags(Clash, flag_values=flags.FlagValues())
