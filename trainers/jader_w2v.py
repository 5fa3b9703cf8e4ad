"""JADER Word2Vec CBOW: Keras CBOW vs gensim, held-out element prediction, similar-case
search, CaseEncoder export (tfrs_emb.experiments.jader_w2v).

  python -m trainers.jader_w2v --flagfile=configs/jader_w2v.flags        # synthetic demo
  python -m trainers.jader_w2v --flagfile=configs/jader_w2v_full.flags   # talk's scale
  python -m trainers.jader_w2v --jader_dir=/data/jader/202404 --output_dir=runs/jader_real \
      --export_dir=exported_models/jader_case_encoder_real
"""

from absl import app

from trainers import cbow_env  # noqa: F401  (first: oneDNN off before TensorFlow loads)
import tfrs_emb  # noqa: F401
from tfrs_emb.experiments import jader_w2v
from trainers import flagdefs

flagdefs.define_config_flags(jader_w2v.Config)
main = flagdefs.table_main(jader_w2v.Config, jader_w2v.run, "case encoder")

if __name__ == "__main__":
  app.run(main)
