"""Compiles the fused CBOW epoch op (tfrs_emb/models/cbow_kernel.cc) against the installed
TensorFlow wheel; `make install` runs it. Without the library the CBOW trains with its
pure-TF step (logged).

  python -m trainers.build_cbow_kernel                 # into tfrs_emb/models/_cbow_kernel.so
  python -m trainers.build_cbow_kernel --out=/tmp/cbow_kernel.so
"""

import sys

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.models import cbow_kernel

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "", "The .so to write (empty: $TFRS_EMB_CBOW_KERNEL or the "
                    "package's _cbow_kernel.so).")
flags.DEFINE_boolean("required", False, "Exit 1 when the op cannot be built (default: say "
                     "why and exit 0, so set-up goes on with the pure-TF fallback).")


def main(argv):
  del argv
  try:
    path = cbow_kernel.build(FLAGS.out or None)
    cbow_kernel.load(path)
  except cbow_kernel.KernelUnavailable as e:
    print(f"fused CBOW op not built ({e}); CBOW will use its pure-TF step", file=sys.stderr)
    sys.exit(1 if FLAGS.required else 0)
  print(f"fused CBOW op: {path}")


if __name__ == "__main__":
  app.run(main)
