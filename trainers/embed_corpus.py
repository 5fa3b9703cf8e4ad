"""Embed a corpus with Apache Beam through an exported model (tfrs_emb.pipelines.embed).

  python -m trainers.embed_corpus --model=exported_models/article_tower/1 \\
      --input=posts.jsonl,more/*.parquet --output=runs/post_vectors
  python -m trainers.embed_corpus --model=exported_models/jader_case_encoder/1 \\
      --input=runs/jader_full --output=runs/case_vectors \\
      --direct_num_workers=2 --direct_running_mode=multi_processing

Flags it does not know are Beam pipeline options (``--runner``, ``--direct_num_workers``,
``--project``, ...). Without ``--runner`` it runs on Beam's in-process FnApiRunner (no
network needed). Writes OUTPUT/vectors/*.parquet, OUTPUT/vertex/*.json (Vertex AI Vector
Search import files) and OUTPUT/_SUCCESS (the manifest, with the skip counts).
"""

import pathlib

from absl import app
from absl import flags

import tfrs_emb  # noqa: F401
from tfrs_emb.pipelines import embed
from tfrs_emb.pipelines import records
from trainers import flagdefs

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Exported model version folder (exported_models/NAME/VERSION).")
flags.DEFINE_list("input", None, "Text files or globs (JSON lines / CSV / TSV / Parquet: id + "
                  "text), a JADER release folder, or one set file.")
flags.DEFINE_enum("input_format", "auto", ["auto", "text", "jader", "baskets", "long"],
                  "auto: a folder is a JADER release, files are texts by suffix.")
flags.DEFINE_string("output", None, "Output folder (replaced when the run succeeds).")
flags.DEFINE_string("id_field", "id", "Id field / column of the text files.")
flags.DEFINE_string("text_field", "text", "Text field / column of the text files.")
flags.DEFINE_string("set_column", "set", "Set file (long): set id column.")
flags.DEFINE_string("element_column", "element", "Set file (long): element column.")
flags.DEFINE_string("order_column", "", "Set file (long): optional order column.")
flags.DEFINE_string("delimiter", ",", "Set file (baskets): element separator.")
flags.DEFINE_bool("suspected_only", False, "JADER: keep only suspected drugs (被疑薬).")
flags.DEFINE_integer("batch_size", 256, "Most records per model call.")
flags.DEFINE_integer("vector_shards", 4, "Parquet vector files written.")
flags.DEFINE_integer("vertex_files", 4, "Vertex AI import files written (at most 5,000).")
flags.mark_flags_as_required(["model", "input", "output"])
flagdefs.register_bounds("batch_size", lower=1)
flagdefs.register_bounds("vector_shards", lower=1)
flagdefs.register_bounds("vertex_files", lower=1, upper=embed.MAX_VERTEX_FILES)
flagdefs.register_nonempty("output", "an output folder")


def _records(log):
  """In-process records for a JADER release or a set file; None for text files."""
  kind = FLAGS.input_format
  if kind == "auto":
    is_dir = len(FLAGS.input) == 1 and pathlib.Path(FLAGS.input[0]).is_dir()
    kind = "jader" if is_dir else "text"
  if kind == "text":
    return None
  if len(FLAGS.input) != 1:
    raise app.UsageError(f"--input_format={kind} reads one folder or file, got {FLAGS.input}")
  if kind == "jader":
    return records.jader_records(FLAGS.input[0], log=log, suspected_only=FLAGS.suspected_only)
  return records.set_records(FLAGS.input[0], log=log, format=kind,
                             set_column=FLAGS.set_column, element_column=FLAGS.element_column,
                             order_column=FLAGS.order_column or None,
                             delimiter=FLAGS.delimiter)


def main(argv):
  beam_args = argv[1:]
  log = lambda m: print(m, flush=True)  # noqa: E731
  recs = _records(log)
  manifest = embed.embed_corpus(
      FLAGS.model, FLAGS.output, input_files=() if recs is not None else FLAGS.input,
      records=recs, id_field=FLAGS.id_field, text_field=FLAGS.text_field,
      beam_args=beam_args, batch_size=FLAGS.batch_size, vector_shards=FLAGS.vector_shards,
      vertex_files=FLAGS.vertex_files, log=log)
  print(f"{manifest['written']:,d} vectors → {FLAGS.output} "
        f"({len(manifest['vector_files'])} Parquet, {len(manifest['vertex_files'])} Vertex "
        f"files; manifest {FLAGS.output}/{embed.SUCCESS})")


def _parse(argv):
  """absl flags first; what absl does not know is handed to Beam."""
  return FLAGS(argv, known_only=True)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse)
