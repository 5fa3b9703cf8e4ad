"""The tech blog experiment: similar articles, best method, timing, tags, clusters,
recommendations and the related-articles SavedModel.

The best similar-article method and the tag methods go through ``harness.compare``: each
chosen on development posts (the oldest), compared on the newest posts with mean [95 % CI]
per row and a verdict of the chosen row against the best other row on development posts.
The rows include the optional peer ``e5`` and the adapted tower ``use+adapter``
(``techblog_tower``: the USE tower with an adapter trained on the blog's own text pairs,
its settings chosen on the development posts), whose paired differences to every other
row are reported too.

``run(config, log)`` loads a folder of markdown posts, runs one step function per part,
writes ``report.md`` (``techblog_report``), ``metrics.json`` (with the full config) and the
figures to ``config.output_dir``, and returns a ``TechblogResult``.
``trainers/techblog.py`` is its command line.
"""

import dataclasses
import datetime as _dt
import pathlib
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.analysis import cluster_figures
from tfrs_emb.analysis import clustering
from tfrs_emb.analysis import tags as tagrec
from tfrs_emb.analysis.recommend import BlogRecommender
from tfrs_emb.analysis.related_export import export_related_articles
from tfrs_emb.analysis.similar import SimilarResult
from tfrs_emb.analysis.similar import per_query_rank_dice
from tfrs_emb.analysis.similar import search_similar
from tfrs_emb.analysis.similar import similar_articles
from tfrs_emb.core.linalg import top_k_excluding_self
from tfrs_emb.data import article_texts
from tfrs_emb.data import techblog as tb
from tfrs_emb.encoders.keras_text import KerasTextEncoder
from tfrs_emb.encoders.registry import encoder_names
from tfrs_emb.encoders.registry import make_encoder
from tfrs_emb.encoders.registry import unavailable_reason
from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.experiments import techblog_report
from tfrs_emb.experiments import techblog_tower
from tfrs_emb.experiments.techblog_tower import TOWER
from tfrs_emb.metrics import comparison
from tfrs_emb.metrics import recall_at_k
from tfrs_emb.models.adapted_tower import AdaptedTextEncoder
from tfrs_emb.reporting import machine_conditions
from tfrs_emb.reporting import write_json
from tfrs_emb.reporting import write_text
from tfrs_emb.reporting.figures import save_figure

field = common.field
DEV_RULE = "dev"


@dataclasses.dataclass
class Config:
  """Options of one run; ``trainers/techblog.py`` derives its flags from these fields."""
  posts_dir: Optional[str] = field(None, "Folder of markdown posts (e.g. a Hexo "
                                   "source/_posts); required.")
  output_dir: str = field("runs/techblog", "Where report.md, metrics.json and PNGs go.")
  strict: bool = field(False, "Fail on the first post that cannot be parsed.")
  encoders: Sequence[str] = field(
      ("use", "use_reference", "tfidf", "random", "fusion(use+tfidf)", "e5"),
      "Encoders scored: use, use_reference, tfidf, random, e5, hub:PATH, fusion(A+B); an "
      "optional one whose package is not installed (e5) is skipped with its reason.")
  variants: Sequence[str] = field(tb.TEXT_VARIANTS, "Text variants scored.")
  main_variant: str = field("title+lede+headings", "Variant used for the best method, "
                            "examples, tags, clusters and export.", choices=tb.TEXT_VARIANTS)
  k: int = field(4, "Related posts per post (rank_dice@k).", lower=1)
  best_method: str = field(
      DEV_RULE, "How the best method is chosen: 'dev' = the encoder with the highest "
      "rank_dice@k on the development posts (the oldest 1 - test_fraction, searched among "
      "themselves; ties go to the first listed), or an encoder name fixed in advance. It "
      "is compared with the best other encoder on the development posts.")
  repeats: int = field(1, "Repeats of the compared tables, training seeds seed, seed+1, "
                       "...; deterministic methods vary only through the bootstrap over "
                       "posts.", lower=1)
  example_posts: int = field(3, "Posts whose top-k lists are shown.", lower=0)
  adapted_tower: bool = field(
      True, f"Also score {TOWER!r}: the USE tower with a residual adapter trained on pairs "
      "made from the posts themselves (no tags), its settings chosen on the development "
      "posts (every combination of the tower_* lists below is one trial).")
  tower_steps: Sequence[int] = field((50, 200), "Adapter training steps tried.", lower=1)
  tower_temperatures: Sequence[float] = field((0.05, 0.1), "Contrastive temperatures tried.",
                                              lower=1e-4, upper=10.0)
  tower_hidden: Sequence[int] = field((256,), "Adapter hidden widths tried.", lower=1)
  tower_weights: Sequence[float] = field(
      (0.5, 1.0), "Fusion weights of the adapted vs the frozen USE embedding tried.",
      lower=0.0, upper=1.0)
  tower_pairs: Sequence[str] = field(
      techblog_tower.PAIR_SOURCES, "Pair sources tried: views (title+lede <-> headings / "
      "paragraphs), neighbors (main text <-> nearest posts under USE+TF-IDF fusion).")
  tower_neighbors: int = field(3, "Nearest posts per post of the neighbors pairs.", lower=1)
  tower_paragraphs: int = field(8, "Body paragraphs per post among the views pairs.",
                                lower=0)
  tower_batch_size: int = field(64, "Pairs per adapter step (in-batch negatives).", lower=2)
  tower_learning_rate: float = field(1e-3, "Adam learning rate of the adapter.",
                                     lower=1e-8, upper=1.0)
  tower_export_dir: Optional[str] = field(
      "exported_models/techblog_tower", "SavedModel base path of the adapted tower "
      "(text -> embedding; empty: none).")
  tag_encoder: str = field("use", "Encoder for tag recommendation.")
  tag_encoders: Sequence[str] = field(
      ("use", "tfidf", "fusion(use+tfidf)", "e5", TOWER),
      "Encoders compared for tag recommendation with the mean method (empty: skip); "
      f"{TOWER!r} needs --adapted_tower.")
  tag_k: int = field(5, "Tags recommended per post.", lower=1)
  test_fraction: float = field(0.17, "Newest share of posts held out (tags, best method); "
                               "the same share of the remaining posts is the tag methods' "
                               "development split.", lower=0.01, upper=0.99)
  tag_methods: Sequence[str] = field(("direct", "mean", "trained"),
                                     "Tag embeddings: direct, mean, trained (empty: skip).")
  trained_epochs: int = field(20, "Epochs of the trained tag model.", lower=1)
  trained_learning_rate: float = field(1e-3, "Adam learning rate of the trained tag model.",
                                       lower=1e-8, upper=1.0)
  trained_temperature: float = field(0.05, "Softmax temperature of the trained tag model.",
                                     lower=1e-4, upper=10.0)
  cluster_encoder: str = field("use", "Encoder for the clusters.")
  num_clusters: int = field(10, "k of spherical k-means.", lower=1)
  restarts: int = field(10, "k-means++ restarts.", lower=1)
  projection: str = field("pca", "2-D map of the posts.", choices=("pca", "umap"))
  timing_posts: int = field(1000, "Blog size for the timing (0: skip).", lower=0)
  timing_encoders: Sequence[str] = field(("use", "fusion(use+tfidf)"), "Encoders timed.")
  export_dir: Optional[str] = field("exported_models/related_articles",
                                    "Related-articles SavedModel base path (empty: none).")
  export_encoder: str = field("use", "Keras tower behind the related-articles SavedModel.")
  export_version: int = field(1, "SavedModel version folder.", lower=1)
  seed: int = field(0, "Seed of the random baseline, k-means, bootstrap, tag training.",
                    lower=0)


@dataclasses.dataclass
class TechblogResult:
  """What one run measured and wrote.

  Attributes:
    metrics: the content of metrics.json.
    best_method: the encoder chosen by ``config.best_method``.
    similar_table: every encoder compared through the harness (newest posts as queries).
    report_path, metrics_path: files written.
    figures: name → PNG path.
    export_path: related-articles SavedModel version folder, or None.
  """
  metrics: Dict[str, Any]
  best_method: str
  similar_table: harness.Comparison
  report_path: pathlib.Path
  metrics_path: pathlib.Path
  figures: Dict[str, pathlib.Path]
  export_path: Optional[pathlib.Path]


# ------------------------------------------------------------------ step results

@dataclasses.dataclass
class Blog:
  """The loaded posts and what every step reads from them."""
  posts: List[tb.Post]
  skipped: List[Tuple[str, str]]
  tag_sets: List[frozenset]
  ids: List[str]
  split: tagrec.TagSplit  # oldest posts (dev / tag training) vs newest (held out)


@dataclasses.dataclass
class SimilarStep:
  """Similar-article search of every (encoder, variant), and rank_dice@k's mean [95 % CI]
  over all posts as queries."""
  results: Dict[Tuple[str, str], SimilarResult]
  backends: Dict[str, str]
  intervals: Dict[Tuple[str, str], comparison.Interval]


@dataclasses.dataclass
class BestChoice:
  """The best method ("ours" of ``table``), the rule that chose it, and the compared table
  of every encoder (dev: oldest posts; evaluation: newest posts against the whole blog)."""
  name: str
  rule: str
  table: harness.Comparison


@dataclasses.dataclass
class TagStep:
  """The compared tag methods (``table``), the trained model's loss per epoch of its
  final fit at ``config.seed``, and the split sizes."""
  table: harness.Comparison
  losses: Optional[List[float]]
  split_info: Dict[str, Any]
  truth_size: float


@dataclasses.dataclass
class TowerStep:
  """The adapted tower's chosen settings (on development posts), the loss per step of its
  final fit on every post's pairs, its export (None: not exported), and, once
  ``tower_verdicts`` ran, its paired differences to every other row: table → row → d."""
  params: Dict[str, Any]
  losses: List[float]
  export: Optional[Dict[str, Any]]
  verdicts: Dict[str, Dict[str, comparison.Difference]] = dataclasses.field(
      default_factory=dict)


@dataclasses.dataclass
class ClusterStep:
  km: clustering.KMeansResult
  named: List[Tuple[List[str], List[int]]]
  labels: List[str]
  silhouette: float
  nmi: float


class EncoderCache:
  """Encoders built once per run, and their embeddings of the main variant's texts.

  A fitted encoder (TF-IDF) may last have seen another variant's texts, so ``get`` refits
  on the main texts (a no-op for pretrained towers).
  """

  def __init__(self, main_texts: List[str], seed: int):
    self.main_texts = main_texts
    self.seed = seed
    self.encoders: Dict[Tuple[str, int], Any] = {}
    self.main_embeddings: Dict[str, np.ndarray] = {}

  def build(self, name: str, seed: Optional[int] = None):
    """The encoder called ``name`` with ``seed`` (default: the run's), built on first use."""
    key = (name, self.seed if seed is None else seed)
    if key not in self.encoders:
      self.encoders[key] = make_encoder(name, seed=key[1])
    return self.encoders[key]

  def get(self, name: str):
    """The encoder fitted on the main texts."""
    return self.build(name).fit(self.main_texts)

  def embed(self, name: str, rows: np.ndarray, seed: int) -> np.ndarray:
    """float32 [len(rows), dim]: the encoder (``seed``) fitted on and embedding the main
    texts of posts ``rows``; the cached ``embeddings`` when that is all posts at the
    run's seed."""
    if seed == self.seed and np.array_equal(rows, np.arange(len(self.main_texts))):
      return self.embeddings(name)
    texts = [self.main_texts[i] for i in rows]
    enc = self.build(name, seed)
    enc.fit(texts)
    return np.asarray(enc.encode(texts), np.float32)

  def embeddings(self, name: str) -> np.ndarray:
    """float32 [num_posts, dim] embeddings of the main texts."""
    if name not in self.main_embeddings:
      self.main_embeddings[name] = self.get(name).encode(self.main_texts)
    return self.main_embeddings[name]


# ------------------------------------------------------------------ steps

def check(config: Config) -> None:
  """Raises ValueError for an option that would fail halfway through a run."""
  common.check_config(config)
  if not config.posts_dir:
    raise ValueError("posts_dir is required")
  for name in ("encoders", "timing_encoders"):
    encoder_names(getattr(config, name))
  encoder_names([config.tag_encoder, config.cluster_encoder, config.export_encoder])
  encoder_names([n for n in config.tag_encoders if n != TOWER])
  if TOWER in config.tag_encoders and not config.adapted_tower:
    raise ValueError(f"tag_encoders lists {TOWER!r} but adapted_tower is off")
  if config.adapted_tower:
    techblog_tower.search_space(config.tower_steps, config.tower_temperatures,
                                config.tower_hidden, config.tower_weights, config.tower_pairs)
  unknown = set(config.variants) - set(tb.TEXT_VARIANTS)
  if unknown:
    raise ValueError(f"unknown text variants {sorted(unknown)}; expected {tb.TEXT_VARIANTS}")
  unknown = set(config.tag_methods) - {"direct", "mean", "trained"}
  if unknown:
    raise ValueError(f"unknown tag methods {sorted(unknown)}; expected direct, mean, trained")
  rows = [*config.encoders, *([TOWER] if config.adapted_tower else [])]
  if config.best_method != DEV_RULE and config.best_method not in rows:
    raise ValueError(f"best_method={config.best_method!r} is neither {DEV_RULE!r} nor one "
                     f"of the compared rows {rows}")


def without_unavailable(config: Config, log: common.Log) -> Tuple[Config, Dict[str, str]]:
  """``config`` without the scored, timed or tag-compared encoders that cannot be built
  here (an optional package not installed), and name → reason of each one dropped
  (logged).

  Raises:
    ValueError: the tag, cluster or export encoder, or a best method fixed in advance,
      cannot be built (the run needs it).
  """
  needed = [config.tag_encoder, config.cluster_encoder, config.export_encoder]
  if config.best_method != DEV_RULE:
    needed.append(config.best_method)
  for name in needed:
    reason = unavailable_reason(name)
    if reason:
      raise ValueError(f"{name!r} is required by this run: {reason}")
  lists = ("encoders", "timing_encoders", "tag_encoders")
  skipped = {name: unavailable_reason(name) for field_name in lists
             for name in getattr(config, field_name) if name != TOWER}
  skipped = {name: reason for name, reason in skipped.items() if reason}
  for reason in skipped.values():
    log(reason)
  return dataclasses.replace(config, **{
      field_name: tuple(n for n in getattr(config, field_name) if n not in skipped)
      for field_name in lists}), skipped


def load_blog(config: Config, log: common.Log) -> Blog:
  """Loads the posts (sorted by date) and splits them into oldest / newest."""
  loaded = tb.load_posts(config.posts_dir, strict=config.strict)
  log(loaded.summary())
  posts = loaded.posts
  if len(posts) < config.k + 1:
    raise ValueError(f"{config.posts_dir}: {len(posts)} posts loaded; need at least "
                     f"{config.k + 1} for top-{config.k} search")
  split = tagrec.time_split([p.date for p in posts], [p.tags for p in posts],
                            config.test_fraction)
  return Blog(posts, loaded.skipped, [frozenset(p.tags) for p in posts],
              [p.post_id for p in posts], split)


def score_similar(config: Config, blog: Blog, cache: EncoderCache,
                  log: common.Log) -> SimilarStep:
  """rank_dice@k (mean, 95 % CI over queries) of cosine top-k search for every encoder
  and text variant."""
  similar = SimilarStep({}, {}, {})
  for name in config.encoders:
    add_similar_rows(config, blog, cache, name, cache.build(name), similar, log)
  return similar


def add_similar_rows(config: Config, blog: Blog, cache: EncoderCache, name: str, enc,
                     similar: SimilarStep, log: common.Log) -> None:
  """Adds encoder ``name`` (``enc``, fitted on each variant's texts) to ``similar``."""
  head = tb.texts(blog.posts[:2], config.main_variant)
  similar.backends[name] = type(enc).__name__
  enc.fit(head)
  enc.encode(head)  # load weights / trace outside the timing
  for variant in config.variants:
    res, emb = similar_articles(enc, tb.texts(blog.posts, variant), blog.tag_sets, config.k)
    similar.results[(name, variant)] = res
    similar.intervals[(name, variant)] = comparison.interval(
        [per_query_rank_dice(res.neighbors, blog.tag_sets, config.k)], seed=config.seed)
    if variant == config.main_variant:
      cache.main_embeddings[name] = emb
    log(f"similar {name:>20} {variant:>20} rank_dice@{config.k}={res.rank_dice:.4f} "
        f"({res.seconds:.2f} s)")


def _split(blog: Blog, rows: Sequence[int]) -> harness.Split:
  """Posts ``rows`` as a harness split: ids are post ids, data the post indices int [n]."""
  rows = np.asarray(rows, np.int64)
  return harness.Split([blog.ids[i] for i in rows], rows)


def similar_methods(config: Config, blog: Blog, cache: EncoderCache,
                    views: Optional[techblog_tower.TowerViews]) -> List[harness.Method]:
  """One harness method per encoder (nothing to tune): fit embeds the training posts'
  main texts; score is each query post's rank_dice@k against the training posts. With
  ``views``, also ``TOWER``: each trial trains the adapter on the training posts' pairs
  and embeds their main texts."""
  k = config.k

  def score(model, split: harness.Split) -> np.ndarray:
    rows, emb = model
    position = {int(p): j for j, p in enumerate(rows)}
    queries = np.array([position[int(i)] for i in split.data], np.int64)
    _, nb = top_k_excluding_self(emb[queries], emb, queries, k)
    posts = np.where(nb >= 0, rows[np.maximum(nb, 0)], -1)
    return per_query_rank_dice(posts, blog.tag_sets, k, query_ids=split.data)

  def method(name: str) -> harness.Method:
    def fit(params, train: harness.Split, seed: int):
      del params  # nothing to tune
      return train.data, cache.embed(name, train.data, seed)
    return harness.Method(name, harness.NO_HYPERPARAMETERS, fit, score)

  def fit_tower(params, train: harness.Split, seed: int):
    adapter, _ = fit_tower_adapter(config, views, params, train.data, seed)
    return train.data, techblog_tower.embed_rows(adapter, views, train.data)

  methods = [method(name) for name in config.encoders]
  if views is not None:
    methods.append(harness.Method(TOWER, tower_space(config), fit_tower, score))
  return methods


def tower_space(config: Config):
  """The adapted tower's search space: every combination of the tower_* lists."""
  return techblog_tower.search_space(config.tower_steps, config.tower_temperatures,
                                     config.tower_hidden, config.tower_weights,
                                     config.tower_pairs)


def fit_tower_adapter(config: Config, views: techblog_tower.TowerViews, params,
                      rows: Sequence[int], seed: int):
  """``techblog_tower.fit_adapter`` with the run's fixed adapter settings."""
  return techblog_tower.fit_adapter(views, params, rows, seed, config.tower_batch_size,
                                    config.tower_learning_rate, config.tower_neighbors)


def choose_best(config: Config, blog: Blog, cache: EncoderCache,
                views: Optional[techblog_tower.TowerViews], log: common.Log) -> BestChoice:
  """Applies ``config.best_method`` and compares every encoder through the harness.

  Development: the oldest posts, embedded and searched among themselves (no newer post is
  seen). Evaluation: the newest posts as queries against the whole blog.
  """
  k = config.k
  dev = _split(blog, blog.split.train)
  evaluation = harness.Evaluation(_split(blog, range(len(blog.posts))),
                                  _split(blog, blog.split.test))
  fixed = config.best_method != DEV_RULE
  table = harness.compare(similar_methods(config, blog, cache, views),
                          harness.Development(dev, dev), lambda repeat: evaluation,
                          repeats=config.repeats, seed=config.seed,
                          ours=[config.best_method] if fixed else None, log=log)
  if fixed:
    rule = "fixed in advance (--best_method)"
  else:
    rule = (f"highest dev rank_dice@{k} ({config.main_variant}) over the oldest "
            f"{len(blog.split.train)} posts searched among themselves; ties go to the "
            "first listed encoder")
  return BestChoice(table.ours, rule, table)


def tower_views(config: Config, blog: Blog,
                cache: EncoderCache) -> Optional[techblog_tower.TowerViews]:
  """The frozen USE embeddings the adapted tower trains on (None: no adapted tower)."""
  if not config.adapted_tower:
    return None
  return techblog_tower.tower_views(blog.posts, cache.main_texts, cache.get("use").encode,
                                    cache.embeddings("use"), config.tower_paragraphs)


def adapt_tower(config: Config, blog: Blog, cache: EncoderCache, best: BestChoice,
                views: techblog_tower.TowerViews, similar: SimilarStep,
                log: common.Log) -> TowerStep:
  """Fits the adapted tower with its development-chosen settings on every post's pairs
  (text only), adds its all-posts rows to ``similar``, makes it the ``TOWER`` encoder of
  ``cache`` and exports it (``config.tower_export_dir``)."""
  params = dict(best.table.row(TOWER).config)
  adapter, losses = fit_tower_adapter(config, views, params, range(len(blog.posts)),
                                      config.seed)
  use_layer = cache.get("use").layer
  enc = KerasTextEncoder(AdaptedTextEncoder(use_layer, adapter), TOWER)
  cache.encoders[(TOWER, config.seed)] = enc
  log(f"{TOWER}: {params}, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
  add_similar_rows(config, blog, cache, TOWER, enc, similar, log)
  exported = None
  if config.tower_export_dir:
    exported = techblog_tower.export_tower(use_layer, adapter, config.tower_export_dir,
                                           config.export_version, cache.main_texts[:16])
    log(f"{TOWER} exported to {exported['path']} ({exported['size_bytes']:,d} bytes, "
        f"reload min cosine {exported['reload_min_cosine']:.6f})")
  return TowerStep(params, losses, exported)


def tower_verdicts(config: Config, blog: Blog, similar: SimilarStep, best: BestChoice,
                   tag_encoders: Optional[TagStep]) -> Dict[str, Dict[str, comparison.Difference]]:
  """The adapted tower against every other row, paired per item (d = tower − row, 95 %
  bootstrap CI, verdict) in three tables: "all posts" (every post a query, main
  variant), "newest posts" (the harness table of ``best``) and "tags" (the tag table by
  encoder, when it has the tower)."""
  k, main = config.k, config.main_variant
  tables = {"all posts": ({name: [per_query_rank_dice(res.neighbors, blog.tag_sets, k)]
                           for (name, variant), res in similar.results.items()
                           if variant == main}, True),
            "newest posts": (best.table.scored.scores, best.table.scored.same_items)}
  if tag_encoders and TOWER in tag_encoders.table.scored.scores:
    tables["tags"] = (tag_encoders.table.scored.scores, tag_encoders.table.scored.same_items)
  return {table: {name: comparison.paired_difference(scores[TOWER], other, seed=config.seed,
                                                     same_items=same)
                  for name, other in scores.items() if name != TOWER}
          for table, (scores, same) in tables.items() if TOWER in scores}


def time_encoders(config: Config, blog: Blog, log: common.Log) -> List[Dict[str, Any]]:
  """Embed + search seconds of each timed encoder at ``config.timing_posts`` posts."""
  big = article_texts.replicated_texts(article_texts.parts_of_posts(blog.posts),
                                       config.timing_posts, config.seed)
  rows = []
  for name in config.timing_encoders:
    enc = make_encoder(name, seed=config.seed)
    enc.fit(big[:8])
    enc.encode(big[:8])  # warm the model (weights load, tracing) outside the timing
    c0, t0 = time.process_time(), time.perf_counter()
    enc.fit(big)
    emb = enc.encode(big)
    t1 = time.perf_counter()
    search_similar(emb, config.k)
    t2, c2 = time.perf_counter(), time.process_time()
    rows.append({"encoder": name, "backend": type(enc).__name__, "posts": len(big),
                 "embed_seconds": t1 - t0, "search_seconds": t2 - t1, "seconds": t2 - t0,
                 "cpu_seconds": c2 - c0,
                 "load_average_1min": machine_conditions()["load_average_1m"]})
    log(f"timing {name}: {len(big)} posts embed {t1 - t0:.2f} s + search {t2 - t1:.2f} s")
  return rows


@dataclasses.dataclass
class TagModel:
  """Recommendable tags (those of the training posts), their embeddings [T, dim],
  training-post counts int [T], and the embeddings of every post [N, dim] by the same
  encoder."""
  tags: List[str]
  embeddings: np.ndarray
  counts: np.ndarray
  post_embeddings: np.ndarray


def tag_methods(config: Config, blog: Blog, cache: EncoderCache,
                losses: Dict[int, List[float]],
                rows: Sequence[Tuple[str, str, str]]) -> List[harness.Method]:
  """One harness method per (row name, tag method, encoder) of ``rows`` (settings fixed
  beforehand, one trial each). Fit builds the tag embeddings from the training posts'
  embeddings by the encoder; score is each post's recall@tag_k over its tags seen in
  training (nan: none seen). ``losses`` gets the trained model's loss per epoch, by
  seed."""
  k = config.tag_k
  post_tags = [p.tags for p in blog.posts]

  def ranked_and_truth(model: TagModel, split: harness.Split):
    index = {t: j for j, t in enumerate(model.tags)}
    truth = [[index[t] for t in post_tags[i] if t in index] for i in split.data]
    return tagrec.recommend(model.post_embeddings[split.data], model.embeddings, k,
                            model.counts), truth

  def score(model: TagModel, split: harness.Split) -> np.ndarray:
    ranked, truth = ranked_and_truth(model, split)
    return np.array([recall_at_k(r.tolist(), t, k) if t else np.nan
                     for r, t in zip(ranked, truth)], np.float64)

  def other_metrics(model: TagModel, split: harness.Split) -> Dict[str, float]:
    ranked, truth = ranked_and_truth(model, split)
    out = tagrec.evaluate(ranked, truth, k)
    del out[f"recall@{k}"]  # the compared metric has its own column
    return out

  def method(name: str, kind: str, encoder: str) -> harness.Method:
    def fit(params, train: harness.Split, seed: int) -> TagModel:
      del params  # settings fixed beforehand
      rows = train.data
      post_emb = cache.embeddings(encoder)
      tags = sorted({t for i in rows for t in post_tags[i]})
      counts = tagrec.tag_counts(tags, post_tags, rows)
      mean_emb = tagrec.mean_tag_embeddings(tags, post_emb, post_tags, rows)
      if kind == "direct":
        return TagModel(tags, tagrec.direct_tag_embeddings(
            tags, cache.get(encoder).encode), counts, post_emb)
      if kind == "mean":
        return TagModel(tags, mean_emb, counts, post_emb)
      index = {t: j for j, t in enumerate(tags)}  # "trained" (check() allows nothing else)
      post_tag_ids = [[index[t] for t in p if t in index] for p in post_tags]
      temb, losses[seed] = tagrec.trained_tag_embeddings(
          mean_emb, post_emb, post_tag_ids, rows, epochs=config.trained_epochs,
          learning_rate=config.trained_learning_rate,
          temperature=config.trained_temperature, seed=seed)
      return TagModel(tags, temb, counts, post_emb)
    return harness.Method(name, harness.NO_HYPERPARAMETERS, fit, score, other_metrics)

  return [method(*row) for row in rows]


def recommend_tags(config: Config, blog: Blog, cache: EncoderCache,
                   rows: Sequence[Tuple[str, str, str]], encoder_label: str,
                   log: common.Log) -> TagStep:
  """Compares tag rows (row name, tag method, encoder; ``tag_methods``) through the
  harness on the newest posts; ``encoder_label`` names their encoder(s) in the report.

  Development: the training posts' own time split (the newest ``test_fraction`` of them
  scored, the older ones fitted); evaluation: fit on all training posts, score the
  newest posts.
  """
  split = blog.split
  dates = [blog.posts[i].date for i in split.train]
  inner = tagrec.time_split(dates, [blog.posts[i].tags for i in split.train],
                            config.test_fraction)
  development = harness.Development(_split(blog, split.train[inner.train]),
                                    _split(blog, split.train[inner.test]))
  evaluation = harness.Evaluation(_split(blog, split.train), _split(blog, split.test))
  losses: Dict[int, List[float]] = {}
  table = harness.compare(tag_methods(config, blog, cache, losses, rows), development,
                          lambda repeat: evaluation, repeats=config.repeats,
                          seed=config.seed, log=log)
  for row in table.rows:
    log(f"tags {row.method}: recall@{config.tag_k}={row.cell.text()} ({row.role})")
  counts = tagrec.tag_counts(split.tags, [p.tags for p in blog.posts], split.train)
  split_info = {"train_posts": len(split.train), "test_posts": len(split.test),
                "dev_fit_posts": len(inner.train), "dev_posts": len(inner.test),
                "recommendable_tags": len(split.tags),
                "tags_on_one_training_post": int((counts == 1).sum()),
                "encoder": encoder_label, "variant": config.main_variant}
  truth_size = float(np.mean([len(t) for t in split.truth if t] or [1]))
  return TagStep(table, losses.get(config.seed), split_info, truth_size)


def cluster_posts(config: Config, blog: Blog, cache: EncoderCache,
                  out: pathlib.Path) -> Tuple[ClusterStep, Dict[str, pathlib.Path]]:
  """Spherical k-means, cluster names, the dendrogram and the post map (PNG files)."""
  posts = blog.posts
  emb = cache.embeddings(config.cluster_encoder)
  km = clustering.spherical_kmeans(emb, k=config.num_clusters, restarts=config.restarts,
                                   seed=config.seed)
  all_tags = sorted({t for p in posts for t in p.tags})
  tag_emb = tagrec.mean_tag_embeddings(all_tags, emb, [p.tags for p in posts],
                                       range(len(posts)))
  named = clustering.name_clusters(km.centroids, all_tags, tag_emb, emb)
  labels = [f"C{j}: " + "/".join(tags) for j, (tags, _) in enumerate(named)]
  sil, nmi = clustering.cluster_quality(emb, km.labels, [p.first_category for p in posts])
  figures = {}
  if len(km.centroids) > 1:
    figures["dendrogram"] = save_figure(cluster_figures.dendrogram_figure(
        clustering.centroid_linkage(km.centroids), labels), out / "dendrogram.png")
  coords = clustering.project_2d(emb, config.projection, config.seed)
  figures["post_map"] = save_figure(cluster_figures.post_map_figure(
      coords, km.labels, labels, f"Posts ({config.projection.upper()} of "
      f"{config.cluster_encoder} embeddings) coloured by cluster"), out / "post_map.png")
  return ClusterStep(km, named, labels, sil, nmi), figures


def recommendations(config: Config, blog: Blog, cache: EncoderCache, best: str,
                    clusters: ClusterStep) -> Dict[str, Any]:
  """Related, diverse and personalised lists for the newest post and a 3-post history."""
  rec = BlogRecommender(blog.ids, cache.embeddings(best), [p.date for p in blog.posts],
                        clusters.km.labels)
  query = len(blog.posts) - 1
  history = blog.ids[:3]
  return {"encoder": best, "query": blog.ids[query],
          "related": rec.related(query, config.k), "diverse": rec.diverse(query),
          "history": history, "personalized": rec.personalized(history, config.k)}


def export(config: Config, blog: Blog, cache: EncoderCache,
           log: common.Log) -> Dict[str, Any]:
  """Writes the related-articles SavedModel when the export encoder is a Keras tower."""
  enc = cache.get(config.export_encoder)
  if not isinstance(enc, KerasTextEncoder):
    msg = (f"related-articles SavedModel not exported: encoder {config.export_encoder!r} "
           f"is {type(enc).__name__}, not a Keras tower")
    log(msg)
    return {"path": None, "reason": msg}
  path = export_related_articles(enc.layer, blog.ids, cache.embeddings(config.export_encoder),
                                 config.export_dir, k=config.k,
                                 version=config.export_version)
  return {"path": str(path), "encoder": config.export_encoder}


def _nested(similar: SimilarStep, k: int) -> Dict[str, Any]:
  out: Dict[str, Any] = {}
  for (name, variant), res in similar.results.items():
    cell = similar.intervals[(name, variant)]
    out.setdefault(name, {})[variant] = {f"rank_dice@{k}": res.rank_dice,
                                         "ci95": [cell.low, cell.high],
                                         "seconds": res.seconds}
  return out


def best_rows(table: harness.Comparison, k: int) -> List[Dict[str, Any]]:
  """Per encoder: role, trials, dev and held-out rank_dice@k (mean, 95 % CI)."""
  return [{"encoder": r.method, "role": r.role, "trials": r.trials,
           f"dev rank_dice@{k}": r.dev, f"held-out rank_dice@{k}": r.cell.mean,
           "held-out 95% CI": [r.cell.low, r.cell.high]} for r in table.rows]


def _cells(table: harness.Comparison, metric: str) -> Dict[str, Dict[str, Any]]:
  """method → its evaluation mean and CI of ``metric``, other metrics, dev score, role."""
  return {r.method: {metric: r.cell.mean, "ci95": [r.cell.low, r.cell.high], **r.other,
                     f"dev {metric}": r.dev, "role": r.role, "trials": r.trials}
          for r in table.rows}


def _verdict(table: harness.Comparison) -> Dict[str, Any]:
  """ours, best peer and, when there is a peer, their difference and verdict."""
  ours = table.row(table.ours)
  return {"ours": table.ours, "best_peer": table.best_peer, "repeats": table.repeats,
          **({"difference": ours.difference.as_dict()} if ours.difference else {})}


def run(config: Config, log: common.Log = common.no_log) -> TechblogResult:
  """Runs every step on ``config.posts_dir`` and writes the report, metrics and figures."""
  check(config)
  common.check_output_dirs(config, "output_dir", "export_dir", "tower_export_dir")
  config, skipped_encoders = without_unavailable(config, log)
  conditions_before = machine_conditions()
  out = pathlib.Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  blog = load_blog(config, log)
  cache = EncoderCache(tb.texts(blog.posts, config.main_variant), config.seed)
  similar = score_similar(config, blog, cache, log)
  views = tower_views(config, blog, cache)
  best = choose_best(config, blog, cache, views, log)
  log(f"best method: {best.name} ({best.rule})")
  tower = adapt_tower(config, blog, cache, best, views, similar, log) if views else None
  timing = time_encoders(config, blog, log) if config.timing_posts else []
  tags = recommend_tags(
      config, blog, cache, [(m, m, config.tag_encoder) for m in config.tag_methods],
      config.tag_encoder, log) if config.tag_methods else None
  tag_encoders = recommend_tags(
      config, blog, cache, [(e, "mean", e) for e in config.tag_encoders],
      "each row's encoder, mean method", log) if config.tag_encoders else None
  if tower:
    tower.verdicts = tower_verdicts(config, blog, similar, best, tag_encoders)
  clusters, figures = cluster_posts(config, blog, cache, out)
  recs = recommendations(config, blog, cache, best.name, clusters)

  k = config.k
  metrics: Dict[str, Any] = {
      "config": common.config_dict(config),
      "posts_loaded": len(blog.posts), "posts_skipped": len(blog.skipped),
      "skipped_encoders": skipped_encoders,
      "similar": _nested(similar, k), "encoder_backends": similar.backends}
  if {"use", "use_reference"} <= set(config.encoders) and \
      config.main_variant in config.variants:
    a = similar.results[("use", config.main_variant)].rank_dice
    b = similar.results[("use_reference", config.main_variant)].rank_dice
    metrics["use_vs_reference"] = {"use": a, "use_reference": b, "abs_diff": abs(a - b),
                                   "use_backend": similar.backends["use"]}
  metrics["similar_verdict"] = _verdict(best.table)
  if tower:
    metrics["adapted_tower"] = {"name": TOWER, "chosen": tower.params,
                                "trials": best.table.row(TOWER).trials,
                                "loss_first": tower.losses[0], "loss_last": tower.losses[-1],
                                "export": tower.export,
                                "vs": {table: {name: d.as_dict() for name, d in rows.items()}
                                       for table, rows in tower.verdicts.items()}}
  if timing:
    metrics["timing"] = {r["encoder"]: {key: r[key] for key in (
        "posts", "embed_seconds", "search_seconds", "seconds", "cpu_seconds",
        "load_average_1min")} for r in timing}
  if tags:
    metrics["tags"] = _cells(tags.table, f"recall@{config.tag_k}")
    metrics["tags_verdict"] = _verdict(tags.table)
    if tags.losses is not None:
      metrics["tags_training"] = {"loss_per_epoch": tags.losses}
    metrics["tags_split"] = tags.split_info
  if tag_encoders:
    metrics["tag_encoders"] = _cells(tag_encoders.table, f"recall@{config.tag_k}")
    metrics["tag_encoders_verdict"] = _verdict(tag_encoders.table)
  metrics["clusters"] = {"k": int(len(clusters.km.centroids)),
                         "silhouette": clusters.silhouette, "nmi_category": clusters.nmi,
                         "objective": clusters.km.objective, "encoder": config.cluster_encoder,
                         "sizes": np.bincount(clusters.km.labels,
                                              minlength=len(clusters.km.centroids)).tolist()}
  metrics["recommendations"] = recs
  metrics["best_method"] = best.name
  metrics["best_method_rule"] = best.rule
  metrics["best_method_dev"] = {"dev_posts": len(blog.split.train),
                                "held_out_posts": len(blog.split.test),
                                "repeats": config.repeats,
                                "encoders": best_rows(best.table, k)}
  metrics["machine"] = {"before": conditions_before, "after": machine_conditions()}
  metrics["generated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


  def write(exported):
    if exported is not None:
      metrics["export"] = exported
    report = techblog_report.render(config, blog, similar, best, tower, timing, tags,
                                    tag_encoders, clusters, figures, recs, exported, metrics)
    return write_json(out / "metrics.json", metrics), write_text(out / "report.md", report)

  # Report and metrics first: a failed export must not lose them.
  metrics_path, report_path = write(None)
  exported = export(config, blog, cache, log) if config.export_dir else None
  if exported is not None:
    write(exported)
  log(f"wrote {report_path}, {metrics_path}")
  return TechblogResult(metrics, best.name, best.table, report_path, metrics_path, figures,
                        pathlib.Path(exported["path"]) if exported and exported["path"]
                        else None)
