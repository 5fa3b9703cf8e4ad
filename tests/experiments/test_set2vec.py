"""set2vec: the embedded synthetic default end to end (labels, export + reload) and the
trainer on a long-format file with an order column and element labels."""

import dataclasses
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
METHODS = ["keras_cbow", "gensim_cbow", "ease", "item_knn", "popularity", "random"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("set2vec")
  config = set2vec.Config(cbow=dataclasses.replace(set2vec.Config.cbow, epochs=3, dim=16,
                                                   min_count=2, tokens_per_batch=2048),
                          synthetic_cases=1500, eval_sets=300, verbose=0,
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
  for name in ("ease", "item_knn", "popularity"):
    assert "label_agreement@10" not in by[name]
  # EASE: λ chosen on the validation split from the grid, saved with its curve.
  from tfrs_emb.models import ease  # pylint: disable=import-outside-toplevel
  assert by["ease"]["ease_lambda"] in ease.LAMBDA_GRID
  assert len(by["ease"]["ease_validation"]) == len(ease.LAMBDA_GRID)
  # A vocabulary below ease.MAX_ITEMS is modelled whole.
  assert by["ease"]["ease_items"] == m["vocab_size"] and not by["ease"]["ease_restricted"]
  assert f"λ={by['ease']['ease_lambda']:g}" in " ".join(result.notes)
  # The peers learn the latent classes' co-occurrence: far above random.
  assert min(by["ease"]["heldout_recall@10"], by["item_knn"]["heldout_recall@10"]) \
      > by["random"]["heldout_recall@10"] + 0.05
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
  assert "| ease |" in proc.stdout and "| item_knn |" in proc.stdout
  assert "EASE validation: λ 1: " in proc.stdout
  m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
  assert m["ordered"] and m["eval_sets"] == 100 and m["sets"] == 600
  assert m["labelled_elements"] == 40 and m["export_path"] == ""
  bad = set2vec.Config(sets=str(tmp_path / "events.csv"), format="long", set_column="user")
  with pytest.raises(set_files.SetFormatError,
                     match=r"events\.csv: missing column 'user' \(--set_column\)"):
    set2vec.run(bad)


def _second_half_gain(loss):
  """Mean loss of the last 3 epochs over that of epochs 8-10 (< 1: still learning)."""
  return float(np.mean(loss[-3:]) / np.mean(loss[7:10]))


def test_long_ordered_sessions_train_with_the_defaults(tmp_path):
  """Sessions of 20-300 elements (the issue's flat 2.59 → 2.62 loss): with the defaults
  (noise per target, word2vec input update in the fused op) the loss keeps falling and the
  vectors learn the tastes; the former per-set noise with the exact update stays flat."""
  from tfrs_emb.models import cbow_kernel  # pylint: disable=import-outside-toplevel
  try:
    cbow_kernel.load()
  except cbow_kernel.KernelUnavailable as e:
    pytest.skip(f"the fused CBOW op is not built here: {e}")
  proc = subprocess.run(
      [sys.executable, "-m", "trainers.make_synthetic_sessions",
       f"--out={tmp_path / 'sessions.csv'}", f"--labels_out={tmp_path / 'labels.csv'}",
       "--sets=200", "--items=2000", "--tastes=20", "--seed=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "200 sessions" in proc.stdout
  common = dict(sets=str(tmp_path / "sessions.csv"), format="long", set_column="session",
                element_column="item", order_column="time",
                element_labels=str(tmp_path / "labels.csv"), run_gensim=False, workers=1,
                export_dir="", verbose=0)
  defaults = dataclasses.replace(set2vec.Config().cbow, min_count=1, kernel="fused")
  runs = {}
  for name, cbow_config in (
      ("defaults", defaults),
      ("per_set_exact", dataclasses.replace(defaults, noise_per_target=False,
                                            fused_input_update=""))):
    runs[name] = set2vec.run(set2vec.Config(**common, cbow=cbow_config,
                                            output_dir=str(tmp_path / name)))
  fixed, former = runs["defaults"], runs["per_set_exact"]
  assert fixed.payload["config"]["cbow"]["noise_per_target"]
  assert fixed.payload["config"]["cbow"]["fused_input_update"] == "word2vec"
  assert _second_half_gain(fixed.payload["keras_history"]["loss"]) < 0.95
  assert _second_half_gain(former.payload["keras_history"]["loss"]) > 0.96
  by = {r["method"]: r for r in fixed.rows}
  assert by["keras_cbow"]["label_agreement@10"] > 5 * by["random"]["label_agreement@10"]
  assert by["keras_cbow"]["heldout_recall@10+prior"] >= by["popularity"]["heldout_recall@10"]
  # Every session is an evaluation set: EASE validates on their remaining elements.
  assert by["ease"]["ease_validation_sets"] == 200
  assert not any(np.isnan(v) for v in by["ease"]["ease_validation"].values())


def test_no_pair_surviving_min_count_stops_before_training(tmp_path):
  path = tmp_path / "b.csv"
  path.write_text("".join(f"a{i},b{i}\n" for i in range(50)), encoding="utf-8")
  config = set2vec.Config(sets=str(path), eval_sets=5,
                          cbow=dataclasses.replace(set2vec.Config().cbow, min_count=2),
                          output_dir=str(tmp_path / "out"), export_dir="")
  with pytest.raises(set_files.SetFormatError,
                     match=r"b\.csv: no set has 2 elements occurring in >= --min_count=2 sets "
                           r"\(0 of 100 elements reach it; the most frequent occurs in 1 of "
                           r"50 sets\)"):
    set2vec.run(config)
  assert not (tmp_path / "out").exists()


def test_compared_table_with_fixed_flags_sets_the_exported_scoring(tmp_path):
  config = set2vec.Config(cbow=dataclasses.replace(set2vec.Config.cbow, epochs=2, dim=8,
                                                   min_count=2, tokens_per_batch=2048),
                          synthetic_cases=600, eval_sets=100, verbose=0, run_gensim=False,
                          cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "out"),
                          export_dir=str(tmp_path / "export"), repeats=1, tune="off")
  result = set2vec.run(config)
  m = json.loads(result.metrics_path.read_text(encoding="utf-8"))
  rows = {r["method"]: r for r in m["compared"]["rows"]}
  assert all(r["trials"] == 1 for r in rows.values())
  assert rows["ease"]["config"] == {"lam": 200.0} and rows["item_knn"]["config"] == \
      {"neighbors": 0}
  assert rows["keras_cbow"]["config"]["epochs"] == 2
  assert m["compared"]["same_items"] and m["compared"]["best_peer"] in rows
  assert m["export_prior"] == (m["compared"]["ours"] != "keras_cbow")
  assert rows["ease+cbow"]["config"]["w"] == 0.5 and rows["ease+cbow"]["config"]["lam"] == 200.0
  # the exported model is "ours" (the fused one carries EASE's B), reloadable
  assert m["exported_model"] == m["compared"]["ours"] and m["export_bytes"] > 0
  corpus, _ = set2vec.synthetic_corpus(config)
  query = [corpus.vocab[e] for e in corpus.indices[corpus.indptr[0]:corpus.indptr[1]]]
  served = tf.saved_model.load(m["export_path"]).signatures["serving_default"](
      elements=tf.constant([query, ["not an element"] + [""] * (len(query) - 1)]))
  assert served["known_elements"].numpy()[0] > 0 and served["known_elements"].numpy()[1] == 0
  assert all(served["ids"].numpy()[0]) and not any(served["ids"].numpy()[1])
