"""The set experiments' compared table: no evaluation set's held-out element reaches a
choosing step or a tuning fit, equal budgets over the set rows, the search spaces."""

import dataclasses

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.data import synthetic_sessions
from tfrs_emb.experiments import harness
from tfrs_emb.experiments import set_compare
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import ease
from tfrs_emb.models.cbow import CbowConfig

CBOW = CbowConfig(dim=8, epochs=2, min_count=1, tokens_per_batch=512, max_len=16,
                  kernel="tf", learning_rate=0.05)


def _corpus(seed: int = 0) -> set_compare.Corpus:
  s = synthetic_sessions.generate(120, 300, 6, 4, 16, seed=seed)
  vocab = tuple(synthetic_sessions.item_name(i) for i in range(300))
  held = set_embeddings.hold_out(s.indptr, s.items, 40, seed=0, ordered=True)
  return set_compare.Corpus(vocab, held, seed)


def test_evaluation_sets_never_reach_a_chooser_or_a_tuning_fit():
  corpora = {r: _corpus(r) for r in range(2)}
  evaluated = {(r, int(s), int(t)) for r, c in corpora.items()
               for s, t in zip(c.held.set_ids, c.held.targets)}
  shown, fitted = [], []

  def spy_chooser(candidates):
    for scores in candidates.values():
      shown.extend(scores.ids)
    return harness.best_mean(candidates)

  methods = set_compare.set_methods_list(CBOW, window=16, workers=1, k=10, trials=2, seed=0,
                                         run_gensim=False)
  spied = []
  for m in methods:
    def fit(config, train, seed, _fit=m.fit):
      fitted.append(train)
      return _fit(config, train, seed)
    spied.append(dataclasses.replace(m, fit=fit))
  result = set_compare.compare_sets(spied, corpora.__getitem__, repeats=2, trials=2, seed=0,
                                    chooser=spy_chooser, fused_k=10)
  assert shown and not evaluated & set(shown)
  # Tuning fits (before the first evaluation fit) never see an evaluation set's target.
  tuning = [t for t in fitted if t.data.indices is not corpora[0].held.train_indices
            and t.data.indices is not corpora[1].held.train_indices]
  assert tuning
  targets = dict(zip(corpora[0].held.set_ids.tolist(), corpora[0].held.targets.tolist()))
  for train in tuning:
    d = train.data
    checked = 0
    for i, (release, row) in enumerate(train.ids):   # the corpus row each set came from
      if release == 0 and row in targets:
        assert targets[row] not in d.indices[d.indptr[i]:d.indptr[i + 1]]
        checked += 1
    assert checked == len(targets)
  assert result.table.repeats == 2 and not result.table.scored.same_items
  assert result.table.ours in set_compare.OURS
  assert result.tune_seconds > 0 and result.evaluate_seconds > 0
  rows = {r.method: r for r in result.table.rows}
  assert rows[set_compare.EASE].trials == 2 and rows[set_compare.POPULARITY].trials == 1
  assert 0.0 <= rows[set_compare.EASE].cell.mean <= 1.0


def test_unequal_budget_on_the_set_path_fails_naming_the_short_method():
  methods = set_compare.set_methods_list(CBOW, window=16, workers=1, k=10,
                                         trials=len(set_compare.KNN_NEIGHBORS) + 1, seed=0,
                                         run_gensim=False)
  with pytest.raises(ValueError, match="'item_knn' has 12 configurations"):
    set_compare.compare_sets(methods, lambda r: _corpus(), repeats=1,
                             trials=len(set_compare.KNN_NEIGHBORS) + 1, seed=0)
  short = [dataclasses.replace(m, space=m.space[:1]) if m.name == set_compare.EASE else m
           for m in set_compare.set_methods_list(CBOW, 16, 1, 10, 3, 0, run_gensim=False)]
  with pytest.raises(ValueError, match="unequal tuning budgets: method 'ease'"):
    set_compare.compare_sets(short, lambda r: _corpus(), repeats=1, trials=3, seed=0)


def test_search_spaces_start_at_the_flags_and_are_distinct():
  default = set_compare.keras_default(CBOW)
  space = set_compare.draw_space(default, set_compare.KERAS_SPACE, 6, seed=0)
  assert space[0] == default and len(space) == 6
  assert len({tuple(c.items()) for c in space}) == 6
  assert set_compare.draw_space(default, set_compare.KERAS_SPACE, 6, seed=0) == space
  # the draws spread every key's values evenly: 3 draws try each of 3 epoch counts
  for seed in range(5):
    draws = set_compare.draw_space(default, set_compare.KERAS_SPACE, 4, seed=seed)[1:]
    for key, values in set_compare.KERAS_SPACE.items():
      got = [c[key] for c in draws]
      assert len(set(got)) == min(3, len(values)), (seed, key, got)
  # a small product: every other point once, distinct, then no more
  with pytest.raises(ValueError, match="trials=0 must be >= 1"):
    set_compare.draw_space(default, set_compare.KERAS_SPACE, 0, seed=0)
  with pytest.raises(ValueError, match=r"keys without values: \['epochs'\]"):
    set_compare.draw_space(default, {**set_compare.KERAS_SPACE, "epochs": ()}, 4, seed=0)
  tiny = {"a": (1, 2), "b": (1, 2)}
  all_points = set_compare.draw_space({"a": 1, "b": 1}, tiny, 10, seed=3)
  assert len(all_points) == 4 and len({tuple(c.items()) for c in all_points}) == 4
  lams = [c["lam"] for c in set_compare.ease_space(5)]
  assert lams[0] == set_compare.EASE_DEFAULT_LAMBDA and len(lams) == 5
  assert lams[1:] == sorted(lams[1:]) and lams[1] == 1.0 and lams[-1] == 1e4
  assert set_compare.ease_space(1) == ({"lam": set_compare.EASE_DEFAULT_LAMBDA},)


def _train(corpus: set_compare.Corpus) -> harness.Split:
  return set_compare.evaluation_split(corpus).train


def test_fused_numpy_scores_match_the_exported_keras_model():
  corpus = _corpus()
  train = _train(corpus)
  cbow = set_compare.on_sets(set_compare.keras_fit(CBOW))({}, train, 0)
  d = train.data
  model = set_compare.fuse(cbow, ease.fit(d.indptr, d.indices, len(d.vocab), 50.0), d, 0,
                           max_items=200)
  model = dataclasses.replace(model, w=0.5)
  assert 0 < len(model.items) <= 200 and model.scale > 0
  held = corpus.held
  ptr = held.ctx_indptr[:9] - held.ctx_indptr[0]
  ctx = held.ctx_indices[held.ctx_indptr[0]:held.ctx_indptr[8]]
  want = set_compare.fused_scorer(model, corpus.vocab)(ptr, ctx)
  # the definition: x·B on the EASE items plus w·scale·(CBOW + log prior)
  rows = model.rows(corpus.vocab)
  cbow_part = set_embeddings.cbow_scorer(rows, cbow.vectors, cbow.output_vectors,
                                         model.log_prior())(ptr, ctx)
  col = np.full(len(corpus.vocab), -1)
  col[model.items] = np.arange(len(model.items))
  x = ease.context_matrix(ptr, ctx, col).toarray()
  manual = model.cbow_weight * cbow_part
  manual[:, model.items] += x @ model.weights
  np.testing.assert_allclose(want, manual, rtol=1e-4, atol=1e-5)
  rec = set_compare.fused_recommender(model, corpus.vocab, k=10)
  batch = [[corpus.vocab[e] for e in ctx[ptr[i]:ptr[i + 1]]] for i in range(8)]
  width = max(map(len, batch))
  out = rec(tf.constant([b + [""] * (width - len(b)) for b in batch]))
  for i in range(8):
    scores = want[i].copy()
    scores[ctx[ptr[i]:ptr[i + 1]]] = -np.inf
    top = np.argsort(-scores, kind="stable")[:10]
    np.testing.assert_allclose(out["scores"].numpy()[i], scores[top], rtol=1e-4, atol=1e-5)
    assert set(out["ids"].numpy().astype(str)[i]) == {corpus.vocab[j] for j in top}


def test_fusion_weights_try_the_budget_smallest_first():
  """A validation tie goes to the first listed: the smaller CBOW weight, EASE alone first."""
  assert set_compare.fusion_weights(1)[0] == set_compare.FUSION_WEIGHTS[0]
  four = set_compare.fusion_weights(4)
  assert four[:4] == tuple(sorted(set_compare.FUSION_WEIGHTS[:4])) and four[0] == 0.0
  assert sorted(four) == sorted(set_compare.FUSION_WEIGHTS)


def test_fused_row_reuses_the_tuned_rows_and_is_ours_or_shown():
  methods = set_compare.set_methods_list(CBOW, window=16, workers=1, k=10, trials=3, seed=0,
                                         run_gensim=False)
  result = set_compare.compare_sets(methods, lambda r: _corpus(), repeats=1, trials=3,
                                    seed=0, fused_k=10)
  rows = {r.method: r for r in result.table.rows}
  fused = rows[set_compare.FUSED]
  assert fused.trials == 3
  assert fused.config["lam"] == rows[set_compare.EASE].config["lam"]
  assert {k: v for k, v in fused.config.items() if k not in ("lam", "w")} == dict(
      rows[set_compare.KERAS_PRIOR].config)
  assert fused.config["w"] in set_compare.FUSION_WEIGHTS[:3]
  assert fused.config["w"] == 0.0 or fused.dev > rows[set_compare.EASE].dev
  # w = 0 on the chosen fits is EASE alone: its validation score is at least EASE's
  assert fused.dev >= rows[set_compare.EASE].dev - 1e-12
  assert f"{set_compare.FUSED} − {set_compare.EASE}" in result.extra
  assert any(set_compare.FUSED in n for n in result.notes(10))
  # the exported model is the evaluated fit (memoized: the same tables again)
  a, b = (result.final_model(set_compare.FUSED) for _ in range(2))
  assert a.cbow is b.cbow and a.weights is b.weights and a.w == fused.config["w"]
