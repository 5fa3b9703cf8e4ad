"""JADER loader, synthetic generator, Keras CBOW, CaseEncoder and the jader_w2v trainer."""

import json
import pathlib
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow

ROOT = pathlib.Path(__file__).resolve().parents[2]

DEMO_H = "識別番号,報告回数,性別,年齢,体重,身長,報告年度・四半期,状況,報告の種類,報告者の資格,E2B"
DRUG_H = ("識別番号,報告回数,医薬品連番,医薬品の関与,医薬品（一般名）,医薬品（販売名）,投与経路,"
          "投与開始日,投与終了日,投与量,投与単位,分割投与回数,使用理由,医薬品の処置,"
          "再投与による再発の有無,リスク区分等")
REAC_H = "識別番号,報告回数,有害事象連番,有害事象,転帰,有害事象の発現日"
HIST_H = "識別番号,報告回数,患者情報連番,原疾患等"


def _write(folder: pathlib.Path, name: str, lines, encoding="cp932"):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def _hand_release(folder: pathlib.Path, encoding="cp932", drug_header=DRUG_H):
  """Two cases; A has a superseded report 1. Includes variants and malformed rows."""
  _write(folder, "demo2024.csv", [DEMO_H, "A1,1,男性,60歳代,,,2020年第1四半期,完了報告,自発報告,医師,",
                                  "A1,2,男性,60歳代,,,2020年第2四半期,完了報告,自発報告,医師,",
                                  "B2,1,女性,70歳代,,,2021年第1四半期,完了報告,自発報告,薬剤師,"],
         encoding)
  _write(folder, "drug2024.csv", [
      drug_header,
      "A1,1,1,被疑薬,旧薬,,経口,,,,,,,,,",                      # superseded report
      "A1,2,1,被疑薬,ｱﾑﾛｼﾞﾋﾟﾝ ,,経口,,,,,,,,,",               # half-width + space
      "A1,2,2,併用薬,アトルバスタチン,,経口,,,,,,,,,",
      "B2,1,1,被疑薬,アムロジピン,,経口,,,,,,,,,",
      "B2,1,2,被疑薬,ＡＢＣ－１,,経口,,,,,,,,,",                # full-width ASCII
      "B2,1,3,相互作用,ワルファリン,,経口,,,,,,,,,",
      "B2,1,4,被疑薬,アムロジピン,,経口,,,,,,,,,,,,,余分",      # too many fields
      "B2,1,5,被疑薬",                                          # too few fields: no name
      "C3,1,1,被疑薬,アムロジピン,,経口,,,,,,,,,",              # not in demo
      "B2,x,1,被疑薬,アムロジピン,,経口,,,,,,,,,",              # bad 報告回数
      ",1,1,被疑薬,アムロジピン,,経口,,,,,,,,,",                # empty 識別番号
  ], encoding)
  _write(folder, "reac2024.csv", [REAC_H, "A1,1,1,古い事象,回復,", "A1,2,1,末梢性浮腫,回復,",
                                  "B2,1,1,末梢性浮腫,軽快,", "B2,1,2,  ,軽快,"], encoding)
  _write(folder, "hist2024.csv", [HIST_H, "A1,2,1,高血圧", "B2,1,1,高血圧"], encoding)
  return folder


@pytest.fixture(scope="session")
def small_release(tmp_path_factory):
  out = tmp_path_factory.mktemp("jader_small")
  info = synthetic_jader.write_release(out, num_cases=3000, seed=3, chunk_cases=1000)
  return out, info


@pytest.fixture(scope="session")
def small_cases(small_release):
  return jader.load_cases(small_release[0], verbose=False)


@pytest.fixture(scope="session")
def trained(small_cases):
  return cbow.train_cbow(small_cases.indptr, small_cases.indices, small_cases.vocab,
                         dim=16, epochs=8, min_count=3, tokens_per_batch=2048, verbose=0,
                         seed=0, optimizer="adagrad", learning_rate=1.0,
                         min_learning_rate=0.01)


# ---------------------------------------------------------------- loader


def test_hand_release_latest_report_variants_and_skips(tmp_path):
  cases = jader.load_cases(_hand_release(tmp_path / "r"), verbose=False)
  assert list(cases.ids) == ["A1", "B2"]
  assert list(cases.report_numbers) == [2, 1]
  a = set(cases.elements(0))
  assert a == {"drug:アムロジピン", "drug:アトルバスタチン", "reac:末梢性浮腫", "hist:高血圧"}
  b = set(cases.elements(1))
  assert b == {"drug:アムロジピン", "drug:ABC-1", "drug:ワルファリン", "reac:末梢性浮腫",
               "hist:高血圧"}
  # Same element from a half-width spelling and a full-width one: one vocabulary entry.
  assert cases.vocab.count("drug:アムロジピン") == 1
  s = cases.skipped
  assert s["drug2024.csv: malformed row, too many fields (expected 16)"] == 1
  assert s["drug2024.csv: malformed row, too few fields (expected 16)"] == 1
  assert s["drug2024.csv: 識別番号 not in the demo file"] == 1
  assert s["drug2024.csv: 報告回数 not an integer in 0..2147483647"] == 1
  assert s["drug2024.csv: empty 識別番号 or one with a control character"] == 1
  assert s["drug2024.csv: superseded by a later 報告回数 (expected)"] == 1
  assert s["reac2024.csv: superseded by a later 報告回数 (expected)"] == 1
  assert s["reac2024.csv: empty 有害事象"] == 1


def test_suspected_only(tmp_path):
  cases = jader.load_cases(_hand_release(tmp_path / "r"), suspected_only=True, verbose=False)
  drugs = [sorted(e for e in cases.elements(i) if e.startswith("drug:")) for i in range(2)]
  assert drugs == [["drug:アムロジピン"], ["drug:ABC-1", "drug:アムロジピン"]]
  assert cases.skipped["drug2024.csv: not 被疑薬 (suspected_only)"] == 2


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_hand_release_matches_cp932(tmp_path, encoding):
  ref = jader.load_cases(_hand_release(tmp_path / "cp"), verbose=False)
  other = jader.load_cases(_hand_release(tmp_path / "u", encoding=encoding), verbose=False)
  assert jader.detect_encoding(tmp_path / "u" / "drug2024.csv") == encoding
  assert jader.detect_encoding(tmp_path / "cp" / "drug2024.csv") == "cp932"
  assert [set(ref.elements(i)) for i in range(2)] == [set(other.elements(i)) for i in range(2)]


def test_half_width_parentheses_header_matches(tmp_path):
  header = DRUG_H.replace("医薬品（一般名）", "医薬品(一般名)")
  cases = jader.load_cases(_hand_release(tmp_path / "r", drug_header=header), verbose=False)
  assert "drug:アトルバスタチン" in cases.elements(0)


def test_missing_column_is_a_clear_error(tmp_path):
  header = DRUG_H.replace("医薬品（一般名）", "医薬品名")
  with pytest.raises(jader.JaderFormatError, match=r"drug2024\.csv: missing column '医薬品（一般名）'"):
    jader.load_cases(_hand_release(tmp_path / "r", drug_header=header), verbose=False)


def test_missing_file_and_unknown_encoding(tmp_path):
  folder = _hand_release(tmp_path / "r")
  (folder / "hist2024.csv").unlink()
  with pytest.raises(jader.JaderFormatError, match=r"no hist\*\.csv"):
    jader.load_cases(folder, verbose=False)
  bad = tmp_path / "bad.csv"
  bad.write_bytes(b"\x81\xff\xfe\x80" * 10)
  with pytest.raises(jader.JaderFormatError, match="unknown encoding"):
    jader.detect_encoding(bad)


# ---------------------------------------------------------------- generator


def test_generated_release_layout_and_latent_classes(small_release, small_cases):
  folder, info = small_release
  assert info["encoding"] == "cp932"
  for kind, cols in [("demo", synthetic_jader.DEMO_COLUMNS), ("drug", synthetic_jader.DRUG_COLUMNS),
                     ("reac", synthetic_jader.REAC_COLUMNS), ("hist", synthetic_jader.HIST_COLUMNS)]:
    header = pathlib.Path(info["paths"][kind]).read_bytes().decode("cp932").split("\r\n")[0]
    assert header.split(",") == cols
  assert len(small_cases) == 3000
  assert small_cases.latent_class is not None and (small_cases.latent_class >= 0).all()
  assert small_cases.skipped.get("drug202401.csv: superseded by a later 報告回数 (expected)", 0) > 0
  assert not any(k.startswith("drug") and "malformed" in k for k in small_cases.skipped)
  # Variants are folded: no half-width katakana or padding survives loading.
  for v in small_cases.vocab:
    assert v == unicodedata.normalize("NFKC", v).strip()
  kinds = {v.split(":")[0] for v in small_cases.vocab}
  assert kinds == {"drug", "reac", "hist"}
  vocab = synthetic_jader.build_vocabulary(0)
  assert len(vocab.drugs) + len(vocab.tail_events) + len(vocab.tail_hist) > 2500


def test_generator_utf8_sig_same_content(tmp_path):
  a = synthetic_jader.write_release(tmp_path / "a", 200, seed=5)
  b = synthetic_jader.write_release(tmp_path / "b", 200, seed=5, encoding="utf-8-sig")
  ca = jader.load_cases(tmp_path / "a", verbose=False)
  cb = jader.load_cases(tmp_path / "b", verbose=False)
  assert a["rows"] == b["rows"]
  assert jader.detect_encoding(b["paths"]["reac"]) == "utf-8-sig"
  assert ca.vocab == cb.vocab and np.array_equal(ca.indices, cb.indices)


# ---------------------------------------------------------------- CBOW


def test_analytic_gradients_match_autodiff():
  rng = np.random.default_rng(0)
  model = cbow.CBOW(12, dim=4, negatives=3, shared_negatives=5,
                    noise_distribution=np.full(12, 1 / 12))
  model.output_embeddings.assign(rng.standard_normal((12, 4)).astype(np.float32))
  ids = tf.constant([[0, 3, 5], [2, 2, 7], [4, 1, 11]], tf.int32)
  neg = tf.constant([1, 6, 6, 11, 3], tf.int32)
  with tf.GradientTape() as tape:
    loss_ref, _ = model.loss_terms(ids, neg)
  ref = tape.gradient(loss_ref, [model.input_embeddings, model.output_embeddings])
  g_in, g_out, pos, negl = model.gradients(ids, neg)
  assert pos.shape == (9,) and negl.shape == (9, 5)
  np.testing.assert_allclose(model._loss(pos, negl).numpy(), loss_ref.numpy(), rtol=1e-5)
  np.testing.assert_allclose(tf.convert_to_tensor(g_in).numpy(),
                             tf.convert_to_tensor(ref[0]).numpy(), atol=1e-5)
  np.testing.assert_allclose(tf.convert_to_tensor(g_out).numpy(),
                             tf.convert_to_tensor(ref[1]).numpy(), atol=1e-5)


def test_train_step_rejects_padded_batches():
  model = cbow.CBOW(12, dim=4)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.01))
  with pytest.raises(tf.errors.InvalidArgumentError, match="padding-free"):
    model.train_step(tf.constant([[0, 3, -1], [2, 4, 7]], tf.int32))


def test_train_cbow_reports_divergence(small_cases):
  with pytest.raises(FloatingPointError, match="diverged.*learning_rate"):
    cbow.train_cbow(small_cases.indptr, small_cases.indices, small_cases.vocab, dim=8,
                    epochs=2, learning_rate=1e4, min_learning_rate=1e4, verbose=0)


def test_set_batches_are_padding_free_and_cover_every_set():
  lengths = np.array([0, 1, 2, 3, 3, 5, 9, 2, 3])
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  indices = np.arange(indptr[-1])   # element ids = positions: each set is identifiable
  batches = cbow.SetBatches(indptr, indices, epochs=2, tokens_per_batch=6, max_len=6, seed=1)
  for e in range(2):   # two epochs: same coverage, fresh order
    seen = []
    plan = batches.epoch(e)
    assert len(plan) == batches.steps_per_epoch
    for b in plan:
      assert b.dtype == np.int32 and b.ndim == 2 and b.shape[1] >= 2 and (b >= 0).all()
      assert b.shape[0] * b.shape[1] <= 6 or b.shape[0] == 1
      seen.extend(tuple(sorted(r)) for r in b)
    sets = {tuple(range(indptr[i], indptr[i + 1])) for i in range(len(lengths))
            if 2 <= lengths[i] <= 6}
    assert set(seen) - {s for s in seen if len(s) == 6} == sets and len(seen) == len(sets) + 1
    long = [s for s in seen if len(s) == 6]   # the 9-element set: a random 6 of its own
    assert len(long) == 1 and set(long[0]) <= set(range(indptr[6], indptr[7]))
  # Subsampling drops occurrences; replicas need row counts divisible by row_multiple.
  # Subsampling drops occurrences afresh each epoch, yet every epoch has the same number
  # of steps; replicas need row counts divisible by row_multiple.
  sub = cbow.SetBatches(indptr, indices, keep_probability=np.full(len(indices), 0.5),
                        epochs=4, tokens_per_batch=6, max_len=6, seed=2, row_multiple=2)
  plans = [sub.epoch(e) for e in range(4)]
  assert {len(p) for p in plans} == {sub.steps_per_epoch}
  assert all(len(b) % 2 == 0 for p in plans for b in p)
  assert len({tuple(np.concatenate([b.ravel() for b in p]).tolist()) for p in plans}) > 1


def test_cbow_learns_class_structure(small_cases, trained):
  vocab = synthetic_jader.build_vocabulary(3)
  cls = {f"drug:{d}": c for d, c in zip(vocab.drugs, vocab.drug_class)}
  rows = [i for i, v in enumerate(trained.vocab) if v in cls]
  labels = np.array([cls[trained.vocab[i]] for i in rows])
  v = trained.vectors[rows]
  v = v / np.linalg.norm(v, axis=1, keepdims=True)
  sim = v @ v.T
  same = labels[:, None] == labels[None, :]
  off = ~np.eye(len(rows), dtype=bool)
  # Untrained vectors give a gap of ~0 (±0.005 over these ~25k pairs).
  assert sim[same & off].mean() > sim[~same].mean() + 0.04
  assert trained.history["loss"][-1] < trained.history["loss"][0]
  assert trained.tokens == len(small_cases.indices) * 8


def test_case_search_beats_chance_on_latent_class(small_cases, trained):
  rows = case_encoder.map_elements(small_cases.vocab, trained.vocab)[small_cases.indices]
  emb = case_encoder.case_embeddings(small_cases.indptr, rows, trained.vectors, "mean")
  q = np.arange(0, len(small_cases), 10)
  scores = case_encoder.evaluate_case_search(emb, small_cases.element_sets(), q,
                                             small_cases.latent_class, k=10)
  chance = np.mean(np.bincount(small_cases.latent_class) ** 2) / len(small_cases) ** 2 * 30
  assert scores["class_agreement@10"] > 0.5 > chance
  assert 0.0 < scores["rank_dice@10"] <= 1.0


def test_projector_files(tmp_path, trained):
  out = cbow.write_projector(trained.vocab, trained.vectors, tmp_path / "p", trained.counts)
  vec = np.loadtxt(out / "vectors.tsv", delimiter="\t")
  meta = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
  assert vec.shape == trained.vectors.shape
  assert meta[0] == "element\tkind\tcount" and len(meta) == len(trained.vocab) + 1


# ---------------------------------------------------------------- CaseEncoder


def test_case_encoder_export_reload_unknowns(tmp_path, small_cases, trained):
  batch = [small_cases.elements(i) for i in range(6)] + [["drug:存在しない薬"]]
  rows = case_encoder.map_elements(small_cases.vocab, trained.vocab)[small_cases.indices]
  for agg in ("mean", "max"):
    enc = case_encoder.CaseEncoder(trained.vocab, trained.vectors, aggregation=agg)
    got = enc(tf.ragged.constant(batch)).numpy()
    fast = case_encoder.case_embeddings(small_cases.indptr, rows, trained.vectors, agg)[:6]
    np.testing.assert_allclose(got[:6], fast, atol=1e-5)
    assert np.all(got[6] == 0.0)           # nothing known → zero vector
    with_unknown = enc(tf.ragged.constant([batch[0] + ["reac:未知の事象", ""]])).numpy()
    np.testing.assert_allclose(with_unknown[0], got[0], atol=1e-6)
    path = case_encoder.export_case_encoder(enc, tmp_path / f"enc_{agg}", version=1)
    assert (path / "saved_model.pb").exists() and path.name == "1"
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    width = max(len(b) for b in batch)
    dense = tf.constant([b + [""] * (width - len(b)) for b in batch])
    served = fn(elements=dense)["embedding"].numpy()
    np.testing.assert_allclose(served, got, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(got[:6], axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- trainer


def test_trainer_end_to_end_mirrored(tmp_path):
  out = tmp_path / "run"
  cmd = [sys.executable, "-m", "trainers.jader_w2v", "--synthetic_cases=1500",
         "--epochs=2", "--queries=200", "--dim=16", "--min_count=2",
         "--tokens_per_batch=2048", "--strategy=mirrored", "--cpu_replicas=2",
         f"--cache_dir={tmp_path / 'cache'}", f"--output_dir={out}",
         f"--export_dir={tmp_path / 'export'}", "--verbose=2"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
  assert m["cases"] == 1500 and m["queries"] == 200 and m["vocab_size"] > 100
  assert {(r["method"], r["aggregation"]) for r in m["rows"]} == {
      (a, b) for a in ("keras_cbow", "gensim_cbow") for b in ("mean", "max")}
  for r in m["rows"]:
    assert set(r) >= {"method", "aggregation", "train_seconds", "tokens_per_s",
                      "rank_dice@10", "class_agreement@10"}
    assert 0.0 < r["rank_dice@10"] <= 1.0 and 0.0 < r["class_agreement@10"] <= 1.0
  assert m["strategy"] == "mirrored" and m["replicas"] == 2
  assert (tmp_path / "export" / "1" / "saved_model.pb").exists()
  assert (out / "projector" / "vectors.tsv").exists()
  assert list((out / "tensorboard").rglob("events.out.tfevents*"))
