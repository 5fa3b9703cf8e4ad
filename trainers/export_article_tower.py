"""Exports the article tower as a TF Serving SavedModel and checks the reload.

Writes ``EXPORT_DIR/VERSION/`` whose ``serving_default`` signature takes ``text``
(tf.string [None]) and returns ``embedding`` (float32 [None, D]); reloads it with
``tf.saved_model.load`` and prints the max abs difference from the in-process model
on built-in sample articles, and the SavedModel's size.

  python -m trainers.export_article_tower --encoder=use \
      --export_dir=exported_models/article_tower [--precision=bf16]
"""

import pathlib

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tfrs_emb.core import cpu
from tfrs_emb.encoders.use_precision import BF16_CPU_FEATURES
from tfrs_emb.encoders.use_precision import PRECISIONS
from trainers import flagdefs

FLAGS = flags.FLAGS
flags.DEFINE_string("encoder", "use", 'Text encoder: "use" or "hub:HANDLE".')
flags.DEFINE_enum("precision", "fp32", PRECISIONS, 'Precision of "use" (UseMultilingualEncoder): '
                  'fp32 (portable, exact), fp16_table (a precomputed float16 projection row '
                  'per piece id) or bf16 (fp16_table plus bfloat16 convolutions: fast only on '
                  'CPUs with AVX-512 BF16 or AMX); recorded in the export\'s '
                  'assets/article_tower.json.')
flags.DEFINE_string("export_dir", "exported_models/article_tower",
                    "Model base path (TF Serving --model_base_path).")
flags.DEFINE_integer("version", 1, "Version folder to write (must not exist).")
flags.DEFINE_float("max_abs_diff", 1e-5, "Fail when the reloaded model differs more.")
# Checked at start-up, before TensorFlow and the encoder weights load.
flags.register_validator("encoder", lambda v: v == "use" or (v.startswith("hub:") and
                                                              len(v) > 4),
                         message='--encoder must be "use" or "hub:HANDLE" (HANDLE: a local '
                                 'folder, file:// path or TF-Hub URL)')
flagdefs.register_nonempty("export_dir", "a model base path")
flagdefs.register_bounds("version", lower=1)
flags.register_validator("max_abs_diff", lambda v: 0 < v < float("inf"),
                         message="--max_abs_diff must be a finite number > 0")


def main(argv):
  del argv
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from tfrs_emb.data import article_texts  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from tfrs_emb.models.article_tower import ArticleTower, export_article_tower

  target = pathlib.Path(FLAGS.export_dir) / str(FLAGS.version)
  if target.exists():
    raise app.UsageError(f"{target} already exists; pick another --version or remove it")
  if FLAGS.encoder != "use" and FLAGS.precision != "fp32":
    raise app.UsageError(f"--precision={FLAGS.precision} applies to --encoder=use only")
  tower = ArticleTower(FLAGS.encoder, **({"precision": FLAGS.precision}
                                         if FLAGS.encoder == "use" else {}))
  path = export_article_tower(tower, FLAGS.export_dir, version=FLAGS.version)
  if FLAGS.precision == "bf16" and not cpu.has_any_flag(BF16_CPU_FEATURES):
    print(f"warning: this CPU has none of {', '.join(BF16_CPU_FEATURES)} (or they cannot "
          "be read): the bf16 export runs here, but slower than --precision=fp16_table")

  texts = [a.text() for a in article_texts.SAMPLE_ARTICLES] + ["", "   ", "😀 emoji"]
  expected = tower.embed(texts)
  serve = tf.saved_model.load(str(path)).signatures["serving_default"]
  got = serve(text=tf.constant(texts))["embedding"].numpy()
  diff = float(np.max(np.abs(got - expected)))
  size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
  print(f"wrote {path} ({size_mb:.1f} MB); serving_default: text tf.string [None] -> "
        f"embedding float32 [None, {got.shape[1]}]; reload max abs diff {diff:.2e} "
        f"on {len(texts)} texts")
  if diff >= FLAGS.max_abs_diff:
    raise SystemExit(f"reloaded SavedModel differs from the in-process model by {diff:.2e} "
                     f"(limit {FLAGS.max_abs_diff:.0e})")


if __name__ == "__main__":
  app.run(main)
