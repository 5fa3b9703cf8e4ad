"""bench_cbow: the Keras grid parsing, the flagfile, and a small run end to end (gensim,
a Keras variant, a diverging one, the baselines)."""

import pathlib

import pytest
from absl import flags

from tfrs_emb.experiments import bench_cbow
from tfrs_emb.models.cbow import CbowConfig
from trainers import flagdefs

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_parse_grid_gives_one_override_dict_per_variant():
  assert bench_cbow.parse_grid("") == [{}]
  assert bench_cbow.parse_grid("learning_rate=0.02;learning_rate=0.05, epochs=3;"
                               "optimizer=adagrad") == [
      {"learning_rate": 0.02}, {"learning_rate": 0.05, "epochs": 3},
      {"optimizer": "adagrad"}]
  with pytest.raises(ValueError, match="learning_rat"):
    bench_cbow.parse_grid("learning_rat=0.02")
  with pytest.raises(ValueError, match="epochs"):
    bench_cbow.parse_grid("epochs")
  # Values take their field's type.
  assert bench_cbow.parse_grid("noise_per_target=0,epochs=3,learning_rate=1") == [
      {"noise_per_target": False, "epochs": 3, "learning_rate": 1.0}]
  with pytest.raises(ValueError, match="expected a value of type int for epochs"):
    bench_cbow.parse_grid("epochs=2.5")
  with pytest.raises(ValueError, match="expected a value of type bool for noise_per_set"):
    bench_cbow.parse_grid("noise_per_set=maybe")


def test_parse_exponents_gives_floats_and_names_a_bad_item():
  assert bench_cbow.parse_exponents("0.75, 0.5,0") == [0.75, 0.5, 0.0]
  for bad in ("0.75,x", "-0.5"):
    with pytest.raises(ValueError, match="gensim_noise_exponents item"):
      bench_cbow.parse_exponents(bad)


def test_flagfile_parses_into_the_config_with_the_former_defaults():
  values = flags.FlagValues()
  flagdefs.define_config_flags(bench_cbow.Config, flag_values=values)
  values(["prog", f"--flagfile={ROOT / 'configs/bench_cbow.flags'}"])
  config = flagdefs.config_from_flags(bench_cbow.Config, flag_values=values)
  # The flagfile's only changes: two repeats, and two Keras rows (the fused op with the
  # demo's fused settings, the pure-TF step with train_cbow's defaults).
  assert config == bench_cbow.Config(repeats=2, keras_grid=config.keras_grid)
  assert config.cbow == CbowConfig(max_len=65)   # train_cbow's defaults, window + 1
  assert (config.synthetic_cases, config.synthetic_seed, config.eval_sets,
          config.window) == (30_000, 1, 2000, 64)
  assert bench_cbow.parse_grid(config.keras_grid) == [
      {"kernel": "fused", "noise_per_target": True, "fused_input_update": "word2vec",
       "fused_learning_rate": 0.05, "fused_tokens_per_batch": 128}, {"kernel": "tf"}]


def test_run_scores_gensim_keras_variants_and_baselines(tmp_path):
  logged = []
  config = bench_cbow.Config(cbow=CbowConfig(dim=8, epochs=2, min_count=2),
                             synthetic_cases=600, cache_dir=str(tmp_path / "cache"),
                             eval_sets=100, workers=1,
                             gensim_noise_exponents="0.75,0.5",
                             keras_grid="learning_rate=0.05,tokens_per_batch=1024;"
                                        "learning_rate=1e6")
  result = bench_cbow.run(config, log=logged.append)
  by = [(r["method"], r.get("variant", "")) for r in result.rows]
  assert by == [("gensim", ""), ("gensim", "noise_exponent=0.5"),
                ("keras", "learning_rate=0.05,tokens_per_batch=1024"),
                ("keras", "learning_rate=1000000.0 (diverged)"),
                ("ease", result.rows[4]["variant"]), ("item_knn", ""),
                ("popularity", ""), ("random", "")]
  for r in result.rows[:3]:
    assert r["epochs"] == 2 and r["train_seconds"] > 0 and r["tokens_per_s"] > 0
    assert 0.0 <= r["heldout_recall@10"] <= 1.0 and 0.0 < r["class_agreement@10"] <= 1.0
  assert min(r["heldout_recall@10"] for r in result.rows[4:7]) > result.rows[7][
      "heldout_recall@10"]
  assert result.rows[2]["kernel"] in ("fused", "tf") and "kernel" not in result.rows[0]
  assert ("| method | variant | kernel | epochs | train_seconds | tokens_per_s | heldout_recall@10 "
          "| class_agreement@10 |") in result.table
  assert result.conditions.startswith("load average (1 min)")
  assert any("100 held-out sets" in m for m in logged)
  assert any(m.startswith("EASE validation: ") and m.endswith(
      # variant: "λ=…" and, as EASE models the min_count vocabulary, its element count
      f"→ {result.rows[4]['variant'].split(',')[0].replace('=', ' ')}") for m in logged)


def test_compared_table_repeats_over_releases(tmp_path):
  config = bench_cbow.Config(cbow=CbowConfig(dim=8, epochs=1, min_count=2),
                             synthetic_cases=400, cache_dir=str(tmp_path / "cache"),
                             eval_sets=50, workers=1, run_gensim=False, repeats=2,
                             compare=True, tune="on", trials=2)
  result = bench_cbow.run(config)
  compared = result.compared.as_dict()
  assert compared["repeats"] == 2 and not compared["same_items"]
  rows = {r["method"]: r for r in compared["rows"]}
  assert set(rows) == {"keras_cbow", "keras_cbow+prior", "ease", "item_knn", "popularity",
                       "ease+cbow"}
  assert rows["keras_cbow"]["trials"] == rows["item_knn"]["trials"] == 2
  assert rows["ease+cbow"]["trials"] == 2 and "ease+cbow − ease" in result.table
  assert "| keras_cbow+prior |" in result.table and "chosen: " in result.table


def test_speed_ratios_are_medians_of_interleaved_rounds_per_keras_variant():
  gensim = [100.0, 110.0, 90.0, 100.0, 105.0]
  keras = [200.0, 220.0, 180.0, 150.0, 210.0]
  rows = []
  for r, (g, kk) in enumerate(zip(gensim, keras)):
    rows += [{"method": "gensim", "variant": "", "tokens_per_s": g},
             {"method": "keras", "variant": "fused", "tokens_per_s": kk},
             # diverged in round 2: fewer timed runs than gensim, no ratio
             {"method": "keras", "variant": "tf"} if r == 2 else
             {"method": "keras", "variant": "tf", "tokens_per_s": 50.0}]
  rows.append({"method": "ease", "variant": "λ=200", "heldout_recall@10": 0.3})
  [row] = bench_cbow.speed_ratios(rows)
  assert row["variant"] == "fused" and row["rounds"] == 5
  assert row["keras tokens_per_s (median)"] == pytest.approx(200.0)
  assert row["gensim tokens_per_s (median)"] == pytest.approx(100.0)
  # per round 2.0, 2.0, 2.0, 1.5, 2.0
  assert row["ratio"] == pytest.approx({"ratio_median": 2.0, "ratio_min": 1.5,
                                        "ratio_max": 2.0, "rounds": 5})
  assert row["keras ÷ gensim tokens/s"] == "2.00× (1.50–2.00, 5 rounds)"
  with pytest.raises(ValueError, match=">= 5"):
    bench_cbow.speed_ratios(rows[:12])   # 4 rounds


def test_rounds_alternate_the_order_and_give_the_speed_ratio(tmp_path):
  config = bench_cbow.Config(cbow=CbowConfig(dim=8, epochs=1, min_count=2),
                             synthetic_cases=300, cache_dir=str(tmp_path / "cache"),
                             eval_sets=50, workers=1, repeats=5)
  result = bench_cbow.run(config)
  assert [r["method"] for r in result.rows[:10]] == ["gensim", "keras", "keras", "gensim"] * 2 \
      + ["gensim", "keras"]
  [row] = result.speed
  assert row["variant"] == "defaults" and row["rounds"] == 5
  assert row["ratio"]["ratio_min"] <= row["ratio"]["ratio_median"] <= row["ratio"]["ratio_max"]
  assert "| keras ÷ gensim tokens/s |" in result.table and "5 rounds)" in result.table
