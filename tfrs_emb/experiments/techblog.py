"""The tech blog experiment: similar articles, best method, timing, tags, clusters,
recommendations and the related-articles SavedModel.

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
from tfrs_emb.analysis.similar import paired_bootstrap
from tfrs_emb.analysis.similar import per_query_rank_dice
from tfrs_emb.analysis.similar import search_similar
from tfrs_emb.analysis.similar import similar_articles
from tfrs_emb.core.linalg import top_k_excluding_self
from tfrs_emb.data import article_texts
from tfrs_emb.data import techblog as tb
from tfrs_emb.encoders.keras_text import KerasTextEncoder
from tfrs_emb.encoders.registry import encoder_names
from tfrs_emb.encoders.registry import make_encoder
from tfrs_emb.experiments import common
from tfrs_emb.experiments import techblog_report
from tfrs_emb.metrics import rank_dice_at_k
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
      ("use", "use_reference", "tfidf", "random", "fusion(use+tfidf)"),
      "Encoders scored: use, use_reference, tfidf, random, hub:PATH, fusion(A+B).")
  variants: Sequence[str] = field(tb.TEXT_VARIANTS, "Text variants scored.")
  main_variant: str = field("title+lede+headings", "Variant used for the best method, "
                            "examples, tags, clusters and export.", choices=tb.TEXT_VARIANTS)
  k: int = field(4, "Related posts per post (rank_dice@k).", lower=1)
  best_method: str = field(
      DEV_RULE, "How the best method is chosen: 'dev' = the encoder with the highest "
      "rank_dice@k on the development posts (the oldest 1 - test_fraction, searched among "
      "themselves; ties go to the first listed), or an encoder name fixed in advance.")
  bootstrap_against: Sequence[str] = field(
      ("use", "tfidf"), "Encoders the best method is compared with (paired bootstrap).")
  example_posts: int = field(3, "Posts whose top-k lists are shown.", lower=0)
  tag_encoder: str = field("use", "Encoder for tag recommendation.")
  tag_k: int = field(5, "Tags recommended per post.", lower=1)
  test_fraction: float = field(0.17, "Newest share of posts held out (tags, best method).",
                               lower=0.01, upper=0.99)
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
    report_path, metrics_path: files written.
    figures: name → PNG path.
    export_path: related-articles SavedModel version folder, or None.
  """
  metrics: Dict[str, Any]
  best_method: str
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
  """Similar-article search of every (encoder, variant)."""
  results: Dict[Tuple[str, str], SimilarResult]
  backends: Dict[str, str]


@dataclasses.dataclass
class BestChoice:
  """The best method, the rule that chose it, and each candidate's dev / held-out scores."""
  name: str
  rule: str
  rows: List[Dict[str, Any]]
  bootstrap: Dict[str, Dict[str, Any]]


@dataclasses.dataclass
class TagStep:
  metrics: Dict[str, Dict[str, Any]]
  losses: Optional[List[float]]
  split_info: Dict[str, Any]
  truth_size: float


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
    self.encoders: Dict[str, Any] = {}
    self.main_embeddings: Dict[str, np.ndarray] = {}

  def build(self, name: str):
    """The encoder called ``name``, built on first use."""
    if name not in self.encoders:
      self.encoders[name] = make_encoder(name, seed=self.seed)
    return self.encoders[name]

  def get(self, name: str):
    """The encoder fitted on the main texts."""
    return self.build(name).fit(self.main_texts)

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
  for name in ("encoders", "bootstrap_against", "timing_encoders"):
    encoder_names(getattr(config, name))
  encoder_names([config.tag_encoder, config.cluster_encoder, config.export_encoder])
  unknown = set(config.variants) - set(tb.TEXT_VARIANTS)
  if unknown:
    raise ValueError(f"unknown text variants {sorted(unknown)}; expected {tb.TEXT_VARIANTS}")
  unknown = set(config.tag_methods) - {"direct", "mean", "trained"}
  if unknown:
    raise ValueError(f"unknown tag methods {sorted(unknown)}; expected direct, mean, trained")
  if config.best_method != DEV_RULE and config.best_method not in config.encoders:
    raise ValueError(f"best_method={config.best_method!r} is neither {DEV_RULE!r} nor one "
                     f"of the encoders {list(config.encoders)}")


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
  """rank_dice@k of cosine top-k search for every encoder and text variant."""
  results, backends = {}, {}
  head = tb.texts(blog.posts[:2], config.main_variant)
  for name in config.encoders:
    enc = cache.build(name)
    backends[name] = type(enc).__name__
    enc.fit(head)
    enc.encode(head)  # load weights / trace outside the timing
    for variant in config.variants:
      res, emb = similar_articles(enc, tb.texts(blog.posts, variant), blog.tag_sets, config.k)
      results[(name, variant)] = res
      if variant == config.main_variant:
        cache.main_embeddings[name] = emb
      log(f"similar {name:>20} {variant:>20} rank_dice@{config.k}={res.rank_dice:.4f} "
          f"({res.seconds:.2f} s)")
  return SimilarStep(results, backends)


def dev_scores(embeddings: np.ndarray, blog: Blog, k: int) -> Tuple[float, float]:
  """(dev, held-out) rank_dice@k of one encoder's post embeddings [N, dim].

  Dev: the oldest posts searched among themselves (no newer post is seen). Held out: the
  newest posts as queries against the whole blog.
  """
  dev, test = blog.split.train, blog.split.test
  nb, _ = search_similar(embeddings[dev], k)
  dev_score = rank_dice_at_k(nb, [blog.tag_sets[i] for i in dev], k)
  _, nb = top_k_excluding_self(embeddings[test], embeddings, test, k)
  return dev_score, rank_dice_at_k(nb, blog.tag_sets, k, query_ids=test)


def choose_best(config: Config, blog: Blog, cache: EncoderCache,
                similar: SimilarStep) -> BestChoice:
  """Applies ``config.best_method``, then bootstraps the best against the references."""
  k = config.k
  rows = []
  for name in config.encoders:
    dev, held_out = dev_scores(cache.embeddings(name), blog, k)
    rows.append({"encoder": name, f"dev rank_dice@{k}": dev,
                 f"held-out rank_dice@{k}": held_out})
  if config.best_method == DEV_RULE:
    name = max(rows, key=lambda r: r[f"dev rank_dice@{k}"])["encoder"]  # first of ties
    rule = (f"highest dev rank_dice@{k} ({config.main_variant}) over the oldest "
            f"{len(blog.split.train)} posts searched among themselves; ties go to the "
            "first listed encoder")
  else:
    name = config.best_method
    rule = "fixed in advance (--best_method)"
  bootstrap = {}
  if config.main_variant in config.variants:
    best_q = per_query_rank_dice(similar.results[(name, config.main_variant)].neighbors,
                                 blog.tag_sets, k)
    for other in config.bootstrap_against:
      if other == name or other not in config.encoders:
        continue
      other_q = per_query_rank_dice(similar.results[(other, config.main_variant)].neighbors,
                                    blog.tag_sets, k)
      bootstrap[f"{name} - {other}"] = paired_bootstrap(best_q, other_q, seed=config.seed)
  return BestChoice(name, rule, rows, bootstrap)


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


def recommend_tags(config: Config, blog: Blog, cache: EncoderCache,
                   log: common.Log) -> TagStep:
  """recall / precision / ndcg@tag_k of each tag method on the newest posts."""
  posts, split = blog.posts, blog.split
  post_tags = [p.tags for p in posts]
  post_emb = cache.embeddings(config.tag_encoder)
  mean_emb = tagrec.mean_tag_embeddings(split.tags, post_emb, post_tags, split.train)
  counts = tagrec.tag_counts(split.tags, post_tags, split.train)
  tag_index = {t: j for j, t in enumerate(split.tags)}
  metrics, losses = {}, None
  for method in config.tag_methods:
    if method == "direct":
      temb = tagrec.direct_tag_embeddings(split.tags, cache.get(config.tag_encoder).encode)
    elif method == "mean":
      temb = mean_emb
    else:  # "trained" (check() allows nothing else)
      post_tag_ids = [[tag_index[t] for t in tags if t in tag_index] for tags in post_tags]
      temb, losses = tagrec.trained_tag_embeddings(
          mean_emb, post_emb, post_tag_ids, split.train, epochs=config.trained_epochs,
          learning_rate=config.trained_learning_rate,
          temperature=config.trained_temperature, seed=config.seed)
    ranked = tagrec.recommend(post_emb[split.test], temb, config.tag_k, counts)
    metrics[method] = tagrec.evaluate(ranked, split.truth, config.tag_k)
    log(f"tags {method}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics[method].items()
                                       if isinstance(v, float)))
  split_info = {"train_posts": len(split.train), "test_posts": len(split.test),
                "recommendable_tags": len(split.tags),
                "tags_on_one_training_post": int((counts == 1).sum()),
                "encoder": config.tag_encoder, "variant": config.main_variant}
  truth_size = float(np.mean([len(t) for t in split.truth if t] or [1]))
  return TagStep(metrics, losses, split_info, truth_size)


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


def _nested(results: Dict[Tuple[str, str], SimilarResult], k: int) -> Dict[str, Any]:
  out: Dict[str, Any] = {}
  for (name, variant), res in results.items():
    out.setdefault(name, {})[variant] = {f"rank_dice@{k}": res.rank_dice,
                                         "seconds": res.seconds}
  return out


def run(config: Config, log: common.Log = common.no_log) -> TechblogResult:
  """Runs every step on ``config.posts_dir`` and writes the report, metrics and figures."""
  check(config)
  common.check_output_dirs(config, "output_dir", "export_dir")
  conditions_before = machine_conditions()
  out = pathlib.Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  blog = load_blog(config, log)
  cache = EncoderCache(tb.texts(blog.posts, config.main_variant), config.seed)
  similar = score_similar(config, blog, cache, log)
  best = choose_best(config, blog, cache, similar)
  log(f"best method: {best.name} ({best.rule})")
  timing = time_encoders(config, blog, log) if config.timing_posts else []
  tags = recommend_tags(config, blog, cache, log) if config.tag_methods else None
  clusters, figures = cluster_posts(config, blog, cache, out)
  recs = recommendations(config, blog, cache, best.name, clusters)

  k = config.k
  metrics: Dict[str, Any] = {
      "config": common.config_dict(config),
      "posts_loaded": len(blog.posts), "posts_skipped": len(blog.skipped),
      "similar": _nested(similar.results, k), "encoder_backends": similar.backends}
  if {"use", "use_reference"} <= set(config.encoders) and \
      config.main_variant in config.variants:
    a = similar.results[("use", config.main_variant)].rank_dice
    b = similar.results[("use_reference", config.main_variant)].rank_dice
    metrics["use_vs_reference"] = {"use": a, "use_reference": b, "abs_diff": abs(a - b),
                                   "use_backend": similar.backends["use"]}
  if best.bootstrap:
    metrics["similar_bootstrap"] = best.bootstrap
  if timing:
    metrics["timing"] = {r["encoder"]: {key: r[key] for key in (
        "posts", "embed_seconds", "search_seconds", "seconds", "cpu_seconds",
        "load_average_1min")} for r in timing}
  if tags:
    metrics["tags"] = tags.metrics
    if tags.losses is not None:
      metrics["tags_training"] = {"loss_per_epoch": tags.losses}
    metrics["tags_split"] = tags.split_info
  metrics["clusters"] = {"k": int(len(clusters.km.centroids)),
                         "silhouette": clusters.silhouette, "nmi_category": clusters.nmi,
                         "objective": clusters.km.objective, "encoder": config.cluster_encoder,
                         "sizes": np.bincount(clusters.km.labels,
                                              minlength=len(clusters.km.centroids)).tolist()}
  metrics["recommendations"] = recs
  metrics["best_method"] = best.name
  metrics["best_method_rule"] = best.rule
  metrics["best_method_dev"] = {"dev_posts": len(blog.split.train),
                                "held_out_posts": len(blog.split.test), "encoders": best.rows}
  metrics["machine"] = {"before": conditions_before, "after": machine_conditions()}
  metrics["generated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


  def write(exported):
    if exported is not None:
      metrics["export"] = exported
    report = techblog_report.render(config, blog, similar, best, timing, tags, clusters,
                                    figures, recs, exported, metrics)
    return write_json(out / "metrics.json", metrics), write_text(out / "report.md", report)

  # Report and metrics first: a failed export must not lose them.
  metrics_path, report_path = write(None)
  exported = export(config, blog, cache, log) if config.export_dir else None
  if exported is not None:
    write(exported)
  log(f"wrote {report_path}, {metrics_path}")
  return TechblogResult(metrics, best.name, report_path, metrics_path, figures,
                        pathlib.Path(exported["path"]) if exported and exported["path"]
                        else None)
