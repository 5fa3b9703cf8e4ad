"""The CBOW trainers turn oneDNN's rewrites off before TensorFlow loads (trainers/cbow_env)."""

import os
import subprocess
import sys

import pytest

CBOW_TRAINERS = ["trainers.jader_w2v", "trainers.bench_cbow", "trainers.set2vec"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _onednn_setting_seen_by_tensorflow(module: str, env_value=None) -> str:
  """Imports ``module`` in a fresh process and reports TF_ENABLE_ONEDNN_OPTS as it was
  when TensorFlow's import began (recorded by an import hook placed before anything else)."""
  env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  if env_value is not None:
    env["TF_ENABLE_ONEDNN_OPTS"] = env_value
  probe = (
      "import os, sys, importlib.abc\n"
      "seen = []\n"
      "class Hook(importlib.abc.MetaPathFinder):\n"
      "  def find_spec(self, name, path=None, target=None):\n"
      "    if name == 'tensorflow' and not seen:\n"
      "      seen.append(os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))\n"
      "    return None\n"
      "sys.meta_path.insert(0, Hook())\n"
      f"import {module}\n"
      "print(seen[0] if seen else 'tensorflow not imported')\n")
  out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True,
                       capture_output=True, text=True).stdout
  return out.strip().splitlines()[-1]


@pytest.mark.parametrize("module", CBOW_TRAINERS)
def test_onednn_is_off_before_tensorflow_loads(module):
  assert _onednn_setting_seen_by_tensorflow(module) == "0"


def test_user_setting_wins():
  assert _onednn_setting_seen_by_tensorflow("trainers.jader_w2v", env_value="1") == "1"
