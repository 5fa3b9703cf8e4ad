"""TensorFlow Datasets builders for the project's data (all from local files).

None of these data sets can be downloaded by TFDS (JADER is a manual PMDA download, the
blog posts and set files are the user's, Cover Type comes from Kaggle or UCI), so every
builder reads ``manual_dir`` through the project's own loaders and never touches the
network. Importing this module registers the builders with TFDS.

Usage::

  import tensorflow_datasets as tfds
  from tfrs_emb.data import tfds_builders  # noqa: F401  (registers the builders)
  ds = tfds.load("jader_cases", split="train", data_dir="runs/tfds",
                 download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                     manual_dir="path/to/jader_release")})
  # or: b = tfds_builders.JaderCases(data_dir=...); b.download_and_prepare(
  #         download_config=...); b.as_dataset(split="train")

Builders (name: one example = ...):

* ``jader_cases`` (configs ``all``, ``suspected``): a JADER case (latest 報告回数):
  id, report_number, drug / reac / hist element names (without the kind prefix) and the
  latent class of a synthetic release (-1 and "" for a real one).
* ``techblog_posts``: a Hexo / Jekyll markdown post (front matter + headings + body).
* ``covertype_rows`` (configs ``kaggle``: ``train.csv`` [+ unlabelled ``test.csv`` as
  split ``test``]; ``uci``: ``covtype.data[.gz]``): a row with its 10 continuous values,
  wilderness area and soil type ids, and the cover type (-1 when unlabelled).
* ``set_files`` (configs ``baskets``: one set per line, comma-separated, no header;
  ``long``: a table with one (set, element[, order]) row per element; make your own
  ``SetFilesConfig`` for other column names or delimiters): every set file in
  ``manual_dir`` read by ``sets.load_sets``, one example per set.
"""

import dataclasses
import pathlib
from typing import Tuple

import numpy as np
import tensorflow_datasets as tfds

from tfrs_emb.data import covertype, jader, sets, techblog

_TEXTS = tfds.features.Sequence(tfds.features.Text())
_KINDS = ("drug", "reac", "hist")
_SET_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet")


@dataclasses.dataclass
class JaderConfig(tfds.core.BuilderConfig):
  suspected_only: bool = False


class JaderCases(tfds.core.GeneratorBasedBuilder):
  """JADER cases: one example per 識別番号, its elements by kind."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      JaderConfig(name="all", description="Every drug of a case (suspected and concomitant)."),
      JaderConfig(name="suspected", suspected_only=True,
                  description="Only drugs whose 医薬品の関与 is 被疑薬."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download a JADER release from PMDA (a manual download after accepting its terms) and
  put its four CSV files (demo*.csv, drug*.csv, reac*.csv, hist*.csv; Shift_JIS as
  published) in manual_dir. A synthetic release (python -m trainers.make_synthetic_jader)
  also carries latent_classes.csv, read into latent_class.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="Japanese Adverse Drug Event Report cases (PMDA JADER layout).",
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "report_number": np.int64,
            **{kind: _TEXTS for kind in _KINDS},
            "latent_class": np.int64,
            "latent_class_name": tfds.features.Text(),
        }),
        homepage="https://www.pmda.go.jp/",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    return {"train": self._generate_examples(dl_manager.manual_dir)}

  def _generate_examples(self, release_dir):
    cases = jader.load_cases(release_dir, suspected_only=self.builder_config.suspected_only)
    kind_of = np.array([v.split(":", 1)[0] for v in cases.vocab], dtype=object)
    name_of = [v.split(":", 1)[1] for v in cases.vocab]
    for i, case_id in enumerate(cases.ids):
      elems = cases.element_ids(i)
      cls = -1 if cases.latent_class is None else int(cases.latent_class[i])
      yield str(case_id), {
          "id": str(case_id),
          "report_number": int(cases.report_numbers[i]),
          **{kind: [name_of[e] for e in elems[kind_of[elems] == kind]] for kind in _KINDS},
          "latent_class": cls,
          "latent_class_name": cases.latent_class_names[cls] if cls >= 0 else "",
      }


class TechblogPosts(tfds.core.GeneratorBasedBuilder):
  """Hexo / Jekyll blog posts: one example per parsable post (others are skipped)."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the blog's markdown posts (e.g. a Hexo blog's source/_posts, sub-folders allowed)
  in manual_dir. Front matter: title, date, tags/tag, categories/category, lede.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="Markdown blog posts: front matter, headings and body.",
        features=tfds.features.FeaturesDict({
            "post_id": tfds.features.Text(),
            "title": tfds.features.Text(),
            "date": tfds.features.Text(),     # ISO 8601, local time as written
            "tags": _TEXTS,
            "categories": _TEXTS,
            "lede": tfds.features.Text(),
            "headings": _TEXTS,
            "body": tfds.features.Text(),
        }),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    return {"train": self._generate_examples(dl_manager.manual_dir)}

  def _generate_examples(self, posts_dir):
    for p in techblog.load_posts(posts_dir).posts:
      yield p.post_id, {"post_id": p.post_id, "title": p.title, "date": p.date.isoformat(),
                        "tags": list(p.tags), "categories": list(p.categories),
                        "lede": p.lede, "headings": list(p.headings), "body": p.body}


@dataclasses.dataclass
class CovertypeConfig(tfds.core.BuilderConfig):
  files: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()   # (split, candidate file names)


class CovertypeRows(tfds.core.GeneratorBasedBuilder):
  """Forest Cover Type rows (Kaggle or UCI layout, read by ``covertype.load_covertype``)."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      CovertypeConfig(name="kaggle", files=(("train", ("train.csv",)), ("test", ("test.csv",))),
                      description="Kaggle train.csv (labelled) and, when present, test.csv "
                                  "(unlabelled: cover_type -1)."),
      CovertypeConfig(name="uci", files=(("train", ("covtype.data.gz", "covtype.data")),),
                      description="The UCI covtype.data[.gz] file (581,012 labelled rows)."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Config kaggle: put train.csv (and optionally test.csv) of Kaggle's "Forest Cover Type
  Prediction" in manual_dir. Config uci: put covtype.data.gz (or covtype.data) from the
  UCI Machine Learning Repository in manual_dir.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="Forest Cover Type (Blackard and Colorado State University).",
        features=tfds.features.FeaturesDict({
            "row": np.int64,   # 0-based data row of the file
            "continuous": tfds.features.Tensor(
                shape=(len(covertype.CONTINUOUS_COLUMNS),), dtype=np.float32),
            "wilderness_area": tfds.features.ClassLabel(
                num_classes=covertype.CATEGORICAL_CARDINALITIES[0]),
            "soil_type": tfds.features.ClassLabel(
                num_classes=covertype.CATEGORICAL_CARDINALITIES[1]),
            "cover_type": tfds.features.ClassLabel(names=list(covertype.CLASS_NAMES)),
        }),
        homepage="https://archive.ics.uci.edu/dataset/31/covertype",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = pathlib.Path(dl_manager.manual_dir)
    splits = {}
    for split, names in self.builder_config.files:
      found = [root / n for n in names if (root / n).is_file()]
      if found:
        splits[split] = self._generate_examples(found[0])
    if "train" not in splits:
      raise FileNotFoundError(f"{root}: none of {self.builder_config.files[0][1]} found "
                              f"(config {self.builder_config.name!r})")
    return splits

  def _generate_examples(self, path):
    data = covertype.load_covertype(path)
    for i in range(len(data)):
      yield i, {"row": i, "continuous": data.continuous[i],
                "wilderness_area": int(data.categorical[i, 0]),
                "soil_type": int(data.categorical[i, 1]),
                "cover_type": -1 if data.labels is None else int(data.labels[i])}


@dataclasses.dataclass
class SetFilesConfig(tfds.core.BuilderConfig):
  """Arguments of ``sets.load_sets`` for every file of manual_dir."""
  format: str = "baskets"        # baskets | long
  delimiter: str = ","           # baskets element separator
  set_column: str = "set"        # long format columns
  element_column: str = "element"
  order_column: str = ""         # empty: keep the file's row order


class SetFiles(tfds.core.GeneratorBasedBuilder):
  """Sets (baskets, sessions, reports) from files: one example per set of >= 2 elements."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      SetFilesConfig(name="baskets", description="One set per line, comma-separated, "
                     "no header; set_id = file stem:line number (1-based)."),
      SetFilesConfig(name="long", format="long", description="CSV / TSV / Parquet with a "
                     "header and one (set, element[, order]) row per element; set_id = "
                     "file stem:set."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the set files (.csv / .txt / .tsv / .parquet, optionally .gz, UTF-8) in manual_dir.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="Sets of elements as read by tfrs_emb.data.sets.load_sets "
                    "(NFKC-normalised, repeats kept once, sets of < 2 elements skipped).",
        features=tfds.features.FeaturesDict({"set_id": tfds.features.Text(),
                                             "elements": _TEXTS}),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = pathlib.Path(dl_manager.manual_dir)
    paths = sorted(p for p in root.iterdir() if p.is_file() and p.name.lower().removesuffix(
        ".gz").endswith(_SET_SUFFIXES))
    if not paths:
      raise FileNotFoundError(f"{root}: no set files ({', '.join(_SET_SUFFIXES)})")
    return {"train": self._generate_examples(paths)}

  def _generate_examples(self, paths):
    cfg = self.builder_config
    for path in paths:
      corpus = sets.load_sets(path, format=cfg.format, set_column=cfg.set_column,
                              element_column=cfg.element_column,
                              order_column=cfg.order_column or None, delimiter=cfg.delimiter)
      stem = path.name.split(".")[0]
      for i, set_id in enumerate(corpus.set_ids):
        key = f"{stem}:{set_id}"
        yield key, {"set_id": key, "elements": [
            corpus.vocab[e] for e in corpus.indices[corpus.indptr[i]:corpus.indptr[i + 1]]]}
