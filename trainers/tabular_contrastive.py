r"""Tabular contrastive Transformer (SPEC.md experiment 3); see tfrs_emb.experiments.tabular.

  python -m trainers.tabular_contrastive --flagfile=configs/covertype.flags [--data=PATH]

Every flag is a field of ``tabular.Config`` (defaults, help and bounds live there).
"""

from absl import app

import tfrs_emb  # noqa: F401
from tfrs_emb.experiments import tabular
from trainers import flagdefs

flagdefs.define_config_flags(tabular.Config)


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  config = flagdefs.config_from_flags(tabular.Config)
  result = tabular.run(config, log=print, reseed=tf.keras.utils.set_random_seed)
  print(result.table)
  print(f"wrote {result.output_dir / 'metrics.json'} and report.md")
  if result.export_path:
    print(f"exported classifier to {result.export_path}")


if __name__ == "__main__":
  app.run(main)
