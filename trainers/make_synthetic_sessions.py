"""Writes synthetic long ordered sessions (tfrs_emb.data.synthetic_sessions).

  python -m trainers.make_synthetic_sessions --out=runs/sessions/sessions.csv \
      --labels_out=runs/sessions/labels.csv --sets=300 --items=3000 --seed=0
  python -m trainers.set2vec --sets=runs/sessions/sessions.csv --format=long \
      --set_column=session --element_column=item --order_column=time \
      --element_labels=runs/sessions/labels.csv --min_count=1

Writes the long CSV ``session,item,time`` and the ``element,label`` CSV of item tastes.
"""

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.data import synthetic_sessions
from trainers import flagdefs

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/synthetic_sessions/sessions.csv", "Sessions CSV.")
flags.DEFINE_string("labels_out", "runs/synthetic_sessions/labels.csv",
                    "element,label CSV of item tastes (empty = skip).")
flags.DEFINE_integer("sets", 300, "Sessions (one per user).")
flags.DEFINE_integer("items", 3000, "Items.")
flags.DEFINE_integer("tastes", 30, "Latent tastes (item labels).")
flags.DEFINE_integer("min_len", 20, "Shortest session.")
flags.DEFINE_integer("max_len", 300, "Longest session.")
flags.DEFINE_float("switch", 0.1, "Per-event probability of switching taste.")
flags.DEFINE_float("noise", 0.15, "Per-event probability of a globally popular item.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flagdefs.register_bounds("sets", lower=1)
flagdefs.register_bounds("tastes", lower=1)
flagdefs.register_bounds("seed", lower=0)  # numpy seeds are non-negative
flagdefs.register_bounds("items", lower=2)
flagdefs.register_bounds("min_len", lower=2)
flagdefs.register_bounds("max_len", lower=2)
flagdefs.register_bounds("switch", lower=0.0, upper=1.0)
flagdefs.register_bounds("noise", lower=0.0, upper=0.99)
flagdefs.register_nonempty("out", "an output file")


def main(argv):
  del argv
  s = synthetic_sessions.generate(FLAGS.sets, FLAGS.items, FLAGS.tastes, FLAGS.min_len,
                                  FLAGS.max_len, FLAGS.switch, FLAGS.noise, seed=FLAGS.seed)
  path = synthetic_sessions.write(s, FLAGS.out, FLAGS.labels_out)
  print(f"{len(s):,d} sessions, {len(s.items):,d} events, {len(s.taste):,d} items → {path}"
        + (f" (labels: {FLAGS.labels_out})" if FLAGS.labels_out else ""))


if __name__ == "__main__":
  app.run(main)
