"""Every flagfile in configs/ parses through its trainer's flag definitions into a config
that passes its checks (nested model configs included)."""

import importlib
import pathlib

from absl import flags
import pytest

from trainers import flagdefs

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Flagfile → the experiment module whose Config its trainer's flags come from.
CONFIGS = {
    "bench_cbow.flags": "bench_cbow",
    "bench_encoder.flags": "bench_encoder",
    "bench_retrieval.flags": "bench_retrieval",
    "bench_retrieval_small.flags": "bench_retrieval",
    "covertype.flags": "tabular",
    "covertype_small.flags": "tabular",
    "credit.flags": "tabular",
    "jader_w2v.flags": "jader_w2v",
    "jader_w2v_full.flags": "jader_w2v",
    "jader_w2v_small.flags": "jader_w2v",
    "set2vec_groceries.flags": "set2vec",
    "techblog.flags": "techblog",
}
# Trainers that declare flags beyond their Config: their ``define_flags(flag_values)``.
TRAINER_FLAGS = {"bench_retrieval": "trainers.bench_retrieval"}
# Trainers with hand-declared absl flags (no Config): checked by their own tests.
HAND_DECLARED = {"export_article_tower.flags"}


def test_every_flagfile_is_listed():
  names = {p.name for p in (ROOT / "configs").glob("*.flags")}
  assert names == set(CONFIGS) | HAND_DECLARED


@pytest.mark.parametrize("flagfile,module", sorted(CONFIGS.items()))
def test_flagfile_parses_into_its_trainers_config(flagfile, module):
  config_cls = importlib.import_module(f"tfrs_emb.experiments.{module}").Config
  values = flags.FlagValues()
  if module in TRAINER_FLAGS:
    importlib.import_module(TRAINER_FLAGS[module]).define_flags(values)
  else:
    flagdefs.define_config_flags(config_cls, flag_values=values)
  values(["prog", f"--flagfile={ROOT / 'configs' / flagfile}"])
  config = flagdefs.config_from_flags(config_cls, flag_values=values)
  assert isinstance(config, config_cls)
