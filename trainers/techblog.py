"""Tech blog report: similar articles, tag recommendation, clusters, recommendations.

  python -m trainers.techblog --posts_dir=../shared/data/techblog/posts --output_dir=runs/techblog
  python -m trainers.techblog --flagfile=configs/techblog.flags

Writes OUT/report.md, OUT/metrics.json, OUT/dendrogram.png, OUT/post_map.png and the
related-articles SavedModel (``--export_dir``, empty to skip).
"""

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.analysis import techblog_report
from tfrs_emb.analysis.text_encoders import encoder_names

_D = techblog_report.Config
FLAGS = flags.FLAGS
flags.DEFINE_string("posts_dir", None, "Folder of markdown posts (e.g. a Hexo source/_posts).")
flags.DEFINE_string("output_dir", "runs/techblog", "Where report.md, metrics.json, PNGs go.")
flags.DEFINE_bool("strict", False, "Fail on the first post that cannot be parsed.")
flags.DEFINE_string("encoders", ",".join(techblog_report.DEFAULT_ENCODERS),
                    "Comma-separated encoders: use, use_reference, tfidf, random, hub:PATH, "
                    "fusion(A+B).")
flags.DEFINE_list("variants", list(_D.variants), "Text variants to score.")
flags.DEFINE_string("main_variant", _D.main_variant,
                    "Variant used for top-k examples, tags, clusters and export.")
flags.DEFINE_integer("k", _D.k, "Related posts per post (rank_dice@k).")
flags.DEFINE_integer("example_posts", _D.example_posts, "Posts whose top-k lists are shown.")
flags.DEFINE_string("tag_encoder", _D.tag_encoder, "Encoder for tag recommendation.")
flags.DEFINE_integer("tag_k", _D.tag_k, "Tags recommended per post.")
flags.DEFINE_float("test_fraction", _D.test_fraction, "Newest share of posts evaluated.")
flags.DEFINE_list("tag_methods", list(_D.tag_methods), "direct, mean, trained (empty: skip).")
flags.DEFINE_integer("trained_epochs", _D.trained_epochs, "Epochs of the trained tag model.")
flags.DEFINE_float("trained_learning_rate", _D.trained_learning_rate, "Adam learning rate.")
flags.DEFINE_float("trained_temperature", _D.trained_temperature, "Softmax temperature.")
flags.DEFINE_string("cluster_encoder", _D.cluster_encoder, "Encoder for the clusters.")
flags.DEFINE_integer("num_clusters", _D.num_clusters, "k of spherical k-means.")
flags.DEFINE_integer("restarts", _D.restarts, "k-means++ restarts.")
flags.DEFINE_enum("projection", _D.projection, ["pca", "umap"], "2-D map of the posts.")
flags.DEFINE_integer("timing_posts", _D.timing_posts, "Blog size for the timing (0: skip).")
flags.DEFINE_list("timing_encoders", list(_D.timing_encoders), "Encoders timed.")
flags.DEFINE_string("export_dir", _D.export_dir,
                    "Related-articles SavedModel base path (empty: no export).")
flags.DEFINE_string("export_encoder", _D.export_encoder, "Keras tower exported.")
flags.DEFINE_integer("export_version", _D.export_version, "SavedModel version folder.")
flags.DEFINE_integer("seed", _D.seed, "Random seed.")
flags.mark_flag_as_required("posts_dir")


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")
  config = techblog_report.Config(
      posts_dir=FLAGS.posts_dir, output_dir=FLAGS.output_dir, strict=FLAGS.strict,
      encoders=encoder_names(FLAGS.encoders), variants=FLAGS.variants,
      main_variant=FLAGS.main_variant, k=FLAGS.k, example_posts=FLAGS.example_posts,
      tag_encoder=FLAGS.tag_encoder, tag_k=FLAGS.tag_k, test_fraction=FLAGS.test_fraction,
      tag_methods=FLAGS.tag_methods, trained_epochs=FLAGS.trained_epochs,
      trained_learning_rate=FLAGS.trained_learning_rate,
      trained_temperature=FLAGS.trained_temperature, cluster_encoder=FLAGS.cluster_encoder,
      num_clusters=FLAGS.num_clusters, restarts=FLAGS.restarts, projection=FLAGS.projection,
      timing_posts=FLAGS.timing_posts, timing_encoders=FLAGS.timing_encoders,
      export_dir=FLAGS.export_dir or None, export_encoder=FLAGS.export_encoder,
      export_version=FLAGS.export_version, seed=FLAGS.seed)
  techblog_report.run(config)


if __name__ == "__main__":
  app.run(main)
