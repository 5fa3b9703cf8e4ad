"""The tech blog's adapted tower: the frozen USE tower plus a ``ResidualAdapter`` trained
on pairs made from the blog's own posts, no tags. Two pair sources (a searched setting):

- ``views``: a post's title + lede ↔ its headings / paragraphs (``tb.contrastive_views``);
- ``neighbors``: a post's main text ↔ the main texts of its nearest posts under the
  equal-weight fusion of the frozen USE cosine and a character TF-IDF cosine fitted on
  the same posts (the adapter learns the corpus's own lexical neighbourhoods).

The USE embeddings of every post's views and main text are computed once
(``tower_views``); each trial trains only the adapter on the posts it is given
(``fit_adapter``) and embeds those posts' main texts (``embed_rows``). ``techblog`` makes
it one harness row, ``TOWER``, whose configuration (steps, temperature, adapter width,
fusion weight, pair source) is chosen on the development posts, then exports the chosen
fit like the article tower (``text`` → ``embedding``) with ``export_tower``.
"""

import dataclasses
import itertools
import pathlib
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfrs_emb.core.linalg import l2_normalize
from tfrs_emb.core.linalg import top_k_excluding_self
from tfrs_emb.data import techblog as tb
from tfrs_emb.encoders.baselines import TfidfCharNgramEncoder
from tfrs_emb.models.adapted_tower import AdaptedTextEncoder
from tfrs_emb.models.adapted_tower import AdapterConfig
from tfrs_emb.models.adapted_tower import ResidualAdapter
from tfrs_emb.models.adapted_tower import train_adapter
from tfrs_emb.models.article_tower import ArticleTower
from tfrs_emb.models.article_tower import export_article_tower

TOWER = "use+adapter"
SEARCHED = ("steps", "temperature", "hidden", "weight", "pairs")
PAIR_SOURCES = ("views", "neighbors")


@dataclasses.dataclass
class TowerViews:
  """Frozen embeddings of every post's contrastive views and main text.

  Attributes:
    anchors: float32 [N, D], post i's anchor (title + lede).
    positives: float32 [M, D], the posts' positives (``tb.contrastive_views``).
    owner: int [M], the post of each positive.
    main: float32 [N, D], each post's main text.
    texts: the N main texts.
  """
  anchors: np.ndarray
  positives: np.ndarray
  owner: np.ndarray
  main: np.ndarray
  texts: List[str]


def tower_views(posts: Sequence[tb.Post], texts: Sequence[str], encode, main: np.ndarray,
                max_paragraphs: int) -> TowerViews:
  """Embeds every post's views once with ``encode`` (texts → float32 [n, D] unit rows);
  ``texts`` are the posts' main texts and ``main`` float32 [N, D] their embedding by the
  same encoder."""
  views = [tb.contrastive_views(p, max_paragraphs) for p in posts]
  positives = [t for _, pos in views for t in pos]
  owner = np.array([i for i, (_, pos) in enumerate(views) for _ in pos], np.int64)
  return TowerViews(encode([a for a, _ in views]), encode(positives), owner,
                    np.asarray(main, np.float32), list(texts))


def search_space(steps: Sequence[int], temperatures: Sequence[float], hidden: Sequence[int],
                 weights: Sequence[float],
                 pairs: Sequence[str]) -> Tuple[Dict[str, Any], ...]:
  """Every combination of the searched settings, in trial order (``SEARCHED`` keys)."""
  unknown = set(pairs) - set(PAIR_SOURCES)
  if unknown:
    raise ValueError(f"unknown pair sources {sorted(unknown)}; expected {PAIR_SOURCES}")
  return tuple(dict(zip(SEARCHED, combo))
               for combo in itertools.product(steps, temperatures, hidden, weights, pairs))


def fused_neighbors(main: np.ndarray, texts: Sequence[str], n: int) -> np.ndarray:
  """int [N, n]: each post's n nearest other posts (-1: none) under the equal-weight
  fusion of ``main`` (float32 [N, D] unit rows) and a character TF-IDF fitted on
  ``texts``."""
  tfidf = TfidfCharNgramEncoder().fit(texts).encode(texts)
  fused = l2_normalize(np.concatenate([main, tfidf], axis=1))
  return top_k_excluding_self(fused, fused, np.arange(len(texts)), n)[1]


def _pairs(views: TowerViews, rows: np.ndarray, source: str, neighbors: int):
  """(anchors [n, D], positives [m, D], owner int [m]) of posts ``rows`` only."""
  if source == "neighbors":
    main = views.main[rows]
    nb = fused_neighbors(main, [views.texts[i] for i in rows], neighbors)
    owner = np.repeat(np.arange(len(rows)), nb.shape[1])
    keep = nb.reshape(-1) >= 0
    return main, main[nb.reshape(-1)[keep]], owner[keep]
  position = np.full(len(views.anchors), -1, np.int64)
  position[rows] = np.arange(len(rows))
  keep = position[views.owner] >= 0
  return views.anchors[rows], views.positives[keep], position[views.owner[keep]]


def fit_adapter(views: TowerViews, params: Mapping[str, Any], rows: Sequence[int], seed: int,
                batch_size: int, learning_rate: float,
                neighbors: int) -> Tuple[ResidualAdapter, List[float]]:
  """Trains an adapter with ``params`` (one ``search_space`` entry) on the pairs of posts
  ``rows`` only (``neighbors`` nearest posts each for the ``neighbors`` source); returns
  it and its loss per step."""
  anchors, positives, owner = _pairs(views, np.asarray(rows, np.int64), params["pairs"],
                                     neighbors)
  config = AdapterConfig(batch_size=batch_size, learning_rate=learning_rate,
                         **{key: params[key] for key in SEARCHED if key != "pairs"})
  return train_adapter(anchors, positives, owner, config, seed=seed)


def embed_rows(adapter: ResidualAdapter, views: TowerViews, rows: Sequence[int]) -> np.ndarray:
  """float32 [len(rows), D] adapted unit embeddings of posts ``rows``' main texts."""
  return l2_normalize(adapter(tf.constant(views.main[np.asarray(rows, np.int64)])).numpy())


def export_tower(base: tf.keras.layers.Layer, adapter: ResidualAdapter, export_dir: str,
                 version: int, probe_texts: Sequence[str]) -> Dict[str, Any]:
  """Exports ``base`` + ``adapter`` as an ``ArticleTower`` SavedModel (``text`` →
  ``embedding``), reloads it and compares it with the in-process tower.

  Returns:
    path, size_bytes (the version folder), probe_texts, reload_min_cosine (over the
    probe texts).
  """
  tower = ArticleTower(AdaptedTextEncoder(base, adapter))
  path = export_article_tower(tower, export_dir, version=version)
  serve = tf.saved_model.load(str(path)).signatures["serving_default"]
  got = l2_normalize(serve(text=tf.constant(list(probe_texts)))["embedding"].numpy())
  want = l2_normalize(tower.embed(list(probe_texts)))
  size = sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())
  return {"path": str(path), "size_bytes": int(size), "probe_texts": len(probe_texts),
          "reload_min_cosine": float(np.min(np.sum(got * want, axis=1)))}
