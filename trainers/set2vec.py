"""set2vec: Keras CBOW vs gensim on any set data, next-element recommendation export
(tfrs_emb.experiments.set2vec).

  python -m trainers.set2vec                                      # synthetic JADER sets
  python -m trainers.set2vec --flagfile=configs/set2vec_groceries.flags
  python -m trainers.set2vec --sets=events.parquet --format=long --set_column=session \\
      --element_column=item --order_column=time --element_labels=labels.csv
"""

from absl import app

from trainers import cbow_env  # noqa: F401  (first: oneDNN off before TensorFlow loads)
import tfrs_emb  # noqa: F401
from tfrs_emb.experiments import set2vec
from trainers import flagdefs

flagdefs.define_config_flags(set2vec.Config)
main = flagdefs.table_main(set2vec.Config, set2vec.run, "recommender")

if __name__ == "__main__":
  app.run(main)
