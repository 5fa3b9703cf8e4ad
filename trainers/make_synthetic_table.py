"""Writes a seeded synthetic mixed-type table with a binary label (numeric and string
columns, missing cells); see tfrs_emb.data.synthetic_table.

  python -m trainers.make_synthetic_table --rows=32000 --out=runs/synthetic_table.csv --seed=0
  python -m trainers.tabular_contrastive --data=runs/synthetic_table.csv --label_column=label
"""

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.data import synthetic_table
from trainers import flagdefs

FLAGS = flags.FLAGS
flags.DEFINE_integer("rows", 32_000, "Number of rows.")
flags.DEFINE_string("out", "runs/synthetic_table.csv", "Output CSV.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flagdefs.register_bounds("rows", lower=1)
flagdefs.register_bounds("seed", lower=0)
flagdefs.register_nonempty("out", "an output CSV path")


def main(argv):
  del argv
  path = synthetic_table.write_table(FLAGS.out, FLAGS.rows, seed=FLAGS.seed)
  print(f"wrote {FLAGS.rows:,d} rows to {path} (label column "
        f"{synthetic_table.LABEL!r})")


if __name__ == "__main__":
  app.run(main)
