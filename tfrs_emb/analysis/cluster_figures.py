"""Figures of the post clusters: the centroid dendrogram and the 2-D post map.

Both return ``matplotlib.figure.Figure`` objects; ``tfrs_emb.reporting.figures.save_figure``
writes them with the CJK font, so the labels can be the Japanese tag names.
"""

from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from tfrs_emb.reporting.figures import new_figure


def dendrogram_figure(linkage: np.ndarray, labels: Sequence[str]) -> Figure:
  """The centroid dendrogram, leaves in the linkage's (optimal) order.

  Args:
    linkage: scipy linkage matrix [k-1, 4] of k centroids.
    labels: k leaf labels (e.g. ``C3: Go/AWS/テスト``).
  """
  from scipy.cluster import hierarchy  # pylint: disable=import-outside-toplevel
  fig = new_figure(9, 0.5 * len(labels) + 1.5)
  ax = fig.add_subplot()
  hierarchy.dendrogram(linkage, labels=list(labels), orientation="right", ax=ax,
                       leaf_font_size=9)
  ax.set_xlabel("Ward merge height (cosine distance of centroids)")
  ax.set_title("Clusters of posts (spherical k-means centroids, Ward, optimal leaf order)")
  return fig


def post_map_figure(coords: np.ndarray, labels: np.ndarray, names: Sequence[str],
                    title: str) -> Figure:
  """Scatter of the posts' 2-D coordinates coloured by cluster, legend = cluster names.

  Args:
    coords: float [N, 2].
    labels: int [N] cluster of each post, in [0, len(names)).
    names: one legend entry per cluster.
  """
  fig = new_figure(10, 7)
  ax = fig.add_subplot()
  cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
  for j, name in enumerate(names):
    m = labels == j
    ax.scatter(coords[m, 0], coords[m, 1], s=22, color=cmap(j % cmap.N), label=name)
  ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
  ax.set_title(title)
  ax.set_xticks([])
  ax.set_yticks([])
  return fig
