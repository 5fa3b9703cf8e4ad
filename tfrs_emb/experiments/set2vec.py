"""set2vec: element embeddings and next-element recommendation for any set data.

Loads sets (``tfrs_emb.data.sets``: baskets or long CSV / TSV / Parquet), holds one
element of ``eval_sets`` sets out of training, trains the Keras CBOW and gensim side by
side on the rest, and scores heldout_recall@k (with popularity and random baselines) and,
given element labels, label_agreement@k (with untrained random vectors beside it). Writes
``output_dir``/metrics.json and projector TSVs, and exports a ``SetRecommender``
SavedModel (``export_dir``/``export_version``).

Without ``sets`` it runs on the cases of a small synthetic JADER release (generated once
into ``cache_dir``), labelled by the generator's latent therapeutic classes: a drug
carries its class, an event or indication every class it is typical of.
"""

import dataclasses
import pathlib
from typing import Dict, List, Optional

import numpy as np

from tfrs_emb import reporting
from tfrs_emb.core import distribute
from tfrs_emb.core import files
from tfrs_emb.data import jader
from tfrs_emb.data import sets as set_files
from tfrs_emb.data import synthetic_jader
from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.experiments import set_compare
from tfrs_emb.experiments import set_methods
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import set_recommender
from tfrs_emb.models.cbow import CbowConfig
from tfrs_emb.reporting import projector as projector_files


@dataclasses.dataclass
class Config(set_methods.SetMethodsConfig):
  """Flags of ``python -m trainers.set2vec`` (the CBOW settings: ``cbow``, a
  ``models.cbow.CbowConfig``; the Keras CBOW's max_len is ``max_len``).

  The CBOW defaults suit small corpora (thousands of sets): 1,024-element batches, 20
  epochs and rate 0.05 give enough steps for the Keras CBOW to move. A corpus with few,
  very frequent elements may need a lower rate (configs/set2vec_groceries.flags).

  The fused op runs with jader_w2v's settings: noise per target and the word2vec input
  update. With per-set noise and the exact update, long sets (sessions of tens to hundreds
  of elements) do not train: every target of a set shares its few noise elements, whose
  output rows get one push per target from nearly the same context, and each context
  vector gets 1/(L − 1) of the update.
  """
  cbow: CbowConfig = set_methods.cbow_field(CbowConfig(
      epochs=20, tokens_per_batch=1024, learning_rate=0.05, min_learning_rate=1e-4,
      noise_per_target=True, fused_input_update="word2vec"))
  sets: str = field("", "Set file (CSV/TSV/Parquet, .gz allowed); empty = sets of a "
                    "synthetic JADER release.")
  format: str = field("baskets", "baskets: one set per line; long: one (set, element) row "
                      "per element.", choices=set_files.FORMATS)
  set_column: str = field("set", "long: column of the set id.")
  element_column: str = field("element", "long: column of the element.")
  order_column: str = field("", "long: optional column ordering a set's elements (numbers "
                            "or ISO-8601 datetimes, compared in UTC); then the held-out "
                            "element is each set's last.")
  skip_bad_order: bool = field(False, "long: skip (counted) rows whose --order_column value "
                               "is missing or not of the column's kind (number / datetime), "
                               "instead of stopping.")
  delimiter: str = field(",", "baskets: element separator.")
  element_labels: str = field("", "Optional CSV with header element,label "
                              "(label_agreement@k).")
  max_len: int = field(64, "Longest set used (longer sets keep their last max_len "
                       "elements); also gensim's window.", lower=2)
  synthetic_cases: int = field(5000, "Without --sets: cases of the synthetic release.",
                               lower=1)
  synthetic_seed: int = field(0, "Without --sets: seed of the synthetic release.")
  cache_dir: str = field("runs/cache/jader", "Where generated releases are kept.")
  output_dir: str = field("runs/set2vec", "metrics.json and projector TSVs.")
  export_dir: str = field("exported_models/set2vec", "SetRecommender SavedModel base path "
                          "(TF Serving layout); empty = skip.")
  export_version: int = field(1, "SavedModel version folder.", lower=1)
  export_prior: bool = field(True, "Exported scores include the noise prior (noise "
                             "exponent · log training count): rank by P(element | set), "
                             "not by lift.")
  export_method: str = field(set_methods.KERAS, "Method whose tables are exported.",
                             choices=(set_methods.KERAS, set_methods.GENSIM))

  def keras_max_len(self) -> int:
    return self.max_len


class Set2vecResult(set_methods.TableResult):
  """Outcome of ``run`` (fields: see TableResult)."""


def synthetic_corpus(config: Config, log: common.Log = common.no_log):
  """(SetCorpus, element labels) from the cases of a cached synthetic JADER release."""
  release = synthetic_jader.cached_release(config.cache_dir, config.synthetic_cases,
                                           seed=config.synthetic_seed, log=log)
  cases = jader.load_cases(release)
  corpus = set_files.corpus_from_csr(cases.vocab, cases.indptr, cases.indices, list(cases.ids),
                                source=f"synthetic JADER {release}", max_len=config.max_len)
  return corpus, _latent_class_labels(corpus.vocab, config.synthetic_seed)


def _latent_class_labels(vocab: List[str], seed: int) -> List[frozenset]:
  gen = synthetic_jader.build_vocabulary(seed)
  labels: Dict[str, set] = {}
  for drug, c in zip(gen.drugs, gen.drug_class):
    labels.setdefault(f"drug:{drug}", set()).add(gen.class_names[c])
  for c, name in enumerate(gen.class_names):
    for kind, names in (("reac", gen.class_events[c]), ("hist", gen.class_hist[c])):
      for n in names:
        labels.setdefault(f"{kind}:{n}", set()).add(name)
  return [frozenset(labels.get(v, ())) for v in vocab]


def _load(config: Config, log: common.Log):
  if not config.sets:
    return synthetic_corpus(config, log)
  corpus = set_files.load_sets(config.sets, format=config.format, set_column=config.set_column,
                          element_column=config.element_column,
                          order_column=config.order_column or None,
                          delimiter=config.delimiter, max_len=config.max_len,
                          skip_bad_order=config.skip_bad_order)
  labels = (set_files.load_element_labels(config.element_labels, corpus.vocab, corpus.skipped)
            if config.element_labels else None)
  return corpus, labels


def _label_agreement(labels: Optional[List[frozenset]], vocab: List[str],
                     method_vocab: List[str], vectors: np.ndarray, k: int) -> Dict[str, float]:
  if labels is None:
    return {}
  pos = {v: i for i, v in enumerate(vocab)}
  return {f"label_agreement@{k}": set_embeddings.label_agreement_at_k(
      vectors, [labels[pos[v]] for v in method_vocab], k)}


def run(config: Config, log: common.Log = common.no_log) -> Set2vecResult:
  """Loads the sets, trains both CBOWs, evaluates, writes metrics and exports."""
  common.check_config(config)
  common.check_output_dirs(config, "output_dir", "export_dir", "cache_dir", "checkpoint_dir")
  if config.export_dir and config.export_method == set_methods.GENSIM and not config.run_gensim:
    raise ValueError("export_method=gensim_cbow needs run_gensim=True")
  k = config.k
  out = pathlib.Path(config.output_dir)
  corpus, labels = _load(config, log)
  log(corpus.summary())
  held = set_embeddings.hold_out(corpus.indptr, corpus.indices, config.eval_sets,
                                 seed=config.seed, ordered=corpus.ordered)
  log(f"{len(held):,d} evaluation sets, the {'last' if corpus.ordered else 'random'} "
      "element of each held out of training")
  set_files.check_min_count(held.train_indptr, held.train_indices, len(corpus.vocab),
                            config.cbow.min_count, corpus.source, corpus.hints)
  compared = set_methods.compared_table(
      config, set_methods.cached(lambda r: _repeat_corpus(config, corpus, held, r, log)),
      window=config.max_len, log=log)
  methods, result = set_methods.train_methods(
      config, corpus.vocab, held.train_indptr, held.train_indices, window=config.max_len,
      log_dir=None, log=log, knobs=set_methods.tuned_cbow(config, compared))
  # Under multi_worker only the chief writes the run's files and the export.
  chief = distribute.is_chief(result.model.distribute_strategy)
  out = distribute.output_path(out, result.model.distribute_strategy)
  heldout = set_methods.heldout_scores(held, methods, corpus.vocab, k, seed=config.seed + 2,
                                       min_count=config.cbow.min_count, log=log)
  rows = []
  for m in methods:
    rows.append({"method": m.name, **heldout[m.name],
                 **_label_agreement(labels, corpus.vocab, m.vocab, m.vectors, k),
                 **m.speed()})
  for name in (set_methods.EASE, set_methods.ITEM_KNN, set_methods.POPULARITY):
    rows.append({"method": name, **heldout[name]})
  noise = set_methods.random_vectors(len(result.vocab), config.cbow.dim, config.seed + 1)
  rows.append({"method": set_methods.RANDOM, **heldout[set_methods.RANDOM],
               **_label_agreement(labels, corpus.vocab, result.vocab, noise, k)})

  projector = projector_files.write_projector(result.vocab, result.vectors, out / "projector",
                                   result.counts)
  columns = ["method", f"heldout_recall@{k}", set_methods.prior_key(k), f"heldout_ndcg@{k}"]
  if labels is not None:
    columns.append(f"label_agreement@{k}")
  columns += ["unanswered", "train_seconds", "tokens_per_s", "kernel"]
  notes = [f"heldout_recall@{k}: {len(held):,d} sets, the "
           f"{'last' if corpus.ordered else 'random'} element of each held out of training "
           "and predicted from the rest; popularity = training frequency; +prior = CBOW scores plus "
           "the log noise prior (noise exponent · log training count: log P(element | set) "
           "instead of lift); unanswered = held-out element outside the method's vocabulary "
           "(min_count) or no known context.",
           set_methods.peer_note(heldout)]
  if labels is not None:
    notes.append(f"label_agreement@{k}: {sum(1 for s in labels if s):,d} labelled elements; "
                 "random = untrained random vectors.")
  table = reporting.markdown_table(rows, columns)
  export_prior = config.export_prior
  if compared is not None:
    table += "\n\n" + reporting.markdown_table(compared.rows(k), compared.columns(k))
    notes += compared.notes(k)
    export_prior = compared.table.ours != set_compare.KERAS
  payload = {
      "rows": rows, "sets": len(corpus), "vocab_size": len(corpus.vocab),
      "train_vocab_size": len(result.vocab), "set_elements": int(len(corpus.indices)),
      "eval_sets": len(held), "ordered": corpus.ordered, "source": corpus.source,
      "skipped": corpus.skipped, "labelled_elements": (
          sum(1 for s in labels if s) if labels is not None else 0),
      "keras_history": result.history, "projector": str(projector),
      "export_path": "", "notes": notes, "config": common.config_dict(config),
      "compared": compared.as_dict() if compared is not None else None,
      "export_prior": export_prior,
      "exported_model": (compared.table.ours if compared is not None
                         else config.export_method),
      "machine": reporting.machine_conditions(),
  }
  # Metrics first: a failed export must not lose the run's numbers.
  metrics_path = files.write_json(out / "metrics.json", payload)
  export_path = ""
  if config.export_dir and chief:
    if compared is not None and compared.table.ours in (set_compare.SOFTMAX,
                                                         set_compare.FUSED):
      model = compared.recommender(corpus.vocab, k,   # the evaluated repeat-0 fit
                                   aliases=corpus.aliases)
    else:
      chosen = next(m for m in methods if m.name == config.export_method)  # checked above
      prior = None
      if export_prior:
        counts = np.bincount(held.train_indices, minlength=len(corpus.vocab))
        prior = set_embeddings.noise_log_prior(
            counts[case_encoder.map_elements(chosen.vocab, corpus.vocab)],
            chosen.noise_exponent)
      model = set_recommender.SetRecommender(chosen.vocab, chosen.vectors,
                                             chosen.output_vectors, k=k, log_prior=prior,
                                             aliases=corpus.aliases)
    path = set_recommender.export_set_recommender(model, config.export_dir,
                                                  version=config.export_version)
    export_path = str(path)
    payload["export_bytes"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    log(f"exported {payload['exported_model']} to {export_path}: "
        f"{payload['export_bytes'] / 2**20:,.1f} MiB")
  if export_path:
    payload["export_path"] = export_path
    files.write_json(metrics_path, payload)
  return Set2vecResult(rows, table, notes, metrics_path, export_path, payload)


def _repeat_corpus(config: Config, corpus: set_files.SetCorpus,
                   held: set_embeddings.HeldOut, repeat: int,
                   log: common.Log) -> set_compare.Corpus:
  """The compared table's data of ``repeat``: the loaded sets, or on synthetic data the
  release of seed ``harness.release_seed(synthetic_seed, repeat)`` (its evaluation sets
  drawn the same way)."""
  if config.sets or repeat == 0:
    return set_compare.Corpus(tuple(corpus.vocab), held, config.synthetic_seed)
  seed = harness.release_seed(config.synthetic_seed, repeat)
  other, _ = synthetic_corpus(dataclasses.replace(config, synthetic_seed=seed), log)
  return set_compare.Corpus(tuple(other.vocab), set_embeddings.hold_out(
      other.indptr, other.indices, config.eval_sets, seed=config.seed,
      ordered=other.ordered), seed)
