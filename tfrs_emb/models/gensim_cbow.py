"""gensim's Word2Vec CBOW on sets: the reference every Keras CBOW run is compared with.

Usage::

  from tfrs_emb.models import gensim_cbow
  result = gensim_cbow.train_gensim_cbow(token_lists, dim=64, window=64, epochs=5)
  result.vocab, result.vectors, result.output_vectors   # gensim wv + syn1neg

A set has no order, so the window is made at least as long as the longest set and is not
shrunk (``shrink_windows=False``): every other element of the set is context, as in
``tfrs_emb.models.cbow``.
"""

import dataclasses
import time
from typing import Any, List, Sequence

import numpy as np


@dataclasses.dataclass
class GensimCbowResult:
  """Outcome of ``train_gensim_cbow``.

  Attributes:
    vocab: kept elements (count ≥ min_count), most frequent first.
    vectors: float32 [len(vocab), dim] input vectors (``wv.vectors``).
    output_vectors: float32 [len(vocab), dim] negative-sampling output vectors
      (``syn1neg``), which ``predict_output_word`` scores with.
    train_seconds: wall time of vocabulary building and training.
    tokens: corpus element occurrences × epochs.
    tokens_per_s: tokens / train_seconds.
    model: the trained gensim Word2Vec.
  """
  vocab: List[str]
  vectors: np.ndarray
  output_vectors: np.ndarray
  train_seconds: float
  tokens: int
  tokens_per_s: float
  model: Any


def train_gensim_cbow(sentences: Sequence[Sequence[str]], dim: int = 64, window: int = 64,
                      negatives: int = 5, epochs: int = 5, min_count: int = 5,
                      sample: float = 1e-3, workers: int = 2, seed: int = 0,
                      noise_exponent: float = 0.75, alpha: float = 0.025) -> GensimCbowResult:
  """Trains gensim Word2Vec CBOW (mean context, negative sampling) on ``sentences``.

  Args:
    sentences: each set as a list of element strings (order shuffled by the caller).
    dim, window, negatives, epochs, min_count, sample: gensim's vector_size, window,
      negative, epochs, min_count, sample.
    workers: gensim threads (with more than one, runs are not bit-reproducible).
    seed: gensim's seed.
    noise_exponent: gensim's ns_exponent (noise distribution ∝ count ** this).
    alpha: gensim's initial learning rate (decayed linearly to its min_alpha).
  """
  from gensim.models import Word2Vec  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  model = Word2Vec(sentences, vector_size=dim, window=window, negative=negatives, sg=0,
                   cbow_mean=1, min_count=min_count, sample=sample, epochs=epochs,
                   workers=workers, seed=seed, shrink_windows=False,
                   ns_exponent=noise_exponent, alpha=alpha)
  seconds = time.perf_counter() - t0
  tokens = sum(len(s) for s in sentences) * epochs
  return GensimCbowResult(vocab=list(model.wv.index_to_key),
                          vectors=np.asarray(model.wv.vectors, np.float32),
                          output_vectors=np.asarray(model.syn1neg, np.float32),
                          train_seconds=seconds, tokens=tokens,
                          tokens_per_s=tokens / seconds, model=model)
