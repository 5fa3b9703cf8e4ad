"""Writes a synthetic JADER release in the real PMDA layout.

  python -m trainers.make_synthetic_jader --cases=692821 --out=runs/jader_full --seed=0

Writes demo/drug/reac/hist``<suffix>``.csv (cp932 by default) and latent_classes.csv.
"""

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.data import synthetic_jader
from trainers import flagdefs

FLAGS = flags.FLAGS
flags.DEFINE_integer("cases", 20_000, "Number of cases (識別番号); the talk used 692,821.")
flags.DEFINE_string("out", "runs/jader_synthetic", "Output folder.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_enum("encoding", "cp932", ["cp932", "utf-8", "utf-8-sig"], "File encoding.")
flags.DEFINE_integer("chunk_cases", 100_000, "Cases generated per step (bounds memory).")
flagdefs.register_bounds("cases", lower=1)
flagdefs.register_bounds("seed", lower=0)  # numpy seeds are non-negative
flagdefs.register_bounds("chunk_cases", lower=1)
flagdefs.register_nonempty("out", "an output folder")


def main(argv):
  del argv
  info = synthetic_jader.write_release(FLAGS.out, FLAGS.cases, seed=FLAGS.seed,
                                       encoding=FLAGS.encoding,
                                       chunk_cases=FLAGS.chunk_cases)
  for kind, path in info["paths"].items():
    print(f"{kind:5s} {info['rows'][kind]:>10,d} rows  {path}")
  print(f"latent classes: {info['latent']}")
  print(f"{info['num_cases']:,d} cases in {info['seconds']:.1f} s ({info['encoding']})")


if __name__ == "__main__":
  app.run(main)
