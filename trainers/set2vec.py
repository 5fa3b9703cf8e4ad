"""set2vec: Keras CBOW vs gensim on any set data, next-element recommendation export
(tfrs_emb.experiments.set2vec).

  python -m trainers.set2vec                                      # synthetic JADER sets
  python -m trainers.set2vec --flagfile=configs/set2vec_groceries.flags
  python -m trainers.set2vec --sets=events.parquet --format=long --set_column=session \\
      --element_column=item --order_column=time --element_labels=labels.csv
"""

import logging

from absl import app

import tfrs_emb  # noqa: F401
from tfrs_emb.experiments import set2vec
from trainers import flagdefs

flagdefs.define_config_flags(set2vec.Config)


def main(argv):
  del argv
  config = flagdefs.config_from_flags(set2vec.Config)
  flagdefs.configure_tensorflow(config.workers, config.cpu_replicas)
  logging.getLogger("gensim").setLevel(logging.WARNING)
  result = set2vec.run(config, log=lambda m: print(m, flush=True))
  print(result.table)
  print("\n".join(result.notes))
  print(f"metrics: {result.metrics_path}; recommender: {result.export_path or '(not exported)'}")


if __name__ == "__main__":
  app.run(main)
