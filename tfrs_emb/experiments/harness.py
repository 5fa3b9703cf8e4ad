"""The comparison protocol of SPEC.md, one harness for every table that compares methods.

A table's rows are ``Method`` s: a name, the method's documented search space (one
configuration per trial, in trial order), ``fit(config, train, seed)`` and a per-item
``score(model, split)``. ``compare`` then

1. gives every method the same number of trials (one trial = one full fit with one
   configuration; a method with hyper-parameters whose space is smaller than the budget
   stops the run with the counts; a method without any, space ``({},)``, runs its one),
2. chooses each method's configuration, "ours" (the one row chosen among ``ours``) and the
   "best peer" (the other row best on development data) from a ``Development`` object
   only: a training split to fit on and a development split to score. The evaluation data
   is not reachable from there: ``evaluation(repeat)`` is first called after every choice
   is fixed, and its items may not appear in the development data,
3. refits every chosen configuration on each repeat's ``Evaluation.train`` with the
   repeat's own training seed (``seed + repeat``; for synthetic data ``evaluation(repeat)``
   returns the repeat's own release, of seed ``release_seed(base, repeat)``) and scores
   the evaluation items,
4. reports each row's mean [95 % CI] over repeats × items, its budget, and for "ours" the
   paired difference to the best peer with its interval and verdict (win / tie / loss).

::

  methods = [harness.Method("ours", space, fit_ours, score),
             harness.Method("peer", peer_space, fit_peer, score)]
  result = harness.compare(methods, harness.Development(train, dev),
                           lambda r: harness.Evaluation(train_all, test),
                           repeats=5, ours=["ours"])
  markdown_table(result.table_rows("recall@10"), result.columns("recall@10"))
"""

import dataclasses
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfrs_emb.experiments import common
from tfrs_emb.metrics import comparison

NO_HYPERPARAMETERS: Tuple[Mapping[str, Any], ...] = ({},)
# Synthetic data: repeat r >= 1 evaluates the release of seed base + RELEASE_STRIDE * r, so
# no repeat lands on a development release (base + 1, base + 2, ...: where defaults are
# chosen).
RELEASE_STRIDE = 1000


def release_seed(base: int, repeat: int) -> int:
  """Generator seed of synthetic repeat ``repeat``'s release: ``base`` (the evaluation
  release) for repeat 0, ``base + RELEASE_STRIDE * repeat`` after."""
  if repeat < 0:
    raise ValueError(f"repeat={repeat} must be >= 0")
  return base + RELEASE_STRIDE * repeat


@dataclasses.dataclass(frozen=True)
class Split:
  """Items of one split.

  Attributes:
    ids: one hashable id per item, in the order the score functions return scores.
    data: whatever the methods read (texts, arrays, sets, ...).
  """
  ids: Tuple[Any, ...]
  data: Any

  def __post_init__(self):
    object.__setattr__(self, "ids", tuple(self.ids))


@dataclasses.dataclass(frozen=True)
class Development:
  """All a choosing step sees: ``train`` to fit on, ``dev`` to score and choose on."""
  train: Split
  dev: Split


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """The final scoring's data: ``train`` for the final fit, ``test`` the evaluation items."""
  train: Split
  test: Split


@dataclasses.dataclass(frozen=True)
class Method:
  """One row of a comparison.

  Attributes:
    name: row label.
    space: the documented search space, one configuration (a mapping) per trial, in the
      order they are tried; ``NO_HYPERPARAMETERS`` for a method with nothing to tune.
    fit: ``(config, train Split, seed) -> model``.
    score: ``(model, Split) -> float [len(split.ids)]``, higher is better; nan for an
      item the method cannot be scored on (dropped, pairwise, from the statistics).
    other_metrics: optional ``(model, Split) -> {metric: float}`` of each final fit on the
      evaluation items, averaged over repeats; shown, not compared.
  """
  name: str
  space: Tuple[Mapping[str, Any], ...]
  fit: Callable[[Mapping[str, Any], Split, int], Any]
  score: Callable[[Any, Split], np.ndarray]
  other_metrics: Optional[Callable[[Any, Split], Mapping[str, float]]] = None

  def __post_init__(self):
    object.__setattr__(self, "space", tuple(self.space))
    if not self.space:
      raise ValueError(f"method {self.name!r}: empty search space (use "
                       "NO_HYPERPARAMETERS for a method with nothing to tune)")

  @property
  def tunable(self) -> bool:
    return self.space != NO_HYPERPARAMETERS


@dataclasses.dataclass(frozen=True)
class ItemScores:
  """Per-item scores shown to a chooser: ids [n] and values float [n]."""
  ids: Tuple[Any, ...]
  values: np.ndarray

  @property
  def mean(self) -> float:
    """Mean over the scored (non-nan) items; nan when none is scored."""
    return float(np.nanmean(self.values)) if np.any(~np.isnan(self.values)) else np.nan


# A chooser picks one key of the candidates it is shown (configurations or rows).
Chooser = Callable[[Mapping[str, ItemScores]], str]


def best_mean(candidates: Mapping[str, ItemScores]) -> str:
  """The candidate with the highest mean score (one without scored items ranks last);
  ties go to the first listed."""
  return max(candidates, key=lambda name: np.nan_to_num(candidates[name].mean, nan=-np.inf))


def prefer_within_one_se(preferred: Sequence[str], base: Chooser = best_mean) -> Chooser:
  """A chooser that keeps a preferred candidate unless another beats it by more than the
  development data's noise.

  It takes ``base``'s candidate, unless a candidate in ``preferred`` (earliest first)
  trails it by at most one standard error of their paired per-item difference (Breiman's
  one-standard-error rule); then that one.

  Raises:
    TypeError: ``preferred`` is a single string (a name, not a list of names).
    ValueError: (when called) the candidates were scored on different items.
  """
  if isinstance(preferred, str):
    raise TypeError(f"preferred must be a list of row names, got the string {preferred!r}")

  def choose(candidates: Mapping[str, ItemScores]) -> str:
    best = base(candidates)
    for name in (n for n in preferred if n in candidates):
      if name == best:
        return best
      if candidates[name].ids != candidates[best].ids:
        raise ValueError(f"{name!r} and {best!r} were scored on different items")
      d = candidates[best].values - candidates[name].values
      d = d[~np.isnan(d)]
      if len(d) > 1 and d.mean() <= d.std(ddof=1) / np.sqrt(len(d)):
        return name
    return best
  return choose


def budgets(methods: Sequence[Method], trials: Optional[int] = None) -> Dict[str, int]:
  """Trials of each method: ``trials`` (default: the largest search space) for every
  method with hyper-parameters, 1 for a method without.

  Raises:
    ValueError: a method with hyper-parameters has fewer configurations than the budget
      (it would get fewer trials than the others), naming it and the counts.
  """
  if trials is None:
    trials = max(len(m.space) for m in methods)
  if trials < 1:
    raise ValueError(f"trials={trials} must be >= 1")
  short = [m for m in methods if m.tunable and len(m.space) < trials]
  if short:
    full = ", ".join(f"{m.name!r} {trials}" for m in methods
                     if m.tunable and len(m.space) >= trials)
    raise ValueError(
        "unequal tuning budgets: " + "; ".join(
            f"method {m.name!r} has {len(m.space)} configurations in its search space, "
            f"fewer than the {trials} trials" for m in short)
        + (f" given to the others ({full})" if full else "")
        + "; give it a larger search space or lower the budget for all")
  return {m.name: trials if m.tunable else 1 for m in methods}


def config_key(config: Mapping[str, Any]) -> Tuple[Tuple[str, Any], ...]:
  """A configuration as a hashable key (its items, sorted by name)."""
  return tuple(sorted(config.items()))


def memoized(fit: Callable[[Mapping[str, Any], Split, int], Any],
             data_key: Optional[Callable[[Split], Hashable]] = None
             ) -> Tuple[Callable[[Mapping[str, Any], Split, int], Any], Dict]:
  """A ``Method.fit`` computed once per (configuration, seed, training data), so rows that
  share a fit (a model scored two ways, the tuning fit the evaluation reuses) train once.

  Args:
    fit: ``(config, train Split, seed) -> model``.
    data_key: names the training data of a Split; default: the identity of ``train.data``
      (the memo keeps that object alive, so its id is never reused).

  Returns:
    (the memoized fit, its cache: ``(config_key(config), seed, data key)`` -> model).
  """
  cache: Dict = {}
  kept: Dict[int, Any] = {}

  def run(config: Mapping[str, Any], train: Split, seed: int) -> Any:
    if data_key is None:
      kept[id(train.data)] = train.data
      key = (config_key(config), seed, id(train.data))
    else:
      key = (config_key(config), seed, data_key(train))
    if key not in cache:
      cache[key] = fit(config, train, seed)
    return cache[key]
  return run, cache


@dataclasses.dataclass
class Tuned:
  """A method's chosen configuration and its development score."""
  config: Mapping[str, Any]
  dev: float
  dev_scores: ItemScores
  trials: int


def _config_label(i: int, config: Mapping[str, Any]) -> str:
  return f"{i}: " + (", ".join(f"{k}={v}" for k, v in config.items()) or "(none)")


def _scores(method: Method, model: Any, split: Split) -> ItemScores:
  values = np.asarray(method.score(model, split), np.float64).reshape(-1)
  if len(values) != len(split.ids):
    raise ValueError(f"method {method.name!r}: score returned {len(values)} values for "
                     f"{len(split.ids)} items")
  return ItemScores(split.ids, values)


def tune(methods: Sequence[Method], development: Development, budget: Mapping[str, int],
         seed: int = 0, chooser: Chooser = best_mean,
         log: common.Log = common.no_log) -> Dict[str, Tuned]:
  """Fits each method's first ``budget[name]`` configurations on ``development.train``
  and chooses among them on ``development.dev`` (the only data it is given)."""
  tuned = {}
  for method in methods:
    tried = {}
    for i, config in enumerate(method.space[:budget[method.name]]):
      model = method.fit(config, development.train, seed)
      tried[_config_label(i, config)] = (config, _scores(method, model, development.dev))
    chosen = chooser({label: s for label, (_, s) in tried.items()})
    config, scores = tried[chosen]
    tuned[method.name] = Tuned(config, scores.mean, scores, len(tried))
    log(f"tuned {method.name}: {len(tried)} trials, chose {chosen} "
        f"(dev {scores.mean:.4f})")
  return tuned


def choose_rows(tuned: Mapping[str, Tuned], ours: Optional[Sequence[str]] = None,
                chooser: Chooser = best_mean, shown: Sequence[str] = (),
                ours_chooser: Optional[Chooser] = None) -> Tuple[str, Optional[str]]:
  """("ours", "best peer") chosen on development scores.

  Args:
    ours: the rows that may be "ours"; None: every row, the best peer is then the best
      other row. The best peer is None when no other row is left.
    chooser: picks the best peer (and "ours" unless ``ours_chooser`` is given).
    shown: rows that are neither (an ablation of ours, compared to it apart).
    ours_chooser: picks "ours" among ``ours`` (e.g. ``prefer_within_one_se``).
  """
  names = [n for n in tuned if n not in shown]
  candidates = names if ours is None else list(ours)
  unknown = [n for n in candidates if n not in tuned]
  if unknown or not candidates:
    raise ValueError(f"ours={list(candidates)}: expected a non-empty subset of {names}")
  ours_name = (ours_chooser or chooser)({n: tuned[n].dev_scores for n in candidates})
  if ours_name not in candidates:
    raise ValueError(f"the ours chooser returned {ours_name!r}, not one of {candidates}")
  peers = [n for n in names if n != ours_name and (ours is None or n not in candidates)]
  peer = chooser({n: tuned[n].dev_scores for n in peers}) if peers else None
  return ours_name, peer


@dataclasses.dataclass
class Row:
  """One method's result: role ("ours", "best peer" or "shown"), budget, chosen
  configuration, development score, evaluation cell, its other metrics (means over
  repeats), and for "ours" the difference."""
  method: str
  role: str
  trials: int
  config: Mapping[str, Any]
  dev: float
  cell: comparison.Interval
  other: Dict[str, float]
  difference: Optional[comparison.Difference] = None


@dataclasses.dataclass
class Scored:
  """What ``evaluate`` measured.

  Attributes:
    scores: method → one float array [n_r] per repeat over that repeat's evaluation items.
    other: method → per repeat, its ``other_metrics`` (empty dicts without).
    same_items: every repeat scored the same items (real data), so the bootstrap draws
      one set of items for all repeats (``comparison.bootstrap_means``).
  """
  scores: Dict[str, List[np.ndarray]]
  other: Dict[str, List[Dict[str, float]]]
  same_items: bool


@dataclasses.dataclass
class Comparison:
  """A compared table: its rows, the two compared rows, and every evaluation score."""
  rows: List[Row]
  ours: str
  best_peer: Optional[str]
  repeats: int
  scored: Scored
  samples: int = comparison.BOOTSTRAP_SAMPLES
  seed: int = 0

  def row(self, name: str) -> Row:
    return next(r for r in self.rows if r.method == name)

  def difference(self, a: str, b: str) -> comparison.Difference:
    """Row ``a`` − row ``b`` paired on the same items, with the table's bootstrap."""
    s = self.scored
    return comparison.paired_difference(s.scores[a], s.scores[b], self.samples, self.seed,
                                        s.same_items)

  @staticmethod
  def columns(metric: str) -> List[str]:
    return ["method", "role", "trials", f"dev {metric}", f"{metric} [95% CI]",
            "d vs best peer [95% CI]", "verdict"]

  def table_rows(self, metric: str, digits: int = 4) -> List[Dict[str, Any]]:
    """Rows for ``reporting.markdown_table`` with ``columns(metric)`` (and the other
    metrics' names)."""
    return [{"method": r.method, "role": r.role, "trials": r.trials,
             f"dev {metric}": r.dev, f"{metric} [95% CI]": r.cell.text(digits),
             "d vs best peer [95% CI]": r.difference.text(digits) if r.difference
             else "",
             "verdict": r.difference.verdict if r.difference else "", **r.other}
            for r in self.rows]

  def as_dict(self) -> Dict[str, Any]:
    """JSON-ready summary (no per-item scores)."""
    return {"ours": self.ours, "best_peer": self.best_peer, "repeats": self.repeats,
            "same_items": self.scored.same_items,
            "rows": [{"method": r.method, "role": r.role, "trials": r.trials,
                      "config": dict(r.config), "dev": r.dev, **r.cell.as_dict(),
                      "other": r.other,
                      **({"difference": r.difference.as_dict()} if r.difference else {})}
                     for r in self.rows]}


def _check_disjoint(development: Development, evaluation: Evaluation, repeat: int) -> None:
  seen = set(development.train.ids) | set(development.dev.ids)
  leaked = [i for i in evaluation.test.ids if i in seen]
  if leaked:
    raise ValueError(f"repeat {repeat}: {len(leaked)} evaluation items are also in the "
                     f"development data (first: {leaked[:3]}); evaluation items must "
                     "never be seen by a choosing step")


def evaluate(methods: Sequence[Method], tuned: Mapping[str, Tuned],
             evaluation: Callable[[int], Evaluation], development: Development,
             repeats: int = 1, seed: int = 0,
             log: common.Log = common.no_log) -> Scored:
  """Refits each chosen configuration per repeat (seed ``seed + repeat``) on the repeat's
  ``Evaluation.train`` and scores its evaluation items."""
  scores: Dict[str, List[np.ndarray]] = {m.name: [] for m in methods}
  other: Dict[str, List[Dict[str, float]]] = {m.name: [] for m in methods}
  item_ids = []
  for repeat in range(repeats):
    data = evaluation(repeat)
    _check_disjoint(development, data, repeat)
    item_ids.append(data.test.ids)
    for method in methods:
      model = method.fit(tuned[method.name].config, data.train, seed + repeat)
      scores[method.name].append(_scores(method, model, data.test).values)
      other[method.name].append(dict(method.other_metrics(model, data.test))
                                if method.other_metrics else {})
    log(f"evaluated repeat {repeat + 1}/{repeats} ({len(data.test.ids)} items)")
  return Scored(scores, other, all(ids == item_ids[0] for ids in item_ids))


def _mean_metrics(per_repeat: Sequence[Mapping[str, float]]) -> Dict[str, float]:
  """Mean of each metric over repeats; a count equal in every repeat stays an int."""
  out = {}
  for key in per_repeat[0]:
    values = [m[key] for m in per_repeat]
    same_int = all(isinstance(v, (int, np.integer)) for v in values) and len(set(values)) == 1
    out[key] = int(values[0]) if same_int else float(np.mean(values))
  return out


def compare(methods: Sequence[Method], development: Development,
            evaluation: Callable[[int], Evaluation], *, repeats: int = 1, seed: int = 0,
            trials: Optional[int] = None, ours: Optional[Sequence[str]] = None,
            chooser: Chooser = best_mean, samples: int = comparison.BOOTSTRAP_SAMPLES,
            derived: Sequence[Callable[[Mapping[str, Tuned]], Method]] = (),
            shown: Sequence[str] = (), ours_chooser: Optional[Chooser] = None,
            log: common.Log = common.no_log) -> Comparison:
  """Runs the whole protocol (module docstring) and returns the compared table.

  Args:
    methods: the rows, in table order (ties on development data go to the first).
    development: the only data tuning and choosing see.
    evaluation: repeat index → that repeat's ``Evaluation`` (the same one for every repeat
      on real data; the repeat's release on synthetic data). Called after all choices.
    repeats: R; each repeat refits with training seed ``seed + repeat``.
    trials: the equal budget (default: the largest search space).
    ours: rows that may be "ours" (default: every row; see ``choose_rows``).
    chooser: picks configurations and rows from development scores.
    samples: bootstrap resamples of the intervals (seeded with ``seed``).
    derived: rows built on other rows' choices (e.g. a fusion of two tuned rows): each
      is made from the tuned rows once ``methods`` are tuned, then tuned itself with the
      same budget on the same development data, and listed after them.
    shown: rows tuned and evaluated like the others but never "ours" nor "best peer"
      (e.g. an ablation of ours; ``Comparison.difference`` compares any two rows).
    ours_chooser: picks "ours" among ``ours`` (default ``chooser``).
  """
  if repeats < 1:
    raise ValueError(f"repeats={repeats} must be >= 1")
  names = [m.name for m in methods]
  if len(set(names)) != len(names):
    raise ValueError(f"method names must be unique, got {names}")
  budget = budgets(methods, trials)
  tuned = tune(methods, development, budget, seed, chooser, log)
  methods = list(methods)
  for make in derived:
    method = make(tuned)
    if method.name in tuned:
      raise ValueError(f"derived method name {method.name!r} is already a row")
    budget.update(budgets([method], trials if trials is not None
                          else max(budget.values())))
    tuned.update(tune([method], development, budget, seed, chooser, log))
    methods.append(method)
  ours_name, peer = choose_rows(tuned, ours, chooser, shown, ours_chooser)
  scored = evaluate(methods, tuned, evaluation, development, repeats, seed, log)
  scores, same = scored.scores, scored.same_items
  rows = []
  for method in methods:
    name = method.name
    role = "ours" if name == ours_name else "best peer" if name == peer else "shown"
    diff = (comparison.paired_difference(scores[name], scores[peer], samples, seed, same)
            if role == "ours" and peer is not None else None)
    rows.append(Row(name, role, budget[name], tuned[name].config, tuned[name].dev,
                    comparison.interval(scores[name], samples, seed, same),
                    _mean_metrics(scored.other[name]), diff))
  return Comparison(rows, ours_name, peer, repeats, scored, samples, seed)
