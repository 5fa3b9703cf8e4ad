"""Tech blog trainer end to end (cheap encoders) and the related-articles SavedModel."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.analysis import techblog_report
from tfrs_emb.analysis.related_export import export_related_articles
from tfrs_emb.analysis.related_export import load_related_articles

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOPICS = {
    "go": ("Go言語", ["Go", "テスト"], "Programming", ["Goのテスト", "goroutine入門", "Go Modules"]),
    "aws": ("AWS Lambda", ["AWS", "Lambda"], "Infrastructure",
            ["Lambdaの設定", "AWS SAM", "DynamoDB"]),
    "vue": ("Vue.js", ["Vue.js", "フロントエンド"], "Frontend",
            ["Vue.jsのslot", "props down", "Vuex"]),
}


def _write_posts(root: pathlib.Path, per_topic: int = 5) -> None:
  day = 1
  for name, (title, tags, cat, heads) in TOPICS.items():
    for i in range(per_topic):
      tag_key = "tags" if i % 2 else "tag"
      cat_key = "categories" if i % 2 else "category"
      text = (f"---\ntitle: \"{title}の記事 その{i}\"\ndate: 2020/02/{day:02d} 10:00:00\n"
              f"{tag_key}:\n" + "".join(f"  - {t}\n" for t in tags[:1 + i % 2]) +
              f"{cat_key}:\n  - {cat}\nlede: \"{title}について{heads[i % 3]}を説明します。\"\n\n"
              "---\n\n" + "".join(f"## {h} {title}\n\n" for h in heads) +
              "```\n# code comment\n```\n")
      (root / "2020").mkdir(parents=True, exist_ok=True)
      (root / "2020" / f"2020020{day:02d}-{name}{i}.md").write_text(text, encoding="utf-8")
      day += 1
  (root / "broken.md").write_text("no front matter here\n", encoding="utf-8")


@pytest.fixture(scope="session")
def posts_dir(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp("posts")
  _write_posts(root)
  return root


def test_trainer_cli_end_to_end(posts_dir, tmp_path):
  out = tmp_path / "run"
  cmd = [sys.executable, "-m", "trainers.techblog", f"--posts_dir={posts_dir}",
         f"--output_dir={out}", "--encoders=tfidf,random,fusion(tfidf+random)",
         "--tag_encoder=tfidf", "--cluster_encoder=tfidf", "--num_clusters=3",
         "--restarts=2", "--trained_epochs=3", "--timing_posts=40",
         "--timing_encoders=tfidf", "--export_dir="]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "loaded 15 posts, skipped 1" in proc.stdout
  assert "broken.md: no YAML front matter" in proc.stdout
  m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
  assert m["posts_loaded"] == 15 and m["posts_skipped"] == 1
  for enc in ("tfidf", "random", "fusion(tfidf+random)"):
    for variant in ("title", "title+lede", "title+lede+headings", "body"):
      cell = m["similar"][enc][variant]
      assert 0.0 <= cell["rank_dice@4"] <= 1.0 and cell["seconds"] >= 0.0
  # Topic-separated posts: TF-IDF finds same-topic neighbours far better than chance.
  assert m["similar"]["tfidf"]["title+lede+headings"]["rank_dice@4"] > 0.6
  for method in ("direct", "mean", "trained"):
    for key in ("recall@5", "precision@5", "ndcg@5"):
      assert 0.0 <= m["tags"][method][key] <= 1.0
  assert m["tags_split"]["test_posts"] == 3  # round(15 * 0.17)
  assert -1.0 <= m["clusters"]["silhouette"] <= 1.0
  assert m["clusters"]["nmi_category"] > 0.5
  assert m["timing"]["tfidf"]["posts"] == 40
  report = (out / "report.md").read_text(encoding="utf-8")
  for needle in ("## Similar articles", "## Tag recommendation", "## Clusters",
                 "## Recommendations", "related:", "diverse", "personalized:"):
    assert needle in report
  for png in ("dendrogram.png", "post_map.png"):
    assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strict_flag_fails_on_bad_post(posts_dir, tmp_path):
  with pytest.raises(Exception, match=r"broken\.md: no YAML front matter"):
    techblog_report.run(techblog_report.Config(
        posts_dir=str(posts_dir), output_dir=str(tmp_path), strict=True,
        encoders=("random",), tag_methods=(), timing_posts=0, export_dir=None))


class CharHashTower(tf.keras.layers.Layer):
  """Tiny test tower: mean of hashed character embeddings, L2-normalised. [B] → [B, 16]."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.hashing = tf.keras.layers.Hashing(num_bins=512)
    self.embedding = tf.keras.layers.Embedding(512, 16)

  def call(self, text):
    chars = tf.strings.unicode_split(text, "UTF-8")
    pooled = tf.reduce_mean(self.embedding(self.hashing(chars)), axis=1)
    return tf.math.l2_normalize(pooled, axis=-1)


def test_related_articles_savedmodel_reload(tmp_path):
  tf.keras.utils.set_random_seed(0)
  tower = CharHashTower()
  texts = ["Goのテスト入門", "AWS Lambdaの設定", "Vue.jsのslot", "Terraform 101",
           "BigQuery入門"]
  ids = [f"2020/post-{i}" for i in range(len(texts))]
  emb = tower(tf.constant(texts)).numpy()
  path = export_related_articles(tower, ids, emb, tmp_path / "related_articles", k=3)
  assert path == tmp_path / "related_articles" / "1"
  loaded = tf.saved_model.load(str(path))
  sig = loaded.signatures["serving_default"]
  assert sig.structured_input_signature[1]["text"].dtype == tf.string
  out = sig(text=tf.constant(texts))
  assert out["ids"].dtype == tf.string and out["ids"].shape == (5, 3)
  assert out["scores"].dtype == tf.float32
  related = load_related_articles(path)
  got_ids, got_scores = related(texts)
  # Same ids as searching the in-memory embeddings exactly.
  scores = tower(tf.constant(texts)).numpy() @ emb.T
  expected = np.array(ids, object)[np.argsort(-scores, axis=1)[:, :3]]
  np.testing.assert_array_equal(got_ids, expected)
  assert got_ids[:, 0].tolist() == ids  # each text's nearest post is itself
  np.testing.assert_allclose(got_scores, np.sort(scores, axis=1)[:, ::-1][:, :3], atol=1e-5)
  # A second export goes to version 2 with version=None; reload gives identical ids.
  path2 = export_related_articles(tower, ids, emb, tmp_path / "related_articles", k=3,
                                  version=None)
  assert path2.name == "2"
  np.testing.assert_array_equal(load_related_articles(path2)(texts)[0], got_ids)


def test_real_posts_cheap_encoders(shared_data, tmp_path):
  m = techblog_report.run(techblog_report.Config(
      posts_dir=str(shared_data / "techblog" / "posts"), output_dir=str(tmp_path),
      encoders=("tfidf", "random"), variants=("title+lede+headings",),
      tag_encoder="tfidf", tag_methods=("direct", "mean"), cluster_encoder="tfidf",
      restarts=2, timing_posts=0, export_dir=None))
  assert m["posts_loaded"] == 100 and m["posts_skipped"] == 0
  assert m["tags_split"]["test_posts"] == 17
  tfidf = m["similar"]["tfidf"]["title+lede+headings"]["rank_dice@4"]
  rnd = m["similar"]["random"]["title+lede+headings"]["rank_dice@4"]
  assert tfidf > rnd + 0.08
  assert m["tags"]["mean"]["recall@5"] > 0.1


def test_use_tower_run_exports_related_articles(posts_dir, tmp_path):
  """The real Keras USE tower behind the trainer's export; reload gives identical ids."""
  from tfrs_emb.analysis.text_encoders import KerasTextEncoder, make_encoder
  from tfrs_emb.data import techblog as tb
  enc = make_encoder("use")
  assert isinstance(enc, KerasTextEncoder)
  m = techblog_report.run(techblog_report.Config(
      posts_dir=str(posts_dir), output_dir=str(tmp_path / "run"),
      encoders=("use",), variants=("title+lede+headings",), tag_methods=(),
      num_clusters=3, restarts=1, timing_posts=0,
      export_dir=str(tmp_path / "related_articles")))
  path = pathlib.Path(m["export"]["path"])
  assert path == tmp_path / "related_articles" / "1"
  posts = tb.load_posts(posts_dir, verbose=False).posts
  texts = [p.text("title+lede+headings") for p in posts]
  got_ids, got_scores = load_related_articles(path)(texts[:6])
  emb = enc.encode(texts)
  order = np.argsort(-(emb[:6] @ emb.T), axis=1)[:, :4]
  expected = np.array([p.post_id for p in posts], object)[order]
  np.testing.assert_array_equal(got_ids, expected)
  assert got_scores.shape == (6, 4) and np.all(np.diff(got_scores, axis=1) <= 1e-6)
