"""Embed a corpus with Apache Beam: records → RunInference → sharded vectors + Vertex files.

Usage::

  from tfrs_emb.pipelines import embed
  manifest = embed.embed_corpus(
      "exported_models/jader_case_encoder/1", "runs/vectors",
      input_files=["posts.jsonl"],                 # or records=records.jader_records(DIR)
      beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
  manifest["written"], manifest["skipped"]      # vectors written, {reason: count}

The output folder holds::

  vectors/part-SSSSS-of-NNNNN.parquet   id (string), embedding (list<float32> [D])
  vertex/part-SSSSS-of-NNNNN.json       Vertex AI Vector Search import files,
                                        one {"id": ..., "embedding": [...]} per line
  _SUCCESS                              JSON manifest: model, counts, skips, files

Pipeline: read (one file per element, so files are read in parallel; the in-process
records of a JADER release / set file are first written as Parquet files to
``OUTPUT/_records/``, removed at the end, so the pipeline's definition stays small) → drop and count bad records → one record per id
(the first by file and line; later duplicates counted) → RunInference over the model's
``serving_default`` in batches (``tfrs_emb.pipelines.model``) → drop and count sets with
no known element (zero vector) and non-finite vectors → write.

Runner: with no ``--runner`` in ``beam_args``, ``--runner=FnApiRunner`` is added: Beam's
in-process runner (``--direct_num_workers=N --direct_running_mode=multi_processing`` for N
worker processes, ``in_memory`` by default), which needs no network: Beam's
``DirectRunner`` may hand a pipeline to the Prism runner, which downloads its binary.
``--runner=DataflowRunner|FlinkRunner|SparkRunner`` and their options pass through.

A local output folder is written as a whole (``tfrs_emb.core.files.staged_dir``): it
appears with its ``_SUCCESS`` manifest only when the pipeline succeeded; a failed run leaves
no folder behind (and an earlier complete one untouched). A remote output (``gs://…``) is
written in place and marked complete by ``_SUCCESS``, written last.
"""

import json
import pathlib
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tfrs_emb.core import files
from tfrs_emb.core.log import Log, no_log
from tfrs_emb.pipelines import model as embed_model
from tfrs_emb.pipelines import records as rec

NAMESPACE = "tfrs_emb"
EMBEDDED = "embedded"
SKIP_PREFIX = "skipped: "
SUCCESS = "_SUCCESS"
# Beam's in-process portable runner: no job server, no download (DirectRunner may hand a
# pipeline to Prism, which fetches its binary from the network).
DEFAULT_RUNNER = "FnApiRunner"
VECTORS_DIR = "vectors"
VERTEX_DIR = "vertex"
# In-process records (JADER releases, set files) are handed to the pipeline as Parquet
# files here (removed once it finished), this many rows each.
STAGED_DIR = "_records"
STAGED_ROWS_PER_FILE = 20_000
# Vertex AI Vector Search reads at most this many files per import folder.
MAX_VERTEX_FILES = 5000


def _skip(reason: str) -> None:
  beam.metrics.Metrics.counter(NAMESPACE, SKIP_PREFIX + reason).inc()


def _read_file(path: str, id_field: str, text_field: str) -> Iterable[rec.Record]:
  for record, reason in rec.read_text_file(path, id_field, text_field):
    if reason is not None:
      _skip(reason)
    else:
      yield record


def _stage_records(records: Sequence[rec.Record], folder: str) -> List[str]:
  """Writes in-process records as Parquet files under ``folder`` (the pipeline reads them
  there, one file per element, rather than carrying them in its own definition)."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  paths = []
  for start in range(0, len(records), STAGED_ROWS_PER_FILE):
    chunk = records[start:start + STAGED_ROWS_PER_FILE]
    table = pa.table({"id": [r.id for r in chunk],
                      "value": [r.value if isinstance(r.value, str) else list(r.value)
                                for r in chunk],
                      "source": [r.source for r in chunk],
                      "index": pa.array([r.index for r in chunk], pa.int64())})
    path = FileSystems.join(folder, f"part-{len(paths):05d}.parquet")
    with FileSystems.create(path) as f:
      pq.write_table(table, f)
    paths.append(path)
  return paths


def _read_staged(path: str) -> Iterable[rec.Record]:
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  with FileSystems.open(path) as f:
    columns = pq.read_table(f).to_pydict()
  for rid, value, source, index in zip(columns["id"], columns["value"],
                                       columns["source"], columns["index"]):
    value = value if isinstance(value, str) else tuple(value)
    yield from _check_record(rec.Record(rid, value, source, index))


def _check_record(record: rec.Record) -> Iterable[rec.Record]:
  if not record.id:
    _skip(f"{pathlib.Path(record.source).name}: record without an id")
  elif not (record.value.strip() if isinstance(record.value, str) else record.value):
    what = "text" if isinstance(record.value, str) else "set"
    _skip(f"{pathlib.Path(record.source).name}: empty {what}")
  else:
    yield record


def _first_of_id(item) -> Iterable[rec.Record]:
  _, group = item
  group = sorted(group, key=lambda r: (r.source, r.index))
  for later in group[1:]:
    _skip(f"{pathlib.Path(later.source).name}: duplicate id (first kept)")
  yield group[0]


def _vector(item) -> Iterable[Dict[str, Any]]:
  rid, result = item
  embedding, known = result.inference
  if known == 0:
    _skip("no known element (zero vector)")
    return
  if not np.all(np.isfinite(embedding)):
    _skip("non-finite embedding")
    return
  beam.metrics.Metrics.counter(NAMESPACE, EMBEDDED).inc()
  yield {"id": rid, "embedding": np.asarray(embedding, np.float32).tolist()}


def pipeline_args(beam_args: Sequence[str]) -> List[str]:
  """``beam_args`` with ``--runner=FnApiRunner`` (in process, offline) when they name no
  runner."""
  beam_args = list(beam_args)
  if any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
    return beam_args
  return [f"--runner={DEFAULT_RUNNER}"] + beam_args


def _is_remote(path: str) -> bool:
  return "://" in path


def _counters(result) -> Dict[str, int]:
  found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
  out: Dict[str, int] = {}
  for c in found:
    value = c.committed if c.committed is not None else c.attempted
    out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value)
  return out


def _build(p: beam.Pipeline, handler, out: str, input_files: Sequence[str],
           records: Optional[Sequence[rec.Record]], id_field: str, text_field: str,
           vector_shards: int, vertex_files: int, dim: int) -> None:
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  if records is not None:
    staged = _stage_records(records, FileSystems.join(out, STAGED_DIR))
    read = p | "Staged" >> beam.Create(staged) | "ReadStaged" >> beam.FlatMap(_read_staged)
  else:
    read = (p | "Files" >> beam.Create(list(input_files))
            | "Read" >> beam.FlatMap(_read_file, id_field, text_field))
  vectors = (read
             | "ById" >> beam.Map(lambda r: (r.id, r))
             | "GroupById" >> beam.GroupByKey()
             | "FirstOfId" >> beam.FlatMap(_first_of_id)
             | "Inputs" >> beam.Map(lambda r: (r.id, r.value))
             | "Embed" >> RunInference(KeyedModelHandler(handler))
             | "Vectors" >> beam.FlatMap(_vector))
  schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32(), dim))])
  _ = vectors | "WriteVectors" >> beam.io.WriteToParquet(
      FileSystems.join(out, VECTORS_DIR, "part"), schema, num_shards=vector_shards,
      file_name_suffix=".parquet")
  _ = (vectors
       | "VertexJson" >> beam.Map(lambda v: json.dumps(v, ensure_ascii=False))
       | "WriteVertex" >> beam.io.WriteToText(
           FileSystems.join(out, VERTEX_DIR, "part"), file_name_suffix=".json",
           num_shards=vertex_files))


def _listing(out: str, sub: str) -> List[str]:
  found = FileSystems.match([FileSystems.join(out, sub, "*")])[0].metadata_list
  return sorted(pathlib.PurePosixPath(m.path).name for m in found)


def embed_corpus(model_path: "str | pathlib.Path", output: "str | pathlib.Path",
                 input_files: Sequence[str] = (),
                 records: Optional[Sequence[rec.Record]] = None,
                 id_field: str = "id", text_field: str = "text",
                 beam_args: Sequence[str] = (), batch_size: int = 256,
                 vector_shards: int = 4, vertex_files: int = 4,
                 log: Log = no_log) -> Dict[str, Any]:
  """Runs the embedding pipeline (see the module docstring); returns the manifest.

  Args:
    model_path: exported model version folder (``exported_models/NAME/VERSION``).
    output: output folder (replaced when the run succeeds).
    input_files: text files (JSON lines / CSV / TSV / Parquet with id + text).
    records: in-process records instead (``records.jader_records`` / ``set_records``).
    id_field, text_field: the id and text fields of the text files.
    beam_args: Beam pipeline options (``--runner``, ``--direct_num_workers``, ...).
    batch_size: most records per model call.
    vector_shards: Parquet files written (≥ 1).
    vertex_files: Vertex import files written (1..5000).
    log: progress messages.

  Returns:
    The ``_SUCCESS`` manifest: model, input, dim, ``written``, ``skipped`` {reason:
    count}, ``vector_files``, ``vertex_files``, ``seconds``, ``beam_args``.

  Raises:
    ModelLoadError: the model does not load or has no embedding signature.
    CorpusFormatError: a missing input file or column; sets given to a text model or
      texts to a set model.
    RuntimeError: the pipeline did not finish (no complete output is left).
  """
  if (records is None) == (not input_files):
    raise ValueError("give exactly one of input_files or records")
  if not 1 <= vertex_files <= MAX_VERTEX_FILES:
    raise ValueError(f"vertex_files must be in 1..{MAX_VERTEX_FILES}, got {vertex_files}")
  if vector_shards < 1:
    raise ValueError(f"vector_shards must be >= 1, got {vector_shards}")
  model_path, output = str(model_path), str(output)
  embedder = embed_model.load_embedder(model_path)
  wants_sets = embedder.input_name == "elements"
  if records is None:
    input_files = rec.expand_inputs(input_files)
    for path in input_files:
      rec.text_format(path)
    if wants_sets:
      raise rec.CorpusFormatError(
          f"{model_path} embeds sets ('elements'); text files {input_files[:3]} need a "
          "text model (input 'text'); give a JADER release or set file instead")
  elif records and isinstance(records[0].value, str) != (not wants_sets):
    raise rec.CorpusFormatError(
        f"{model_path} takes {embedder.input_name!r} but the records hold "
        f"{'texts' if isinstance(records[0].value, str) else 'sets'}")
  dim = int(embedder.dim)
  del embedder
  beam_args = pipeline_args(beam_args)
  handler = embed_model.SavedModelHandler(model_path, batch_size)
  start = time.perf_counter()

  def run(out: str) -> Dict[str, Any]:
    log(f"embedding with {' '.join(beam_args)} → {output}")
    p = beam.Pipeline(options=PipelineOptions(beam_args))
    _build(p, handler, out, input_files, records, id_field, text_field, vector_shards,
           vertex_files, dim)
    result = p.run()
    state = result.wait_until_finish()
    if state != beam.runners.runner.PipelineState.DONE:
      raise RuntimeError(f"embedding pipeline ended in state {state}; {output} not written")
    if records is not None:
      FileSystems.delete([FileSystems.join(out, STAGED_DIR)])
    counts = _counters(result)
    manifest = {
        "model": model_path, "input": list(input_files) if records is None else
        f"{len(records):,d} in-process records",
        "dim": dim, "written": counts.pop(EMBEDDED, 0),
        "skipped": {k[len(SKIP_PREFIX):]: v for k, v in sorted(counts.items())
                    if k.startswith(SKIP_PREFIX)},
        "vector_files": _listing(out, VECTORS_DIR), "vertex_files": _listing(out, VERTEX_DIR),
        "seconds": round(time.perf_counter() - start, 3), "beam_args": beam_args}
    with FileSystems.create(FileSystems.join(out, SUCCESS)) as f:
      f.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return manifest

  if _is_remote(output):
    manifest = run(output)
  else:
    with files.staged_dir(output) as staging:
      manifest = run(str(staging))
  log(f"{manifest['written']:,d} vectors (dim {dim}) in {manifest['seconds']:.1f} s; "
      f"skipped {sum(manifest['skipped'].values()):,d}")
  for reason, n in manifest["skipped"].items():
    log(f"  skipped {n:,d}: {reason}")
  return manifest


def read_manifest(folder: "str | pathlib.Path") -> Dict[str, Any]:
  """The ``_SUCCESS`` manifest of a complete output folder.

  Raises:
    FileNotFoundError: no manifest (the folder is missing or was not finished).
  """
  path = FileSystems.join(str(folder), SUCCESS)
  if not FileSystems.exists(path):
    raise FileNotFoundError(f"{folder}: no {SUCCESS} manifest (not an output of "
                            "trainers.embed_corpus, or a run that did not finish)")
  with FileSystems.open(path) as f:
    return json.loads(f.read().decode("utf-8"))
