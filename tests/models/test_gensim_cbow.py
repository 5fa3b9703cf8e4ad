"""gensim CBOW wrapper: tables aligned with the vocab; the metrics' CBOW scorer ranks like
gensim's own predict_output_word."""

import numpy as np

from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import gensim_cbow


def test_output_vectors_rank_like_predict_output_word():
  rng = np.random.default_rng(0)
  groups = [[f"g{g}_{i}" for i in range(6)] for g in range(4)]
  sentences = [list(rng.choice(groups[rng.integers(4)], 4, replace=False)) for _ in range(800)]
  res = gensim_cbow.train_gensim_cbow(sentences, dim=8, window=8, epochs=20, min_count=1,
                                      sample=0.0, workers=1, seed=0)
  assert res.vectors.shape == res.output_vectors.shape == (24, 8)
  assert res.tokens == 800 * 4 * 20 and res.tokens_per_s > 0
  context = ["g1_0", "g1_1"]
  theirs = [w for w, _ in res.model.predict_output_word(context, topn=24)]
  rows = case_encoder.map_elements(res.vocab, res.vocab)
  score = set_embeddings.cbow_scorer(rows, res.vectors, res.output_vectors)
  s = score(np.array([0, 2]), np.array([res.vocab.index(w) for w in context]))[0]
  ours = [res.vocab[i] for i in np.argsort(-s, kind="stable")]
  assert ours == theirs
  assert set(ours[:4]) == set(groups[1]) - set(context)   # the rest of its group first
