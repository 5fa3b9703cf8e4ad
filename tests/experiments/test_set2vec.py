"""set2vec: the embedded synthetic default end to end (labels, export + reload) and the
trainer on a long-format file with an order column and element labels."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import sets as set_files
from tfrs_emb.experiments import set2vec

ROOT = pathlib.Path(__file__).resolve().parents[2]
METHODS = ["keras_cbow", "gensim_cbow", "popularity", "random"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("set2vec")
  config = set2vec.Config(synthetic_cases=1500, epochs=3, dim=16, min_count=2,
                          tokens_per_batch=2048, eval_sets=300, verbose=0,
                          cache_dir=str(tmp / "cache"), output_dir=str(tmp / "out"),
                          export_dir=str(tmp / "export"))
  return set2vec.run(config), tmp


def test_synthetic_default_rows_and_metrics_json(synthetic_run):
  result, tmp = synthetic_run
  assert [r["method"] for r in result.rows] == METHODS
  m = json.loads(result.metrics_path.read_text(encoding="utf-8"))
  assert m["eval_sets"] == 300 and m["sets"] > 1000 and m["labelled_elements"] > 100
  assert m["config"]["synthetic_cases"] == 1500 and "machine" in m
  by = {r["method"]: r for r in m["rows"]}
  for name in METHODS:
    assert 0.0 <= by[name]["heldout_recall@10"] <= 1.0
  for name in ("keras_cbow", "gensim_cbow", "random"):
    assert 0.0 <= by[name]["label_agreement@10"] <= 1.0
  assert "label_agreement@10" not in by["popularity"]
  assert by["keras_cbow"]["train_seconds"] > 0 and by["gensim_cbow"]["tokens_per_s"] > 0
  assert by["keras_cbow"]["kernel"] in ("fused", "tf") and "kernel" not in by["gensim_cbow"]
  # Drugs of one latent class co-occur: a trained CBOW beats random vectors on labels.
  assert by["gensim_cbow"]["label_agreement@10"] > by["random"]["label_agreement@10"]
  assert ("| method | heldout_recall@10 | heldout_recall@10+prior | heldout_ndcg@10 | "
          "label_agreement@10 |") in result.table
  assert 0.0 <= by["keras_cbow"]["heldout_recall@10+prior"] <= 1.0
  assert (tmp / "out" / "projector" / "vectors.tsv").exists()


def test_exported_recommender_serves(synthetic_run):
  result, _ = synthetic_run
  fn = tf.saved_model.load(result.export_path).signatures["serving_default"]
  elements = tf.constant([["drug:アムロジピン", "reac:末梢性浮腫", ""], ["nope", "", ""]])
  out = fn(elements=elements)
  ids = np.vectorize(bytes.decode)(out["ids"].numpy())
  assert out["ids"].shape == (2, 10) and out["embedding"].shape[0] == 2
  known = out["known_elements"].numpy()
  assert known[1] == 0 and (ids[1] == "").all()
  assert known[0] >= 1 and not {"drug:アムロジピン", "reac:末梢性浮腫"} & set(ids[0])
  assert np.all(np.diff(out["scores"].numpy()[0][ids[0] != ""]) <= 0)


def test_trainer_long_format_with_order_and_labels(tmp_path):
  rng = np.random.default_rng(0)
  groups = [[f"g{g}_{i}" for i in range(8)] for g in range(5)]
  with open(tmp_path / "events.csv", "w", encoding="utf-8") as f:
    f.write("session,item,time\n")
    for s in range(600):
      g = groups[rng.integers(5)]
      for t, item in enumerate(rng.choice(g, 4, replace=False)):
        f.write(f"s{s},{item},{t}\n")
  with open(tmp_path / "labels.csv", "w", encoding="utf-8") as f:
    f.write("element,label\n" + "".join(f"{e},grp{g}\n" for g, grp in enumerate(groups)
                                        for e in grp))
  out = tmp_path / "out"
  cmd = [sys.executable, "-m", "trainers.set2vec", f"--sets={tmp_path / 'events.csv'}",
         "--format=long", "--set_column=session", "--element_column=item",
         "--order_column=time", f"--element_labels={tmp_path / 'labels.csv'}", "--epochs=2",
         "--dim=8", "--min_count=1", "--eval_sets=100", "--tokens_per_batch=512",
         "--verbose=0", f"--output_dir={out}", "--export_dir="]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| keras_cbow |" in proc.stdout and "the last element of each held out" in proc.stdout
  m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
  assert m["ordered"] and m["eval_sets"] == 100 and m["sets"] == 600
  assert m["labelled_elements"] == 40 and m["export_path"] == ""
  bad = set2vec.Config(sets=str(tmp_path / "events.csv"), format="long", set_column="user")
  with pytest.raises(set_files.SetFormatError,
                     match=r"events\.csv: missing column 'user' \(--set_column\)"):
    set2vec.run(bad)


def test_no_pair_surviving_min_count_stops_before_training(tmp_path):
  path = tmp_path / "b.csv"
  path.write_text("".join(f"a{i},b{i}\n" for i in range(50)), encoding="utf-8")
  config = set2vec.Config(sets=str(path), min_count=2, eval_sets=5,
                          output_dir=str(tmp_path / "out"), export_dir="")
  with pytest.raises(set_files.SetFormatError,
                     match=r"b\.csv: no set has 2 elements occurring in >= --min_count=2 sets "
                           r"\(0 of 100 elements reach it; the most frequent occurs in 1 of "
                           r"50 sets\)"):
    set2vec.run(config)
  assert not (tmp_path / "out").exists()
