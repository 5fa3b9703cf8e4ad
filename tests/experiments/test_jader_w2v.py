"""jader_w2v: the trainer end to end (mirrored strategy, held-out recall, export), and
the flagfiles still parse into the experiment's Config."""

import json
import pathlib
import subprocess
import sys
import types

from absl import flags
import pytest

from tfrs_emb.data import synthetic_jader
from tfrs_emb.experiments import jader_run
from tfrs_emb.experiments import jader_w2v
from tfrs_emb.experiments import set2vec
from tfrs_emb.models.cbow import CbowConfig
from trainers import flagdefs

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _parse_flagfile(config_cls, flagfile: str, *extra):
  values = flags.FlagValues()
  flagdefs.define_config_flags(config_cls, flag_values=values)
  values(["prog", f"--flagfile={ROOT / flagfile}", *extra])
  return flagdefs.config_from_flags(config_cls, flag_values=values)


def test_flagfiles_parse_into_configs():
  demo = _parse_flagfile(jader_w2v.Config, "configs/jader_w2v.flags")
  assert demo.synthetic_cases == 30_000 and demo.window == 64 and demo.eval_sets == 2000
  full = _parse_flagfile(jader_w2v.Config, "configs/jader_w2v_full.flags")
  assert full.synthetic_cases == 692_821 and full.queries == 21_072
  # Different models, different export names; versions only for retrains of one model.
  assert demo.export_dir == "exported_models/jader_case_encoder_demo"
  assert full.export_dir == "exported_models/jader_case_encoder"
  assert demo.export_version == full.export_version == 1
  small = _parse_flagfile(jader_w2v.Config, "configs/jader_w2v_small.flags")
  assert small.synthetic_cases == 10_000 and small.window == demo.window and not small.export_dir
  # The CBOW flags fill the nested config; seed, threads and max_len follow the
  # experiment's seed, workers and window + 1.
  assert (demo.cbow.fused_tokens_per_batch, demo.cbow.noise_per_target,
          demo.cbow.fused_input_update, demo.cbow.epochs) == (128, True, "word2vec", 5)
  assert (demo.cbow.seed, demo.cbow.threads, demo.cbow.max_len) == (
      demo.seed, demo.workers, demo.window + 1)
  groceries = _parse_flagfile(set2vec.Config, "configs/set2vec_groceries.flags")
  assert groceries.sets.endswith("groceries.csv") and groceries.format == "baskets"
  assert (groceries.cbow.max_len, groceries.cbow.shared_negatives,
          groceries.cbow.learning_rate, groceries.cbow.sample) == (32, 32, 0.008, 0.0)


def test_trainer_end_to_end_mirrored(tmp_path):
  out = tmp_path / "run"
  cmd = [sys.executable, "-m", "trainers.jader_w2v", "--synthetic_cases=1500",
         "--epochs=2", "--queries=200", "--dim=16", "--min_count=2", "--eval_sets=300",
         "--tokens_per_batch=2048", "--strategy=mirrored", "--cpu_replicas=2",
         f"--cache_dir={tmp_path / 'cache'}", f"--output_dir={out}",
         f"--export_dir={tmp_path / 'export'}", "--verbose=2"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| method | aggregation | heldout_recall@10 | class_agreement@10 | rank_dice@10" \
      in proc.stdout
  assert "untrained random element vectors score high" in proc.stdout
  m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
  assert m["cases"] == 1500 and m["queries"] == 200 and m["vocab_size"] > 100
  assert m["eval_sets"] == 300 and m["train_elements"] == m["case_elements"] - 300
  assert m["config"]["eval_sets"] == 300 and m["config"]["strategy"] == "mirrored"
  searched = {(a, b) for a in ("keras_cbow", "gensim_cbow", "random") for b in ("mean", "max")}
  peers = {(name, "") for name in ("ease", "item_knn", "popularity")}
  assert {(r["method"], r["aggregation"]) for r in m["rows"]} == searched | peers
  for r in m["rows"]:
    assert 0.0 <= r["heldout_recall@10"] <= 1.0
    if (r["method"], "") not in peers:
      assert 0.0 < r["rank_dice@10"] <= 1.0 and 0.0 < r["class_agreement@10"] <= 1.0
  by = {r["method"]: r["heldout_recall@10"] for r in m["rows"]}
  assert m["kernel"] in ("fused", "tf") and {
      r.get("kernel") for r in m["rows"] if r["method"] == "keras_cbow"} == {m["kernel"]}
  assert by["popularity"] > by["random"]   # 300 sets: random ~ 10 / ~2,000 candidates
  assert min(by["ease"], by["item_knn"]) > by["random"]
  ease_row = next(r for r in m["rows"] if r["method"] == "ease")
  assert ease_row["ease_lambda"] > 0 and f"λ={ease_row['ease_lambda']:g}" in proc.stdout
  assert m["replicas"] == 2
  assert (tmp_path / "export" / "1" / "saved_model.pb").exists()
  assert (out / "projector" / "vectors.tsv").exists()
  # The vectors the export holds, for the retrieval bench, tied to this config + release.
  run = jader_run.load(out)
  assert m["element_vectors"] == str(out / "element_vectors.npz")
  assert run.release == pathlib.Path(m["release"]) and run.config == m["config"]
  assert run.vectors.shape == (m["train_vocab_size"], 16) and len(run.counts) == len(run.vocab)
  assert list((out / "tensorboard").rglob("events.out.tfevents*"))


def test_failed_export_keeps_the_metrics(tmp_path, monkeypatch):
  from tfrs_emb.models import case_encoder  # pylint: disable=import-outside-toplevel

  def broken_export(*args, **kwargs):
    raise OSError("disk full (simulated)")

  monkeypatch.setattr(case_encoder, "export_case_encoder", broken_export)
  config = jader_w2v.Config(cbow=CbowConfig(epochs=1, dim=8, min_count=1,
                                            tokens_per_batch=512),
                            synthetic_cases=400, queries=50, eval_sets=50, run_gensim=False,
                            cache_dir=str(tmp_path / "cache"),
                            output_dir=str(tmp_path / "run"),
                            export_dir=str(tmp_path / "export"), verbose=0)
  try:
    jader_w2v.run(config)
  except OSError as e:
    assert "disk full" in str(e)
  else:
    raise AssertionError("the export error must propagate")
  m = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
  assert m["export_path"] == "" and m["cases"] == 400
  assert {r["method"] for r in m["rows"]} >= {"keras_cbow", "popularity", "random"}


def test_keras_negatives_override_only_the_keras_cbow_noise_exponent_both(monkeypatch):
  from tfrs_emb.experiments import set_methods  # pylint: disable=import-outside-toplevel
  from tfrs_emb.models import cbow_training  # pylint: disable=import-outside-toplevel
  from tfrs_emb.models import gensim_cbow  # pylint: disable=import-outside-toplevel
  seen = {}

  class Stop(Exception):
    pass

  def keras_spy(indptr, indices, vocab, config, **kwargs):
    del indptr, indices, vocab, kwargs
    seen["keras"] = (config.negatives, config.noise_exponent)
    return types.SimpleNamespace(kernel="fused", train_seconds=1.0, tokens_per_s=1.0,
                                 vocab=["a", "b"], vectors=None, output_vectors=None)

  def gensim_spy(*args, **kwargs):
    seen["gensim"] = (kwargs["negatives"], kwargs["noise_exponent"])
    raise Stop

  monkeypatch.setattr(cbow_training, "train_cbow", keras_spy)
  monkeypatch.setattr(gensim_cbow, "train_gensim_cbow", gensim_spy)
  for keras_negatives, exponent, keras in ((0, 0.75, 5), (8, 0.3, 8)):
    seen.clear()
    config = jader_w2v.Config(cbow=CbowConfig(negatives=5, noise_exponent=exponent),
                              keras_negatives=keras_negatives)
    with pytest.raises(Stop):
      set_methods.train_methods(config, ["a", "b"], [0, 2], [0, 1], window=2)
    assert seen == {"keras": (keras, exponent), "gensim": (5, exponent)}


def test_compared_table_tunes_on_the_development_split_and_repeats_releases(tmp_path):
  config = jader_w2v.Config(cbow=CbowConfig(epochs=1, dim=8, min_count=1,
                                            tokens_per_batch=512),
                            synthetic_cases=400, queries=50, eval_sets=50, run_gensim=False,
                            cache_dir=str(tmp_path / "cache"),
                            output_dir=str(tmp_path / "run"), verbose=0, repeats=2,
                            tune="on", trials=2)
  result = jader_w2v.run(config)
  m = json.loads(result.metrics_path.read_text(encoding="utf-8"))
  compared = m["compared"]
  assert compared["repeats"] == 2 and not compared["same_items"]
  # Repeat 1 evaluates its own release, not the development release of seed 1.
  version = synthetic_jader.GENERATOR_VERSION
  assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
      f"synthetic_400_s0_g{version}", f"synthetic_400_s1000_g{version}"]
  assert compared["ours"] in ("keras_cbow", "keras_cbow+prior", "keras_softmax", "ease+cbow")
  assert rows_of(compared)["keras_softmax"]["trials"] == 2
  rows = rows_of(compared)
  assert rows["ease"]["trials"] == rows["keras_cbow"]["trials"] == rows["ease+cbow"]["trials"] == 2
  assert rows["popularity"]["trials"] == 1 and compared["tune_seconds"] > 0
  # The main table's Keras CBOW trained with the chosen configuration of the Keras CBOW
  # scoring better on development data.
  best = max((rows["keras_cbow"], rows["keras_cbow+prior"]), key=lambda r: r["dev"])
  assert len(m["keras_history"]["loss"]) == best["config"]["epochs"]
  assert "| keras_cbow+prior |" in result.table and "chosen: keras_cbow:" in \
      " ".join(result.notes)


def rows_of(compared):
  return {r["method"]: r for r in compared["rows"]}
