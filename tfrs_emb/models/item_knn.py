"""Item-kNN: the co-occurrence neighbour recommender (cosine between elements' set columns).

Usage::

  from tfrs_emb.models import item_knn
  model = item_knn.fit(indptr, indices, vocab_size, neighbors=0)   # 0 = every neighbour
  scores = model.scorer()(ctx_indptr, ctx_indices)                 # [num_sets, vocab_size]

Similarity: S_ij = c_ij / sqrt(n_i · n_j), c_ij the number of sets holding both i and j,
n_i the sets holding i; S_ii = 0. With ``neighbors`` = k > 0 each element keeps only its
k most similar elements (row-wise). A set's score for j is Σ_{i in set} S_ij. Everything
stays sparse (the cost is the number of co-occurring pairs), so there is no vocabulary
limit as in EASE.
"""

import dataclasses

import numpy as np
import scipy.sparse

from tfrs_emb.models import ease


@dataclasses.dataclass
class ItemKnn:
  """A fitted item-kNN model.

  Attributes:
    similarity: float32 CSR [vocab_size, vocab_size] S (zero diagonal; rows cut to the
      top ``neighbors`` when > 0).
    neighbors: neighbours kept per element (0 = all).
  """
  similarity: scipy.sparse.csr_matrix
  neighbors: int

  def scorer(self) -> ease.Scorer:
    """Scores ``(ctx_indptr, ctx_indices)`` → float32 [num_sets, vocab_size] = x·S."""
    vocab_size = self.similarity.shape[0]

    def score(ctx_indptr, ctx_indices):
      x = ease.binary_matrix(ctx_indptr, ctx_indices, vocab_size).astype(np.float32)
      return np.asarray((x @ self.similarity).toarray(), np.float32)
    return score


def _top_k_rows(s: scipy.sparse.csr_matrix, k: int) -> scipy.sparse.csr_matrix:
  """Keeps each row's k largest entries (ties: the lower column id)."""
  keep = np.zeros(s.nnz, bool)
  for r in range(s.shape[0]):
    lo, hi = s.indptr[r], s.indptr[r + 1]
    if hi - lo <= k:
      keep[lo:hi] = True
    else:
      order = np.lexsort((s.indices[lo:hi], -s.data[lo:hi]))
      keep[lo + order[:k]] = True
  out = s.copy()
  out.data = np.where(keep, out.data, 0.0).astype(out.data.dtype)
  out.eliminate_zeros()
  return out


def fit(indptr: np.ndarray, indices: np.ndarray, vocab_size: int,
        neighbors: int = 0) -> ItemKnn:
  """Fits item-kNN on the sets of a CSR corpus.

  Args:
    indptr, indices: CSR [num_sets] of element ids in [0, vocab_size).
    vocab_size: corpus vocabulary size.
    neighbors: most similar elements kept per element (0 = all).

  Returns:
    ItemKnn.
  """
  if neighbors < 0:
    raise ValueError(f"neighbors must be >= 0, got {neighbors}")
  x = ease.binary_matrix(indptr, indices, vocab_size)
  co = (x.T @ x).tocsr()
  co.setdiag(0.0)
  co.eliminate_zeros()
  norm = np.sqrt(np.asarray(x.sum(0)).ravel())
  inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
  s = scipy.sparse.csr_matrix(scipy.sparse.diags(inv) @ co @ scipy.sparse.diags(inv),
                              dtype=np.float32)
  s.sort_indices()
  if neighbors:
    s = _top_k_rows(s, neighbors)
  return ItemKnn(s, int(neighbors))
