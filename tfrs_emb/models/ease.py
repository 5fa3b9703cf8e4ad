"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): the closed-form linear
set-completion peer every set model is compared with.

Usage::

  from tfrs_emb.models import ease
  lam, curve = ease.tune(val_indptr, val_indices, vocab_size, evaluate)   # λ on validation
  model = ease.fit(indptr, indices, vocab_size, lam)
  scores = model.scorer()(ctx_indptr, ctx_indices)     # float32 [num_sets, vocab_size]

Model: X is the binary set × element matrix, G = XᵀX its co-occurrence (Gram) matrix,
P = (G + λI)⁻¹ and B = I − P·diag(1/diag P), i.e. B_ij = −P_ij / P_jj off the diagonal
and B_jj = 0: the least-squares weights that rebuild every element from the *other*
elements of its set, ridge-penalised by λ. A set's scores are x·B (x its binary row).

Modelled elements: every element while the vocabulary fits ``max_items`` (default
MAX_ITEMS): G and P are dense [n, n] float64 (8·n² bytes each) and inverting costs O(n³).
Beyond it, only elements of >= ``min_count`` training sets (default MIN_COUNT; callers
pass the CBOW's min_count: an element of one set would only memorise it), at most the
``max_items`` most frequent. The other elements are ranked below all modelled ones by
training count (popularity), contribute nothing as context, and ``Ease.items`` says how
many were modelled. ``fit`` and ``tune`` log a capped fit.

λ search: ``tune`` decomposes G = V diag(s) Vᵀ once (``eigh``); every λ's
P = V diag(1/(s + λ)) Vᵀ then needs no inverse, and its scores x·B = x − (x·P) / diag P
cost O(m·n²) for m validation sets, so the grid costs one decomposition.
"""

import dataclasses
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
import scipy.sparse

from tfrs_emb.core.log import Log, no_log

# Elements of fewer training sets are not modelled: one set's element would only memorise it.
MIN_COUNT = 2
# Most elements modelled. At 8,000 on 2 cores (measured 2026-12-07): tune's eigh 170 s,
# fit's inverse 38 s, peak RSS 2.6 GB (512 MB per dense float64 matrix); cost grows as n³,
# memory as n². 30,000 took ≈ 50 min per inverse and ≈ 30 GB. The tail follows popularity.
MAX_ITEMS = 8_000
# λ candidates of ``tune`` (log-spaced; Steck's data sets land in the hundreds).
LAMBDA_GRID = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
               5000.0, 10000.0)

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def binary_matrix(indptr: np.ndarray, indices: np.ndarray,
                  num_items: int) -> scipy.sparse.csr_matrix:
  """float64 CSR [num_sets, num_items]: 1 where the element is in the set (repeats count once)."""
  indptr = np.asarray(indptr, np.int64)
  indices = np.asarray(indices, np.int64)
  x = scipy.sparse.csr_matrix((np.ones(len(indices)), indices, indptr),
                              shape=(len(indptr) - 1, num_items))
  x.sum_duplicates()
  x.data[:] = 1.0
  return x


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
  """B = I − P·diag(1/diag P), P = (gram + λI)⁻¹, diagonal 0: float32 [n, n]."""
  g = np.array(gram, np.float64)
  g[np.diag_indices_from(g)] += lam
  p = np.linalg.inv(g)
  b = -p / np.diag(p)[None, :]
  b[np.diag_indices_from(b)] = 0.0
  return b.astype(np.float32)


def modelled_min_count(min_count: int) -> int:
  """The fewest training sets of an element EASE models beyond ``max_items`` when the
  embeddings keep elements of >= ``min_count`` sets: that, and never below MIN_COUNT."""
  return max(min_count, MIN_COUNT)


def head_items(counts: np.ndarray, min_count: int, max_items: int) -> np.ndarray:
  """int64 element ids EASE models (sorted): all while they fit ``max_items``; else those
  of >= ``min_count`` sets, at most the ``max_items`` most frequent (ties: lower id
  first)."""
  if len(counts) <= max_items:
    return np.arange(len(counts))
  frequent = np.argsort(-counts, kind="stable")[:max_items]
  return np.sort(frequent[counts[frequent] >= min_count])


def context_matrix(ctx_indptr: np.ndarray, ctx_indices: np.ndarray,
                   col: np.ndarray) -> scipy.sparse.csr_matrix:
  """float32 CSR [num_sets, n]: the sets' binary rows x over n modelled elements.

  Args:
    ctx_indptr, ctx_indices: CSR of the sets (corpus element ids).
    col: int [vocab_size] each element's column in [0, n), -1 when not modelled (ignored).
  """
  ctx_indptr = np.asarray(ctx_indptr, np.int64)
  cols = col[np.asarray(ctx_indices, np.int64)]
  rows = np.repeat(np.arange(len(ctx_indptr) - 1), np.diff(ctx_indptr))
  known = cols >= 0
  x = scipy.sparse.csr_matrix(
      (np.ones(int(known.sum()), np.float32), (rows[known], cols[known])),
      shape=(len(ctx_indptr) - 1, int(col.max(initial=-1)) + 1))
  x.data[:] = 1.0   # a repeated context element counts once (as in training)
  return x


@dataclasses.dataclass
class Ease:
  """A fitted EASE model over a corpus vocabulary of ``len(counts)`` elements.

  Attributes:
    items: int64 [n] element ids with EASE weights (all when n == len(counts)).
    weights: float32 [n, n] B over ``items`` (zero diagonal).
    counts: float64 [vocab_size] training set counts (ranks the elements not modelled).
    lam: the ridge λ.
  """
  items: np.ndarray
  weights: np.ndarray
  counts: np.ndarray
  lam: float

  @property
  def restricted(self) -> bool:
    """True when only the most frequent elements are modelled (min_count or max_items)."""
    return len(self.items) < len(self.counts)

  def scorer(self) -> Scorer:
    """Scores ``(ctx_indptr, ctx_indices)`` → float32 [num_sets, vocab_size]: x·B for the
    modelled elements; the others below every modelled one, ordered by training count."""
    return _scorer(self.items, self.counts, lambda x: x @ self.weights)


def _scorer(items: np.ndarray, counts: np.ndarray,
            head: Callable[[scipy.sparse.csr_matrix], np.ndarray]) -> Scorer:
  """``Ease.scorer`` given ``head``: the sets' binary rows x [m, n] over ``items`` → x·B
  [m, n]. A set with no modelled element (x = 0: every x·B is 0) is scored by popularity
  instead of by element id."""
  vocab_size = len(counts)
  col = np.full(vocab_size, -1, np.int64)
  col[items] = np.arange(len(items))
  tail = np.ones(vocab_size, bool)
  tail[items] = False
  # In (−1, 0): below the row's lowest EASE score, more frequent = higher.
  scale = counts.max() + 1.0
  tail_rank = (counts[tail] / scale - 1.0).astype(np.float32)
  popularity = (counts[items] / scale).astype(np.float32)

  def score(ctx_indptr, ctx_indices):
    x = context_matrix(ctx_indptr, ctx_indices, col)
    h = np.asarray(head(x), np.float32)
    h[np.diff(x.indptr) == 0] = popularity
    scores = np.empty((h.shape[0], vocab_size), np.float32)
    scores[:, items] = h
    if tail.any():
      floor = h.min(1, keepdims=True) if h.size else np.zeros((len(h), 1), np.float32)
      scores[:, tail] = floor + tail_rank[None, :]
    return scores
  return score


def _spectral_head(s: np.ndarray, v: np.ndarray, lam: float):
  """x ↦ x·B for P = (G + λI)⁻¹ = V diag(1/(s + λ)) Vᵀ, G = V diag(s) Vᵀ: B's zero
  diagonal makes x·B = x − (x·P) / diag P, so no [n, n] matrix per λ."""
  inv = 1.0 / (s + lam)
  diag_p = (v * v) @ inv

  def head(x):
    xp = (np.asarray((x @ v), np.float64) * inv) @ v.T
    return x.toarray() - xp / diag_p[None, :]
  return head


def _gram(indptr, indices, vocab_size: int, min_count: int, max_items: int, log: Log):
  """(modelled items [n], training counts [vocab_size], float64 G [n, n]) (``head_items``)."""
  if min_count < 1 or max_items < 1:
    raise ValueError(f"EASE needs min_count >= 1 and max_items >= 1, got {min_count} and "
                     f"{max_items}")
  x = binary_matrix(indptr, indices, vocab_size)
  counts = np.asarray(x.sum(0)).ravel()
  items = head_items(counts, min_count, max_items)
  eligible = int((counts >= min_count).sum())
  if len(items) < vocab_size:
    capped = (f"; {eligible:,d} of them in >= {min_count} sets, capped at the most frequent"
              if eligible > max_items else f"; {eligible:,d} of them in >= {min_count} sets")
    log(f"EASE: {vocab_size:,d} elements exceed max_items={max_items:,d} (a dense n² "
        f"inverse){capped}: fitting {len(items):,d}, the other {vocab_size - len(items):,d} "
        f"ranked below them by popularity")
  x = x[:, items]
  return items, counts, (x.T @ x).toarray()


def fit(indptr: np.ndarray, indices: np.ndarray, vocab_size: int, lam: float,
        min_count: int = MIN_COUNT, max_items: int = MAX_ITEMS, log: Log = no_log) -> Ease:
  """Fits EASE on the sets of a CSR corpus.

  Args:
    indptr, indices: CSR [num_sets] of element ids in [0, vocab_size).
    vocab_size: corpus vocabulary size (score columns).
    lam: ridge λ (> 0).
    min_count: fewest training sets of a modelled element (see the module docstring).
    max_items: most elements modelled (see the module docstring).
    log: progress messages.

  Returns:
    Ease.
  """
  if lam <= 0:
    raise ValueError(f"EASE needs lam > 0, got {lam}")
  items, counts, gram = _gram(indptr, indices, vocab_size, min_count, max_items, log)
  return Ease(items, ease_weights(gram, lam), counts, float(lam))


def tune(indptr: np.ndarray, indices: np.ndarray, vocab_size: int,
         evaluate: Callable[[Scorer], float], grid: Sequence[float] = LAMBDA_GRID,
         min_count: int = MIN_COUNT, max_items: int = MAX_ITEMS,
         log: Log = no_log) -> Tuple[float, Dict[float, float]]:
  """Chooses λ: fits EASE on a validation split's training sets for every λ of ``grid``
  (one Gram matrix and one eigendecomposition for all λ) and keeps the best
  ``evaluate(scorer)`` (the first on ties; nan, e.g. no validation sets, counts as the
  worst).

  Args:
    indptr, indices: CSR of the validation split's training sets (never evaluation sets).
    vocab_size: corpus vocabulary size.
    evaluate: scores a scorer on the validation sets (higher is better).
    grid: λ candidates.
    min_count, max_items, log: as ``fit``.

  Returns:
    (best λ, {λ: validation score}).
  """
  if not len(grid):
    raise ValueError("EASE tune needs a non-empty lambda grid")
  items, counts, gram = _gram(indptr, indices, vocab_size, min_count, max_items, log)
  s, v = np.linalg.eigh(gram)
  curve = {}
  for lam in grid:
    curve[float(lam)] = float(evaluate(_scorer(items, counts, _spectral_head(s, v, lam))))
  order = list(curve)
  best = max(order, key=lambda lam: (np.nan_to_num(curve[lam], nan=-np.inf),
                                     -order.index(lam)))
  log("EASE validation: " + ", ".join(f"λ {lam:g}: {v:.4f}" for lam, v in curve.items())
      + f" → λ {best:g}")
  return best, curve
