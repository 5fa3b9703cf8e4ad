"""Spherical k-means, tag recommendation, recommendations API, similar search, encoders."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tfrs_emb.analysis import clustering
from tfrs_emb.analysis import tags as tagrec
from tfrs_emb.analysis.recommend import BlogRecommender
from tfrs_emb.analysis.similar import search_similar
from tfrs_emb.analysis.similar import similar_articles
from tfrs_emb.analysis.text_encoders import FusionEncoder
from tfrs_emb.analysis.text_encoders import encoder_names
from tfrs_emb.analysis.text_encoders import make_encoder


def _blobs(k=4, per=20, dim=24, noise=0.15, seed=0):
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((k, dim))
  x = np.repeat(centres, per, axis=0) + noise * rng.standard_normal((k * per, dim))
  return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(k), per)


def test_spherical_kmeans_recovers_separable_clusters():
  x, truth = _blobs()
  result = clustering.spherical_kmeans(x, k=4, restarts=3, seed=1)
  # Same partition up to label permutation.
  pairs = set(zip(truth.tolist(), result.labels.tolist()))
  assert len(pairs) == 4 and len({b for _, b in pairs}) == 4
  np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0, atol=1e-5)
  # Objective = sum of cosines to the assigned centroid.
  expected = (x * result.centroids[result.labels]).sum()
  assert result.objective == pytest.approx(expected, rel=1e-4)
  sil, nmi = clustering.cluster_quality(x, result.labels, [str(t) for t in truth])
  assert sil > 0.5 and nmi == pytest.approx(1.0)
  link = clustering.centroid_linkage(result.centroids)
  assert link.shape == (3, 4)
  # k larger than N is clipped; one point per cluster.
  small = clustering.spherical_kmeans(x[:3], k=10, restarts=1)
  assert sorted(small.labels.tolist()) == [0, 1, 2]


def test_cluster_naming_and_ascii_labels():
  x, truth = _blobs(k=2, per=5)
  result = clustering.spherical_kmeans(x, k=2, restarts=2)
  tag_names = ["日本語", "alpha", "beta"]
  tag_emb = np.stack([result.centroids[0], result.centroids[0] * 0.9 + 0.1,
                      result.centroids[1]])
  tag_emb /= np.linalg.norm(tag_emb, axis=1, keepdims=True)
  named = clustering.name_clusters(result.centroids, tag_names, tag_emb, x, num_tags=2,
                                   num_posts=3)
  assert named[0][0] == ["日本語", "alpha"]
  assert set(named[0][1]) <= set(np.flatnonzero(result.labels == 0).tolist())
  labels = clustering.figure_labels([t for t, _ in named], font=None)
  assert labels[0] == "C0: alpha" and all(lbl.isascii() for lbl in labels)
  assert clustering.figure_labels([["日本語"]], font=None) == ["C0: (non-ASCII tags)"]
  assert clustering.figure_labels([["日本語"]], font="X") == ["C0: 日本語"]


def test_recommender_related_diverse_personalized():
  # Posts 0-3 in cluster 0 (0,1,2 nearly identical), 4-5 in cluster 1.
  emb = np.array([[1, 0, 0], [0.99, 0.1, 0], [0.98, 0.15, 0], [0.7, 0.7, 0],
                  [0, 0, 1], [0, 0.1, 0.99]], np.float32)
  ids = [f"p{i}" for i in range(6)]
  dates = [1, 2, 3, 4, 5, 6]
  rec = BlogRecommender(ids, emb, dates, clusters=[0, 0, 0, 0, 1, 1])
  assert rec.related("p0", k=2) == ["p1", "p2"]
  assert rec.related(0, k=2) == rec.related("p0", k=2)
  assert "p0" not in rec.related("p0", k=5) and len(rec.related("p0", k=10)) == 5
  # Same cluster, not itself, not already related, newest first.
  assert rec.diverse("p0", k=1, related_k=2) == ["p3"]
  assert rec.related("p3", k=1) == ["p2"]
  assert rec.diverse("p3", k=3, related_k=1) == ["p1", "p0"]
  assert rec.diverse("p4", related_k=1) == []
  personal = rec.personalized(["p4", "p5"], k=3)
  assert "p4" not in personal and "p5" not in personal
  assert personal[0] == "p3"  # the only post with some y/z mass
  with pytest.raises(KeyError, match="unknown post id"):
    rec.related("nope")
  with pytest.raises(ValueError, match="non-empty reading history"):
    rec.personalized([])
  with pytest.raises(ValueError, match="needs dates and clusters"):
    BlogRecommender(ids, emb).diverse("p0")


def test_tag_time_split_mean_direct_and_trained():
  dates = list(range(12))
  post_tags = [["go"], ["go", "test"], ["aws"], ["aws", "go"], ["ui"], ["ui"],
               ["go"], ["aws"], ["ui", "new"], ["go", "test"], ["aws"], ["unseen"]]
  split = tagrec.time_split(dates, post_tags, test_fraction=0.25)
  assert split.test.tolist() == [9, 10, 11]
  assert split.tags == ["aws", "go", "new", "test", "ui"]  # tags of posts 0-8
  assert split.truth[2] == []  # 'unseen' is not recommendable
  x, _ = _blobs(k=3, per=4, noise=0.05)  # 12 posts; rows 0-3 blob 0, 4-7 blob 1, 8-11 blob 2
  topic = {"go": 0, "test": 0, "aws": 1, "ui": 2}
  emb = np.stack([x[topic[t[0]] * 4] if t[0] in topic else x[11] for t in post_tags])
  emb = emb + 0.01 * np.random.default_rng(0).standard_normal(emb.shape)
  mean = tagrec.mean_tag_embeddings(split.tags, emb, post_tags, split.train)
  ranked = tagrec.recommend(emb[split.test], mean, k=2)
  assert split.tags[ranked[0][0]] in ("go", "test")
  assert split.tags[ranked[1][0]] == "aws"
  m = tagrec.evaluate(ranked, split.truth, k=2)
  assert m["evaluated"] == 2 and m["recall@2"] == pytest.approx(1.0)
  direct = tagrec.direct_tag_embeddings(split.tags, lambda t: np.ones((len(t), 3)))
  np.testing.assert_allclose(np.linalg.norm(direct, axis=1), 1.0, atol=1e-6)
  index = {t: j for j, t in enumerate(split.tags)}
  ids = [[index[t] for t in tags if t in index] for tags in post_tags]
  trained, losses = tagrec.trained_tag_embeddings(mean, emb, ids, split.train, epochs=15,
                                                  batch_size=8, learning_rate=1e-2)
  assert trained.shape == mean.shape and losses[-1] < losses[0]
  ranked = tagrec.recommend(emb[split.test], trained, k=2)
  assert tagrec.evaluate(ranked, split.truth, k=2)["recall@2"] == pytest.approx(1.0)


def test_similar_search_and_encoders():
  texts = ["Goのテスト入門", "Goのテストを書く", "AWS Lambda入門", "AWS Lambdaの設定",
           "Vue.jsのslot", "Vue.jsのprops"]
  tags = [{"go"}, {"go"}, {"aws"}, {"aws"}, {"vue"}, {"vue"}]
  tfidf = make_encoder("tfidf")
  res, emb = similar_articles(tfidf, texts, tags, k=1)
  assert res.neighbors[:, 0].tolist() == [1, 0, 3, 2, 5, 4]
  assert res.rank_dice == pytest.approx(1.0) and res.seconds >= 0
  np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
  rnd = make_encoder("random")
  a, b = rnd.encode(texts), rnd.encode(texts)
  np.testing.assert_array_equal(a, b)
  fused = FusionEncoder(make_encoder("tfidf"), make_encoder("random")).fit(texts)
  f = fused.encode(texts)
  np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
  t = fused.second.encode(texts)
  expected = (emb @ emb.T + t @ t.T) / 2
  np.testing.assert_allclose(f @ f.T, expected, atol=1e-5)
  assert make_encoder("fusion(tfidf+random)").name == "fusion(tfidf+random)"
  assert encoder_names("use, tfidf,fusion(use+tfidf)") == ["use", "tfidf",
                                                            "fusion(use+tfidf)"]
  with pytest.raises(ValueError, match="unknown encoder"):
    make_encoder("bert")
  # Fewer posts than k: padded with -1.
  nb, sc = search_similar(emb[:2], k=3)
  assert nb[0].tolist() == [1, -1, -1] and np.isneginf(sc[0, 1])


def test_tag_ties_break_by_training_frequency_and_bootstrap():
  post = np.array([[1.0, 0.0]])
  tags = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1e-7], [0.6, 0.8]])
  # Tags 1 and 2 tie after rounding; tag 2 has more training posts so it ranks first.
  assert tagrec.recommend(post, tags, k=3, tag_counts=[1, 1, 5, 1]).tolist() == [[2, 1, 3]]
  assert tagrec.recommend(post, tags, k=2).tolist() == [[1, 2]]
  assert tagrec.tag_counts(["a", "b"], [["a"], ["a", "b"], ["c"]], [0, 1, 2]).tolist() == [2, 1]
  from tfrs_emb.analysis.similar import paired_bootstrap, per_query_rank_dice
  nb = np.array([[1, 2], [0, 2], [0, 1]])
  per_q = per_query_rank_dice(nb, [{"a"}, {"a"}, set()], k=1)
  assert per_q[:2].tolist() == [1.0, 1.0] and np.isnan(per_q[2])
  boot = paired_bootstrap(np.array([1.0, 1.0, 0.5]), np.array([0.0, 0.5, 0.5]), samples=200)
  assert boot["diff"] == pytest.approx(0.5) and boot["p_better"] > 0.5
  assert boot["ci95"][0] <= boot["diff"] <= boot["ci95"][1]
