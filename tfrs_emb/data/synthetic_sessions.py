"""Synthetic long ordered sessions: a development corpus shaped like real user histories.

Synthetic JADER cases are short (a handful of elements) and groceries baskets tiny; this
generator gives what a user's event log looks like: hundreds of users, thousands of items,
sessions of tens to hundreds of elements in time order, with a latent structure to recover.

Usage::

  from tfrs_emb.data import synthetic_sessions
  s = synthetic_sessions.generate(num_sets=300, num_items=3000, seed=0)
  synthetic_sessions.write(s, "runs/sessions.csv", "runs/session_labels.csv")
  # sessions.csv: session,item,time (one row per event, the long format set2vec reads)
  # session_labels.csv: element,label (each item's taste, for label_agreement@k)

or ``python -m trainers.make_synthetic_sessions --out=runs/sessions.csv``.

Latent structure:
  * ``num_tastes`` tastes each own a contiguous block of items (an item's label); within a
    taste items have a Zipf popularity, and tastes themselves a Zipf popularity, so the
    corpus has a long tail and a few very frequent items;
  * a user has 1-3 tastes (Zipf-weighted); a session is a walk in time: it stays in its
    current taste and switches to another of the user's tastes with ``switch`` per event,
    so neighbouring events share a taste more often than distant ones;
  * with ``noise`` an event is a globally popular item regardless of taste;
  * session lengths are log-uniform in [min_len, max_len]; an item is seen at most once
    per session (a repeat is redrawn), as the set loader keeps an element once.
"""

import dataclasses
import pathlib

import numpy as np
import pandas as pd


@dataclasses.dataclass
class SyntheticSessions:
  """Generated sessions as CSR, with each item's taste.

  Attributes:
    indptr: int64 [num_sets + 1]; session i is ``items[indptr[i]:indptr[i+1]]`` in time order.
    items: int32 [total] item ids (0 … num_items − 1), unique within a session.
    times: int64 [total] event time stamps (seconds), increasing within a session.
    taste: int32 [num_items] latent taste of every item (its label).
    user_tastes: list of int arrays, the tastes of each session's user.
  """
  indptr: np.ndarray
  items: np.ndarray
  times: np.ndarray
  taste: np.ndarray
  user_tastes: list

  def __len__(self) -> int:
    return len(self.indptr) - 1


def _zipf(n: int, exponent: float) -> np.ndarray:
  w = 1.0 / np.arange(1, n + 1) ** exponent
  return w / w.sum()


def generate(num_sets: int = 300, num_items: int = 3000, num_tastes: int = 30,
             min_len: int = 20, max_len: int = 300, switch: float = 0.1, noise: float = 0.15,
             zipf: float = 1.0, seed: int = 0) -> SyntheticSessions:
  """Generates ``num_sets`` sessions over ``num_items`` items (seeded, deterministic).

  Args:
    num_sets: sessions (one per user).
    num_items: items; split into ``num_tastes`` contiguous blocks of (almost) equal size.
    num_tastes: latent tastes (item labels).
    min_len, max_len: session length range (log-uniform); ``max_len`` is capped so a
      session can always find unseen items.
    switch: per-event probability of moving to another of the user's tastes.
    noise: per-event probability of a globally popular item instead of a taste item.
    zipf: popularity exponent of tastes and of items within a taste.
    seed: numpy seed.

  Returns:
    SyntheticSessions.

  Raises:
    ValueError: a size or probability out of range.
  """
  if num_sets < 1 or num_tastes < 1 or num_items < 2 * num_tastes:
    raise ValueError(f"need num_sets >= 1, num_tastes >= 1 and num_items >= 2·num_tastes, "
                     f"got {num_sets}, {num_tastes}, {num_items}")
  if not 2 <= min_len <= max_len:
    raise ValueError(f"need 2 <= min_len <= max_len, got {min_len}, {max_len}")
  if not (0 <= switch <= 1 and 0 <= noise < 1):
    raise ValueError(f"switch must be in [0, 1] and noise in [0, 1), got {switch}, {noise}")
  rng = np.random.default_rng(seed)
  taste = (np.arange(num_items) * num_tastes // num_items).astype(np.int32)
  starts = np.searchsorted(taste, np.arange(num_tastes + 1))
  # Item ids are shuffled so a taste is not a contiguous id range downstream.
  perm = rng.permutation(num_items)
  taste = taste[np.argsort(perm)]
  block = [perm[starts[t]:starts[t + 1]] for t in range(num_tastes)]   # by popularity
  within = [_zipf(len(b), zipf) for b in block]
  taste_p = _zipf(num_tastes, zipf)[rng.permutation(num_tastes)]
  global_p = np.zeros(num_items)
  for t in range(num_tastes):
    global_p[block[t]] = taste_p[t] * within[t]
  cap = min(max_len, num_items // 2)
  lengths = np.exp(rng.uniform(np.log(min(min_len, cap)), np.log(cap + 1), num_sets))
  lengths = np.minimum(lengths.astype(np.int64), cap)
  items, times, user_tastes = [], [], []
  for n in lengths:
    mine = rng.choice(num_tastes, rng.integers(1, 4), replace=False, p=taste_p)
    user_tastes.append(mine)
    weight = _zipf(len(mine), zipf)
    current = rng.choice(mine, p=weight)
    seen = set()
    session = []
    while len(session) < n:
      if rng.random() < switch:
        current = rng.choice(mine, p=weight)
      if rng.random() < noise:
        item = int(rng.choice(num_items, p=global_p))
      else:
        item = int(block[current][rng.choice(len(block[current]), p=within[current])])
      if item not in seen:
        seen.add(item)
        session.append(item)
    items.append(np.array(session, np.int32))
    times.append(1_600_000_000 + rng.integers(0, 10**7)
                 + np.cumsum(rng.integers(1, 600, n)))
  indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  return SyntheticSessions(indptr, np.concatenate(items), np.concatenate(times), taste,
                           user_tastes)


def item_name(i: int) -> str:
  """The item string written for item id ``i``."""
  return f"item{i:05d}"


def write(sessions: SyntheticSessions, out: "str | pathlib.Path",
          labels_out: "str | pathlib.Path" = "") -> pathlib.Path:
  """Writes the long CSV ``session,item,time`` (rows shuffled: the time column orders
  them) and, when ``labels_out``, the ``element,label`` CSV of every item's taste.

  Returns:
    The sessions file's path.
  """
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  lengths = np.diff(sessions.indptr)
  frame = pd.DataFrame({
      "session": [f"user{s:04d}" for s in np.repeat(np.arange(len(lengths)), lengths)],
      "item": [item_name(i) for i in sessions.items],
      "time": sessions.times})
  order = np.random.default_rng(len(frame)).permutation(len(frame))
  frame.iloc[order].to_csv(out, index=False)
  if labels_out:
    labels_out = pathlib.Path(labels_out)
    labels_out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"element": [item_name(i) for i in range(len(sessions.taste))],
                  "label": [f"taste{t:02d}" for t in sessions.taste]}).to_csv(
                      labels_out, index=False)
  return out
