"""Synthetic long sessions: shape, determinism, latent tastes, and the written long format."""

import numpy as np
import pytest

from tfrs_emb.data import sets as set_files
from tfrs_emb.data import synthetic_sessions


@pytest.fixture(scope="module")
def sessions():
  return synthetic_sessions.generate(num_sets=120, num_items=1500, num_tastes=15, seed=4)


def test_shape_lengths_order_and_popularity_skew(sessions):
  lengths = np.diff(sessions.indptr)
  assert len(sessions) == 120 and lengths.min() >= 20 and lengths.max() <= 300
  assert lengths.max() > 150 and np.median(lengths) < 150   # log-uniform: a long tail
  assert len(sessions.items) == len(sessions.times) == sessions.indptr[-1]
  for s in range(len(sessions)):
    items = sessions.items[sessions.indptr[s]:sessions.indptr[s + 1]]
    times = sessions.times[sessions.indptr[s]:sessions.indptr[s + 1]]
    assert len(set(items.tolist())) == len(items) and np.all(np.diff(times) > 0)
  counts = np.sort(np.bincount(sessions.items, minlength=1500))[::-1]
  assert counts[:15].mean() > 5 * counts.mean()            # a few very frequent items
  assert np.bincount(sessions.taste).min() == 100           # 1,500 items / 15 tastes


def test_events_follow_the_users_tastes_with_time_locality(sessions):
  in_taste, same_as_next = [], []
  for s, mine in enumerate(sessions.user_tastes):
    tastes = sessions.taste[sessions.items[sessions.indptr[s]:sessions.indptr[s + 1]]]
    in_taste.append(np.isin(tastes, mine).mean())
    same_as_next.append((tastes[1:] == tastes[:-1]).mean())
  # Global picks (noise 0.15, and refills once a long session has used up its tastes'
  # likely items) fall outside them.
  assert 0.6 < np.mean(in_taste) < 1.0
  # Neighbouring events share a taste more often than a random pair of the same session.
  shuffled = []
  rng = np.random.default_rng(0)
  for s in range(len(sessions)):
    t = rng.permutation(sessions.taste[sessions.items[sessions.indptr[s]:sessions.indptr[s + 1]]])
    shuffled.append((t[1:] == t[:-1]).mean())
  assert np.mean(same_as_next) > np.mean(shuffled) + 0.05


def test_seeded(sessions):
  again = synthetic_sessions.generate(num_sets=120, num_items=1500, num_tastes=15, seed=4)
  np.testing.assert_array_equal(again.items, sessions.items)
  np.testing.assert_array_equal(again.times, sessions.times)
  other = synthetic_sessions.generate(num_sets=120, num_items=1500, num_tastes=15, seed=5)
  assert not np.array_equal(other.items[:50], sessions.items[:50])


def test_written_files_load_as_ordered_long_sets_with_labels(sessions, tmp_path):
  path = synthetic_sessions.write(sessions, tmp_path / "s.csv", tmp_path / "labels.csv")
  corpus = set_files.load_sets(path, format="long", set_column="session",
                               element_column="item", order_column="time")
  assert corpus.ordered and len(corpus) == 120
  pos = {v: i for i, v in enumerate(corpus.vocab)}
  row = {name: r for r, name in enumerate(corpus.set_ids)}
  for s in (0, 57, 119):
    want = [synthetic_sessions.item_name(i)
            for i in sessions.items[sessions.indptr[s]:sessions.indptr[s + 1]]]
    r = row[f"user{s:04d}"]
    got = corpus.indices[corpus.indptr[r]:corpus.indptr[r + 1]]
    assert [corpus.vocab[i] for i in got] == want   # time order restored from shuffled rows
  labels = set_files.load_element_labels(tmp_path / "labels.csv", corpus.vocab)
  for v in corpus.vocab[:20]:
    assert labels[pos[v]] == {f"taste{sessions.taste[int(v[4:])]:02d}"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_items=10, num_tastes=8), "num_items >= 2"),
    (dict(min_len=30, max_len=20), "min_len <= max_len"),
    (dict(noise=1.0), "noise in"),
])
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    synthetic_sessions.generate(**{"num_sets": 5, **kwargs})
