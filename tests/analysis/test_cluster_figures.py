"""Dendrogram and post map figures with Japanese cluster labels."""

import warnings

import numpy as np

from tfrs_emb.analysis import cluster_figures
from tfrs_emb.analysis import clustering
from tfrs_emb.reporting.figures import cjk_font_path
from tfrs_emb.reporting.figures import save_figure

LABELS = ["C0: 登壇レポート/Go", "C1: フロントエンド/Vue.js", "C2: サーバーレス/AWS"]


def test_dendrogram_and_map_show_japanese_labels(tmp_path):
  centroids = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]], np.float32)
  fig = cluster_figures.dendrogram_figure(clustering.centroid_linkage(centroids), LABELS)
  rng = np.random.default_rng(0)
  coords, labels = rng.standard_normal((12, 2)), np.arange(12) % 3
  post_map = cluster_figures.post_map_figure(coords, labels, LABELS, "投稿の地図")
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # a missing glyph warns
    paths = [save_figure(fig, tmp_path / "dendrogram.png"),
             save_figure(post_map, tmp_path / "post_map.png")]
  assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
  leaves = [t for t in fig.axes[0].get_yticklabels() if t.get_text()]
  assert sorted(t.get_text() for t in leaves) == sorted(LABELS)
  assert {t.get_fontproperties().get_file() for t in leaves} == {str(cjk_font_path())}
  legend = [t.get_text() for t in post_map.axes[0].get_legend().get_texts()]
  assert legend == LABELS
