"""The Beam embedding pipeline: vectors equal the in-process model's, bad input counted,
a failed run leaves no folder marked complete, all with the network closed."""

import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from tfrs_emb.pipelines import embed
from tfrs_emb.pipelines import model as embed_model
from tfrs_emb.pipelines import records
from tfrs_emb.pipelines import vectors
from tests.pipelines.conftest import ELEMENTS

IN_MEMORY = ["--direct_running_mode=in_memory"]


def _set_records(n=300, seed=0):
  rng = np.random.default_rng(seed)
  out = [records.Record(f"case-{i}", tuple(rng.choice(ELEMENTS, rng.integers(1, 7),
                                                      replace=False)), "sets", i + 1)
         for i in range(n)]
  out.append(records.Record("unknown-only", ("drug:未知", "reac:none"), "sets", n + 1))
  out.append(records.Record("case-3", ("drug:x1",), "sets", n + 2))   # duplicate id
  out.append(records.Record("empty", (), "sets", n + 3))
  return out


def _in_process(path, recs):
  """id → embedding of the first record of each id, through the model in one process."""
  model = embed_model.load_embedder(path)
  first = {}
  for r in recs:
    first.setdefault(r.id, r)
  keep = [r for r in first.values() if r.value]
  out = model.embed([r.value for r in keep])
  known = out.known if out.known is not None else np.ones(len(keep))
  return {r.id: e for r, e, k in zip(keep, out.embedding, known) if k > 0}


def _assert_same(folder, expected):
  ids, emb = vectors.read_vectors(folder)
  assert sorted(expected) == list(ids)
  want = np.stack([expected[i] for i in ids])
  assert np.max(np.abs(emb - want)) <= 1e-5


@pytest.mark.parametrize("model_fixture", ["case_encoder_path", "set_recommender_path"])
def test_set_models_through_beam_equal_in_process(tmp_path, request, model_fixture):
  path = request.getfixturevalue(model_fixture)
  recs = _set_records()
  manifest = embed.embed_corpus(path, tmp_path / "out", records=recs, beam_args=IN_MEMORY,
                                batch_size=32, vector_shards=3, vertex_files=2)
  _assert_same(tmp_path / "out", _in_process(path, recs))
  assert manifest["written"] == 300
  assert manifest["skipped"] == {"sets: duplicate id (first kept)": 1,
                                 "sets: empty set": 1, "no known element (zero vector)": 1}
  assert len(manifest["vector_files"]) == 3 and len(manifest["vertex_files"]) == 2


def _text_files(folder: pathlib.Path):
  rng = np.random.default_rng(3)
  words = ["tensorflow", "serving", "モデル", "beam", "ベクトル", "index", "scann", "a", "b"]
  texts = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(240)]
  rows = [{"id": f"doc-{i}", "text": t} for i, t in enumerate(texts)]
  jsonl = folder / "a.jsonl"
  jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:100])
                   + '\n{"id": "doc-5", "text": "duplicate"}\n{"text": "no id"}\n'
                   '{"id": "blank", "text": ""}\n', encoding="utf-8")
  pd.DataFrame(rows[100:180]).to_csv(folder / "b.csv", index=False)
  pd.DataFrame(rows[180:]).to_parquet(folder / "c.parquet")
  return [str(jsonl), str(folder / "b.csv"), str(folder / "c.parquet")], rows


def test_text_files_through_beam_equal_in_process(tmp_path, text_model_path):
  inputs, rows = _text_files(tmp_path)
  manifest = embed.embed_corpus(text_model_path, tmp_path / "out", input_files=inputs,
                                beam_args=IN_MEMORY, batch_size=16)
  recs = [records.Record(r["id"], r["text"], "", 0) for r in rows]
  _assert_same(tmp_path / "out", _in_process(text_model_path, recs))
  assert manifest["skipped"] == {"a.jsonl: duplicate id (first kept)": 1,
                                 "a.jsonl: empty text": 1,
                                 "a.jsonl: record without an id (string or integer)": 1}
  # The Vertex import files hold the same vectors, one JSON object per line.
  v_ids, v_emb = vectors.read_vectors(tmp_path / "out", source="vertex")
  p_ids, p_emb = vectors.read_vectors(tmp_path / "out")
  assert list(v_ids) == list(p_ids) and np.array_equal(v_emb, p_emb)
  line = (tmp_path / "out" / "vertex" / manifest["vertex_files"][0]).read_text().split("\n")[0]
  assert set(json.loads(line)) == {"id", "embedding"}


@pytest.mark.slow   # two worker processes, each loading TensorFlow
def test_two_worker_processes_give_the_same_vectors(tmp_path, case_encoder_path):
  recs = _set_records(n=120)
  embed.embed_corpus(case_encoder_path, tmp_path / "out", records=recs, batch_size=16,
                     beam_args=["--direct_num_workers=2",
                                "--direct_running_mode=multi_processing"])
  _assert_same(tmp_path / "out", _in_process(case_encoder_path, recs))


def test_failed_pipeline_leaves_no_folder_marked_complete(tmp_path, case_encoder_path,
                                                          monkeypatch):
  out = tmp_path / "out"
  recs = _set_records(n=40)
  embed.embed_corpus(case_encoder_path, out, records=recs, beam_args=IN_MEMORY)
  before = sorted(p.name for p in out.rglob("*"))

  def broken(item):
    raise RuntimeError("worker failure")

  monkeypatch.setattr(embed, "_vector", broken)
  with pytest.raises(Exception, match="worker failure"):
    embed.embed_corpus(case_encoder_path, out, records=recs, beam_args=IN_MEMORY)
  assert sorted(p.name for p in out.rglob("*")) == before      # the old run, untouched
  assert [p.name for p in tmp_path.iterdir()] == ["out"]       # no partial folder left
  with pytest.raises(Exception, match="worker failure"):
    embed.embed_corpus(case_encoder_path, tmp_path / "fresh", records=recs,
                       beam_args=IN_MEMORY)
  assert not (tmp_path / "fresh").exists()
  with pytest.raises(FileNotFoundError, match="no _SUCCESS manifest"):
    vectors.read_vectors(tmp_path / "fresh")


def test_model_that_does_not_load_is_named(tmp_path):
  with pytest.raises(embed_model.ModelLoadError, match="no such folder"):
    embed.embed_corpus(tmp_path / "missing", tmp_path / "out", records=_set_records(5))
  (tmp_path / "junk").mkdir()
  (tmp_path / "junk" / "saved_model.pb").write_bytes(b"not a proto")
  with pytest.raises(embed_model.ModelLoadError, match="junk: not a loadable SavedModel"):
    embed.embed_corpus(tmp_path / "junk", tmp_path / "out", records=_set_records(5))
  assert not (tmp_path / "out").exists()


def test_inputs_of_the_wrong_kind_are_named(tmp_path, case_encoder_path, text_model_path):
  inputs, _ = _text_files(tmp_path)
  with pytest.raises(records.CorpusFormatError, match="embeds sets"):
    embed.embed_corpus(case_encoder_path, tmp_path / "out", input_files=inputs)
  with pytest.raises(records.CorpusFormatError, match="takes 'text' but the records hold sets"):
    embed.embed_corpus(text_model_path, tmp_path / "out", records=_set_records(5))


def test_default_runner_is_the_in_process_fn_api_runner():
  assert embed.pipeline_args(["--direct_num_workers=2"]) == [
      "--runner=FnApiRunner", "--direct_num_workers=2"]
  assert embed.pipeline_args(["--runner=DataflowRunner"]) == ["--runner=DataflowRunner"]
