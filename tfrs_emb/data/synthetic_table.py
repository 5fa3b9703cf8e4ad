"""A seeded synthetic mixed-type table with a binary label (an adult-census-like shape):
numeric and string columns, missing cells, a label that depends on both through main
effects, an interaction and noise.

Columns (15 features + ``label``, "yes" / "no", about a quarter "yes"):

- numeric: ``age`` (int), ``hours_per_week`` (int), ``capital_gain`` (mostly 0, heavy
  tail), ``score_a``, ``score_b`` (floats whose product matters), ``tenure_years``,
  ``children`` (int 0–5, few distinct values), ``balance`` (float, skewed);
- string: ``education`` (8 ordered levels), ``occupation`` (14), ``region`` (6),
  ``marital`` (5), ``device`` (4), ``city`` (60, rare ones below the vocabulary cut),
  ``newsletter`` ("yes" / "no").

``MISSING_SHARE`` of the cells of ``hours_per_week``, ``tenure_years``, ``balance``,
``occupation``, ``device`` and ``city`` are empty. The label is
``logit > threshold`` with logistic noise, so no model reaches accuracy 1.
"""

import pathlib
from typing import Dict

import numpy as np

EDUCATION = ("preschool", "primary", "middle", "high_school", "some_college",
             "bachelors", "masters", "doctorate")
OCCUPATIONS = tuple(f"occ_{i:02d}" for i in range(14))
REGIONS = ("north", "south", "east", "west", "central", "islands")
MARITAL = ("never_married", "married", "divorced", "separated", "widowed")
DEVICES = ("desktop", "mobile", "tablet", "tv")
CITIES = tuple(f"city_{i:02d}" for i in range(60))
MISSING_SHARE = 0.05
MISSING_COLUMNS = ("hours_per_week", "tenure_years", "balance", "occupation", "device",
                   "city")
LABEL = "label"


def generate(rows: int, seed: int = 0) -> Dict[str, np.ndarray]:
  """Columns of ``rows`` rows (numbers as float64 with NaN = missing, strings as object
  arrays with "" = missing) and the ``label`` column; the same ``seed`` gives the same
  table."""
  if rows < 1:
    raise ValueError(f"rows={rows} must be >= 1")
  rng = np.random.default_rng(seed)
  effects = np.random.default_rng([seed, 1])   # category effects: fixed per seed
  occ_effect = effects.normal(0, 0.7, len(OCCUPATIONS))
  region_effect = effects.normal(0, 0.3, len(REGIONS))
  city_effect = effects.normal(0, 0.4, len(CITIES))
  city_p = effects.dirichlet(np.full(len(CITIES), 0.5))

  age = np.clip(rng.normal(39, 13, rows), 17, 90).round()
  education = rng.choice(len(EDUCATION), rows, p=[.02, .06, .1, .32, .22, .17, .08, .03])
  occupation = rng.integers(0, len(OCCUPATIONS), rows)
  hours = np.clip(rng.normal(40, 12, rows) + 3 * (education > 4), 1, 99).round()
  capital = np.where(rng.random(rows) < 0.1, np.exp(rng.normal(8, 1.2, rows)), 0.0).round()
  score_a, score_b = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
  tenure = np.clip(rng.gamma(2.0, 3.0, rows) * (age - 16) / 40, 0, 60).round(1)
  children = np.minimum(rng.poisson(1.1 * (age > 25), rows), 5).astype(float)
  balance = np.exp(rng.normal(7, 1.5, rows)).round(2)
  region = rng.integers(0, len(REGIONS), rows)
  marital = rng.choice(len(MARITAL), rows, p=[.33, .46, .13, .03, .05])
  device = rng.choice(len(DEVICES), rows, p=[.45, .4, .1, .05])
  city = rng.choice(len(CITIES), rows, p=city_p)
  newsletter = rng.random(rows) < 0.3

  logit = (0.05 * (age - 40) - 0.0012 * (age - 40) ** 2 + 0.45 * education
           + occ_effect[occupation] + 0.035 * (hours - 40) + 0.25 * np.log1p(capital)
           + 1.1 * np.tanh(score_a * score_b) + 0.6 * (marital == 1)
           + region_effect[region] + city_effect[city] + 0.15 * np.log1p(tenure)
           - 0.1 * children + 0.3 * newsletter * (device == 1))
  noisy = logit + rng.logistic(0, 0.6, rows)
  label = np.where(noisy > np.quantile(noisy, 0.75), "yes", "no").astype(object)

  columns = {
      "age": age, "education": np.array(EDUCATION, object)[education],
      "occupation": np.array(OCCUPATIONS, object)[occupation], "hours_per_week": hours,
      "capital_gain": capital, "score_a": score_a.round(4), "score_b": score_b.round(4),
      "tenure_years": tenure, "children": children, "balance": balance,
      "region": np.array(REGIONS, object)[region],
      "marital": np.array(MARITAL, object)[marital],
      "device": np.array(DEVICES, object)[device], "city": np.array(CITIES, object)[city],
      "newsletter": np.where(newsletter, "yes", "no").astype(object)}
  for name in MISSING_COLUMNS:
    gone = rng.random(rows) < MISSING_SHARE
    col = columns[name].copy()
    col[gone] = "" if col.dtype == object else np.nan
    columns[name] = col
  columns[LABEL] = label
  return columns


def write_table(path: "str | pathlib.Path", rows: int, seed: int = 0) -> pathlib.Path:
  """Writes ``generate(rows, seed)`` as a CSV (header row, UTF-8; missing cells empty;
  integers without a decimal point)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  frame = pd.DataFrame(generate(rows, seed))
  for name in ("age", "hours_per_week", "capital_gain", "children"):
    frame[name] = frame[name].astype("Int64")
  frame.to_csv(path, index=False)
  return path
