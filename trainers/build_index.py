"""Build a retrieval index SavedModel from embed_corpus vectors (one index or K shards).

  python -m trainers.build_index --vectors=runs/case_vectors --kind=scann --shards=4 \\
      --export_dir=exported_models/case_index

--shards=1 exports the project's single index (tfrs_emb.retrieval.export_index); K > 1
builds K indexes over disjoint ids and one SavedModel that merges their top-k
(tfrs_emb.pipelines.sharded_index). Input: query_embedding float32 [B, D]; output: ids,
scores [B, k].
"""

import time

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.pipelines import sharded_index
from tfrs_emb.pipelines import vectors
from tfrs_emb.retrieval import ScannConfig, build_brute_force, build_scann, export_index
from trainers import flagdefs

FLAGS = flags.FLAGS
flags.DEFINE_string("vectors", None, "Output folder of trainers.embed_corpus.")
flags.DEFINE_enum("source", "parquet", list(vectors.SOURCES),
                  "Read the Parquet shards or the Vertex import files.")
flags.DEFINE_enum("kind", "brute_force", list(sharded_index.KINDS), "Index kind.")
flags.DEFINE_integer("shards", 1, "Index shards over disjoint ids (1 = one index).")
flags.DEFINE_integer("k", 10, "Results per query.")
flags.DEFINE_integer("num_leaves", 1000, "ScaNN partitions (of each shard).")
flags.DEFINE_integer("num_leaves_to_search", 50, "ScaNN partitions searched (in each shard).")
flags.DEFINE_integer("num_reordering_candidates", 100, "ScaNN candidates rescored exactly "
                     "(in each shard; 0 = none).")
flags.DEFINE_string("export_dir", "exported_models/corpus_index", "Model base path.")
flags.DEFINE_integer("version", 1, "Version folder.")
flags.mark_flags_as_required(["vectors"])
for _name in ("shards", "k", "num_leaves", "num_leaves_to_search", "version"):
  flagdefs.register_bounds(_name, lower=1)
flagdefs.register_bounds("num_reordering_candidates", lower=0)


def main(argv):
  del argv
  start = time.perf_counter()
  ids, embeddings = vectors.read_vectors(FLAGS.vectors, FLAGS.source)
  print(f"{len(ids):,d} vectors of dim {embeddings.shape[1]} from {FLAGS.vectors} "
        f"({FLAGS.source})")
  scann = ScannConfig(num_leaves=FLAGS.num_leaves,
                      num_leaves_to_search=FLAGS.num_leaves_to_search,
                      num_reordering_candidates=FLAGS.num_reordering_candidates or None)
  if FLAGS.shards == 1:
    index = (build_brute_force(embeddings, ids, k=FLAGS.k) if FLAGS.kind == "brute_force"
             else build_scann(embeddings, ids, k=FLAGS.k, config=scann))
    path = export_index(index, FLAGS.export_dir, version=FLAGS.version)
  else:
    index = sharded_index.build_sharded(
        embeddings, ids, FLAGS.kind, FLAGS.shards, FLAGS.k, scann=scann)
    print(f"shards: {', '.join(f'{n:,d}' for n in index.sizes)} rows")
    path = sharded_index.export_sharded(index, FLAGS.export_dir, version=FLAGS.version)
  print(f"{FLAGS.kind} index ({FLAGS.shards} shard(s)) → {path} in "
        f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
  app.run(main)
