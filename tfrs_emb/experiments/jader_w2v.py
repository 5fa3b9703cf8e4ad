"""JADER Word2Vec CBOW: Keras CBOW vs gensim on case element sets (SPEC.md experiments 2, 4).

Without ``jader_dir`` a synthetic release of ``synthetic_cases`` cases is generated once
into ``cache_dir``. ``eval_sets`` cases lose one random element before training
(heldout_recall@k: can a method predict it from the rest?). Both methods train on that
reduced corpus with the same dimension, window, negatives, epochs, min_count and sample.
Every case (all its elements) is then embedded by mean and max of its element vectors,
and the top-k similar cases of ``queries`` sampled cases are searched exactly among all
cases (self excluded): class_agreement@k (the synthetic release's latent primary class)
and rank_dice@k (the talk's element-overlap score, which untrained random vectors also
score high on). Rows: keras_cbow, gensim_cbow, popularity and random (random scores for
heldout_recall, untrained random element vectors for the case search).
Writes ``output_dir``/metrics.json (with the release folder), element_vectors.npz (the
Keras element vectors the CaseEncoder holds, for the retrieval bench: ``jader_run``),
projector TSVs, TensorBoard logs and the CaseEncoder SavedModel (``export_dir``).
"""

import dataclasses
import os
import pathlib
import time
from typing import Any, Dict, List, Tuple

import numpy as np

from tfrs_emb import reporting
from tfrs_emb.core import distribute
from tfrs_emb.core import files
from tfrs_emb.data import jader
from tfrs_emb.data import synthetic_jader
from tfrs_emb.experiments import common
from tfrs_emb.experiments import harness
from tfrs_emb.experiments import jader_run
from tfrs_emb.experiments import set_compare
from tfrs_emb.experiments import set_methods
from tfrs_emb.experiments.common import field
from tfrs_emb.metrics import set_embeddings
from tfrs_emb.models import case_encoder
from tfrs_emb.models import cbow_training
from tfrs_emb.reporting import projector as projector_files


@dataclasses.dataclass
class Config(set_methods.SetMethodsConfig):
  """Flags of ``python -m trainers.jader_w2v`` (the CBOW settings: ``cbow``, a
  ``models.cbow.CbowConfig``; the Keras CBOW uses up to ``window + 1`` elements of a case)."""
  jader_dir: str = field("", "Real JADER release folder; empty = synthetic.")
  synthetic_cases: int = field(20_000, "Cases of the generated release.", lower=1)
  synthetic_seed: int = field(0, "Seed of the generated release.")
  cache_dir: str = field("runs/cache/jader", "Where generated releases are kept.")
  suspected_only: bool = field(False, "Keep only 被疑薬 (suspected) drugs.")
  window: int = field(64, "gensim window (no shrinking); Keras uses up to window + 1 "
                      "elements of a case, i.e. the same full-set context.", lower=1)
  queries: int = field(2000, "Query cases sampled for similar-case search.", lower=1)
  output_dir: str = field("runs/jader_w2v", "metrics.json, element_vectors.npz, projector, "
                          "TensorBoard.")
  export_dir: str = field("", "CaseEncoder SavedModel base path (TF Serving layout); empty "
                          "= skip. A different model (data, scale) gets a different name.")
  export_version: int = field(1, "SavedModel version folder (a retrain of the same model).",
                              lower=1)
  export_aggregation: str = field("mean", "Exported aggregation.", choices=("mean", "max"))
  random_reference: bool = field(True, "Also search with untrained random element vectors "
                                 "(a reference: rank_dice rewards exact element identity).")

  def keras_max_len(self) -> int:
    return self.window + 1


class JaderW2vResult(set_methods.TableResult):
  """Outcome of ``run`` (fields: see TableResult)."""


def _columns(k: int) -> List[str]:
  return ["method", "aggregation", f"heldout_recall@{k}", f"class_agreement@{k}",
          f"rank_dice@{k}", set_methods.prior_key(k), "train_seconds", "tokens_per_s",
          "kernel"]


def _write_projector(out: pathlib.Path, result: cbow_training.CbowResult) -> pathlib.Path:
  projector = projector_files.write_projector(result.vocab, result.vectors, out / "projector",
                                   result.counts)
  files.write_text(out / "tensorboard" / "projector_config.pbtxt",
                   'embeddings {\n  tensor_name: "jader_elements"\n'
                   f'  tensor_path: "{(projector / "vectors.tsv").resolve()}"\n'
                   f'  metadata_path: "{(projector / "metadata.tsv").resolve()}"\n}}\n')
  return projector


@dataclasses.dataclass
class _Loaded:
  """The release's cases, the similar-case queries and the held-out split."""
  release: pathlib.Path
  cases: jader.JaderCases
  load_seconds: float
  query_ids: np.ndarray
  held: set_embeddings.HeldOut


def _load(config: Config, log: common.Log) -> _Loaded:
  """Loads (or generates) the release, samples the queries, holds the elements out."""
  t0 = time.perf_counter()
  release = (pathlib.Path(config.jader_dir) if config.jader_dir else
             synthetic_jader.cached_release(config.cache_dir, config.synthetic_cases,
                                            seed=config.synthetic_seed, log=log))
  cases = jader.load_cases(release, suspected_only=config.suspected_only)
  load_seconds = time.perf_counter() - t0
  log(f"JADER {release}: {cases.summary()}")
  rng = np.random.default_rng(config.seed)
  candidates = np.nonzero(cases.lengths > 0)[0]
  query_ids = np.sort(rng.choice(candidates, min(config.queries, len(candidates)),
                                 replace=False))
  held = set_embeddings.hold_out(cases.indptr, cases.indices, config.eval_sets,
                                 seed=config.seed)
  log(f"loaded in {load_seconds:.1f} s; {len(query_ids):,d} queries over {len(cases):,d} "
      f"cases; {len(held):,d} evaluation cases with one element held out")
  return _Loaded(release, cases, load_seconds, query_ids, held)


def _search_rows(config: Config, data: _Loaded, methods, heldout, log: common.Log
                 ) -> List[Dict[str, Any]]:
  """The table rows: each method's similar-case search per aggregation (with its
  heldout scores and speed), the peers, and random (vectors or scores)."""
  cases, k = data.cases, config.k
  sets = cases.element_sets()
  rows: List[Dict[str, Any]] = []

  def search(name, rows_of_elements, vectors, extra):
    for agg in case_encoder.AGGREGATIONS:
      emb = case_encoder.case_embeddings(cases.indptr, rows_of_elements, vectors, agg)
      scores = set_embeddings.evaluate_case_search(emb, sets, data.query_ids,
                                                   cases.latent_class, k=k)
      rows.append({"method": name, "aggregation": agg, **heldout[name], **scores, **extra})
      log(f"{name} {agg}: " + ", ".join(f"{c}={reporting.format_number(rows[-1][c])}"
                                        for c in _columns(k)[2:] if c in rows[-1]))

  for m in methods:
    search(m.name, case_encoder.map_elements(cases.vocab, m.vocab)[cases.indices],
           m.vectors, m.speed())
  for name in (set_methods.EASE, set_methods.ITEM_KNN, set_methods.POPULARITY):
    rows.append({"method": name, "aggregation": "", **heldout[name]})
  if config.random_reference:
    noise = set_methods.random_vectors(len(cases.vocab), config.cbow.dim, config.seed + 1)
    search(set_methods.RANDOM, cases.indices, noise, {})
  else:
    rows.append({"method": set_methods.RANDOM, "aggregation": "",
                 **heldout[set_methods.RANDOM]})
  return rows


def _notes(k: int, held: set_embeddings.HeldOut, heldout) -> List[str]:
  return [
      f"heldout_recall@{k}: {len(held):,d} cases, one random element held out of training "
      f"each, predicted from the rest (popularity = training frequency); +prior: CBOW "
      "scores plus the log noise prior (its noise exponent · log training count), "
      "log P(element | case) instead of lift.",
      set_methods.peer_note(heldout),
      f"class_agreement@{k}: share of the {k} nearest cases with the query's latent class.",
      f"rank_dice@{k}: element overlap of the retrieved cases (the talk's metric); untrained "
      "random element vectors score high on it (see the random rows): it measures search "
      "fidelity, not what an embedding learned.",
  ]


def _write(config: Config, out: pathlib.Path, chief: bool,
           result: cbow_training.CbowResult, release: pathlib.Path,
           payload: Dict[str, Any]) -> Tuple[pathlib.Path, str]:
  """Writes element_vectors.npz and metrics.json (first: a failed export must not lose the
  run's numbers), then exports the CaseEncoder; returns (metrics path, export path)."""
  if chief:
    payload["element_vectors"] = str(jader_run.write_vectors(
        out, result.vocab, result.vectors, result.counts, payload["config"], release))
  metrics_path = files.write_json(out / "metrics.json", payload)
  export_path = ""
  if config.export_dir and chief:
    encoder = case_encoder.CaseEncoder(result.vocab, result.vectors,
                                       aggregation=config.export_aggregation)
    export_path = str(case_encoder.export_case_encoder(encoder, config.export_dir,
                                                       version=config.export_version))
    payload["export_path"] = export_path
    files.write_json(metrics_path, payload)
  return metrics_path, export_path


def run(config: Config, log: common.Log = common.no_log) -> JaderW2vResult:
  """Loads (or generates) the release, trains both CBOWs, evaluates, writes and exports."""
  common.check_config(config)
  common.check_output_dirs(config, "output_dir", "export_dir", "cache_dir", "checkpoint_dir")
  k = config.k
  out = pathlib.Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  data = _load(config, log)
  cases, held = data.cases, data.held
  compared = set_methods.compared_table(
      config, set_methods.cached(lambda r: _repeat_corpus(config, cases, held, r, log)),
      window=config.window, log=log)
  methods, result = set_methods.train_methods(
      config, cases.vocab, held.train_indptr, held.train_indices, window=config.window,
      log_dir=str(out / "tensorboard"), log=log,
      knobs=set_methods.tuned_cbow(config, compared))
  # Under multi_worker only the chief writes the run's files and the export.
  chief = distribute.is_chief(result.model.distribute_strategy)
  out = distribute.output_path(out, result.model.distribute_strategy)
  heldout = set_methods.heldout_scores(held, methods, cases.vocab, k, seed=config.seed + 2,
                                       min_count=config.cbow.min_count, log=log)
  rows = _search_rows(config, data, methods, heldout, log)
  projector = _write_projector(out, result)
  notes = _notes(k, held, heldout)
  table = reporting.markdown_table(rows, _columns(k))
  if compared is not None:
    table += "\n\n" + reporting.markdown_table(compared.rows(k), compared.columns(k))
    notes += compared.notes(k)
  payload = {
      "rows": rows, "cases": len(cases), "queries": int(len(data.query_ids)),
      "eval_sets": len(held), "vocab_size": len(cases.vocab),
      "train_vocab_size": len(result.vocab), "case_elements": int(len(cases.indices)),
      "train_elements": int(len(held.train_indices)),
      "release": str(data.release.resolve()), "synthetic": not config.jader_dir,
      "load_seconds": data.load_seconds, "skipped_rows": cases.skipped,
      "keras_history": result.history, "export_path": "", "projector": str(projector),
      "replicas": result.replicas, "kernel": result.kernel,
      "strategy": config.strategy, "notes": notes, "config": common.config_dict(config),
      "compared": compared.as_dict() if compared is not None else None,
      "cpu_count": os.cpu_count(), "machine": reporting.machine_conditions(),
  }
  metrics_path, export_path = _write(config, out, chief, result, data.release, payload)
  return JaderW2vResult(rows, table, notes, metrics_path, export_path, payload)


def _repeat_corpus(config: Config, cases: jader.JaderCases, held: set_embeddings.HeldOut,
                   repeat: int, log: common.Log) -> set_compare.Corpus:
  """The compared table's data of ``repeat``: the loaded release, or on synthetic data the
  release of seed ``harness.release_seed(synthetic_seed, repeat)`` (its evaluation cases
  drawn the same way)."""
  if config.jader_dir or repeat == 0:
    return set_compare.Corpus(tuple(cases.vocab), held, config.synthetic_seed)
  seed = harness.release_seed(config.synthetic_seed, repeat)
  other = jader.load_cases(synthetic_jader.cached_release(
      config.cache_dir, config.synthetic_cases, seed=seed, log=log),
      suspected_only=config.suspected_only)
  return set_compare.Corpus(tuple(other.vocab), set_embeddings.hold_out(
      other.indptr, other.indices, config.eval_sets, seed=config.seed), seed)
