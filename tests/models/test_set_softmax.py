"""Set softmax: the loss falls, held-out elements are predicted from their group, the
SetRecommender serves exactly its scores, bad settings are refused."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import set_recommender
from tfrs_emb.models import set_softmax
from tests.models import cbow_sets


@pytest.fixture(scope="module")
def trained():
  indptr, indices, vocab = cbow_sets.grouped_sets()
  held = set_embeddings.hold_out(indptr, indices, 100, seed=0)
  config = set_softmax.SoftmaxConfig(dim=16, epochs=15, learning_rate=0.01, dropout=0.2)
  return held, vocab, set_softmax.train_set_softmax(held.train_indptr, held.train_indices,
                                                    vocab, config)


def test_loss_falls_and_held_out_elements_come_from_their_group(trained):
  held, vocab, result = trained
  assert result.losses[-1] < result.losses[0] - 0.5, result.losses
  rows = case_encoder.map_elements(vocab, result.vocab)
  prior = np.zeros(len(vocab), np.float32)
  prior[result.source_ids] = result.bias
  scores = set_embeddings.heldout_recall(
      held, set_embeddings.cbow_scorer(rows, result.vectors, result.output_vectors, prior),
      k=5)
  popular = set_embeddings.heldout_recall(held, set_embeddings.popularity_scorer(
      held, len(vocab)), k=5)
  # 10 elements per group, up to 7 in the context: the rest of the group fills the top 5.
  assert scores["heldout_recall@5"] > 0.8 > popular["heldout_recall@5"] + 0.3


def test_set_recommender_serves_the_trained_scores(trained):
  held, vocab, result = trained
  rec = set_recommender.SetRecommender(result.vocab, result.vectors, result.output_vectors,
                                       k=3, log_prior=result.bias)
  names = [result.vocab[0], result.vocab[1]]
  out = rec(tf.constant([names]))
  h = result.vectors[[0, 1]].mean(0)
  want = result.output_vectors @ h + result.bias
  want[[0, 1]] = -np.inf
  order = np.argsort(-want)[:3]
  assert out["ids"].numpy().astype(str)[0].tolist() == [result.vocab[i] for i in order]
  np.testing.assert_allclose(out["scores"].numpy()[0], want[order], rtol=1e-4, atol=1e-5)


def test_bad_settings_are_refused():
  indptr, indices, vocab = cbow_sets.grouped_sets(num_sets=20)
  with pytest.raises(ValueError, match="dropout"):
    set_softmax.train_set_softmax(indptr, indices, vocab,
                                  set_softmax.SoftmaxConfig(dropout=0.95))
  with pytest.raises(ValueError, match="elements occur"):
    set_softmax.train_set_softmax(indptr, indices, vocab,
                                  set_softmax.SoftmaxConfig(min_count=10_000))
