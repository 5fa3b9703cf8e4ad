"""Tag recommendation: time split, direct / mean / trained tag embeddings, ties."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
from tests.analysis.helpers import blobs
from tfrs_emb.analysis import tags as tagrec


def test_tag_time_split_mean_direct_and_trained():
  dates = list(range(12))
  post_tags = [["go"], ["go", "test"], ["aws"], ["aws", "go"], ["ui"], ["ui"],
               ["go"], ["aws"], ["ui", "new"], ["go", "test"], ["aws"], ["unseen"]]
  split = tagrec.time_split(dates, post_tags, test_fraction=0.25)
  assert split.test.tolist() == [9, 10, 11]
  assert split.tags == ["aws", "go", "new", "test", "ui"]  # tags of posts 0-8
  assert split.truth[2] == []  # 'unseen' is not recommendable
  x, _ = blobs(k=3, per=4, noise=0.05)  # 12 posts; rows 0-3 blob 0, 4-7 blob 1, 8-11 blob 2
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


def test_tag_ties_break_by_training_frequency():
  post = np.array([[1.0, 0.0]])
  tags = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1e-7], [0.6, 0.8]])
  # Tags 1 and 2 tie after rounding; tag 2 has more training posts so it ranks first.
  assert tagrec.recommend(post, tags, k=3, tag_counts=[1, 1, 5, 1]).tolist() == [[2, 1, 3]]
  assert tagrec.recommend(post, tags, k=2).tolist() == [[1, 2]]
  assert tagrec.tag_counts(["a", "b"], [["a"], ["a", "b"], ["c"]], [0, 1, 2]).tolist() == [2, 1]
