"""Tech blog report: similar articles, best method, tag recommendation, clusters,
recommendations and the related-articles SavedModel.

  python -m trainers.techblog --flagfile=configs/techblog.flags
  python -m trainers.techblog --posts_dir=../shared/data/techblog/posts --export_dir=

Writes OUT/report.md, OUT/metrics.json, OUT/dendrogram.png, OUT/post_map.png and the
related-articles SavedModel (``--export_dir``, empty to skip). Flags: the fields of
``tfrs_emb.experiments.techblog.Config``.
"""

from absl import app

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tfrs_emb.experiments import techblog
from tfrs_emb.reporting import markdown_table
from trainers import flagdefs

flagdefs.define_config_flags(techblog.Config)


def main(argv):
  del argv
  config = flagdefs.config_from_flags(techblog.Config)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.get_logger().setLevel("ERROR")
  tf.keras.utils.set_random_seed(config.seed)  # the trained tags' shuffle mixes it in
  result = techblog.run(config, log=print)
  k = config.k
  print(f"best method: {result.best_method} ({result.metrics['best_method_rule']})")
  table = result.similar_table
  print(markdown_table(table.table_rows(f"rank_dice@{k}"), table.columns(f"rank_dice@{k}")))
  print(f"report: {result.report_path}")


if __name__ == "__main__":
  app.run(main)
