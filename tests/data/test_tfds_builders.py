"""TFDS builders prepare from manual_dir only (no network) and agree with our loaders."""

import gzip
import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfrs_emb.data import covertype, jader, sets, synthetic_jader, techblog, tfds_builders
from tfrs_emb.data.synthetic_jader_tables import class_names


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
  """Any attempt of TFDS to download fails the test."""
  def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args}")
  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)


def _prepare(builder, manual_dir, split="train"):
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return list(tfds.as_numpy(builder.as_dataset(split=split)))


def _texts(values):
  return [v.decode("utf-8") for v in values]


def test_jader_cases_match_the_loader(tmp_path):
  release = tmp_path / "release"
  synthetic_jader.write_release(release, 60, seed=3)
  cases = jader.load_cases(release)
  expected = {str(cases.ids[i]): cases.elements(i) for i in range(len(cases))}

  examples = _prepare(tfds_builders.JaderCases(data_dir=str(tmp_path / "tfds")), release)
  assert len(examples) == len(cases) == 60
  names = class_names()
  for ex in examples:
    case_id = ex["id"].decode()
    got = sorted(f"{kind}:{n}" for kind in ("drug", "reac", "hist")
                 for n in _texts(ex[kind]))
    assert got == sorted(expected[case_id]), case_id
    i = list(cases.ids).index(case_id)
    assert ex["latent_class"] == cases.latent_class[i]
    assert ex["latent_class_name"].decode() == names[ex["latent_class"]]
    assert ex["report_number"] == cases.report_numbers[i]

  suspected = _prepare(tfds_builders.JaderCases(config="suspected",
                                                data_dir=str(tmp_path / "tfds")), release)
  drugs_all = {ex["id"]: set(ex["drug"]) for ex in examples}
  assert all(set(ex["drug"]) <= drugs_all[ex["id"]] for ex in suspected)
  assert sum(map(len, (ex["drug"] for ex in suspected))) < sum(map(len, drugs_all.values()))


def test_jader_without_manual_files_names_the_folder(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(Exception, match="demo"):
    _prepare(tfds_builders.JaderCases(data_dir=str(tmp_path / "tfds")), tmp_path / "empty")


def test_techblog_posts_by_name_with_tfds_load(shared_data, tmp_path):
  posts_dir = shared_data / "techblog" / "posts"
  ds = tfds.load("techblog_posts", split="train", data_dir=str(tmp_path / "tfds"),
                 download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                     manual_dir=str(posts_dir))})
  got = {ex["post_id"].decode(): ex for ex in tfds.as_numpy(ds)}
  posts = techblog.load_posts(posts_dir).posts
  assert len(got) == len(posts) == 100
  assert len({t for ex in got.values() for t in _texts(ex["tags"])}) == 166
  for p in posts:
    ex = got[p.post_id]
    assert ex["title"].decode() == p.title
    assert tuple(_texts(ex["tags"])) == p.tags
    assert tuple(_texts(ex["headings"])) == p.headings
    assert ex["date"].decode() == p.date.isoformat()


def _covertype_rows(n, seed):
  """n valid rows: 10 integers, one-hot wilderness (4) and soil (40), label 1..7."""
  rng = np.random.default_rng(seed)
  rows = []
  for _ in range(n):
    cont = rng.integers(0, 3000, 10)
    wild, soil = np.eye(4, dtype=int)[rng.integers(4)], np.eye(40, dtype=int)[rng.integers(40)]
    rows.append([*cont, *wild, *soil, rng.integers(1, 8)])
  return np.array(rows)


def test_covertype_kaggle_with_unlabelled_test_and_uci(tmp_path):
  kaggle, uci = tmp_path / "kaggle", tmp_path / "uci"
  kaggle.mkdir()
  uci.mkdir()
  header = ",".join(covertype.FEATURE_COLUMNS)
  train, test, full = _covertype_rows(5, 0), _covertype_rows(3, 1), _covertype_rows(4, 2)
  (kaggle / "train.csv").write_text(f"Id,{header},Cover_Type\n" + "".join(
      f"{i + 1}," + ",".join(map(str, r)) + "\n" for i, r in enumerate(train)))
  (kaggle / "test.csv").write_text(f"Id,{header}\n" + "".join(
      f"{i + 6}," + ",".join(map(str, r[:-1])) + "\n" for i, r in enumerate(test)))
  with gzip.open(uci / "covtype.data.gz", "wt") as f:
    f.write("".join(",".join(map(str, r)) + "\n" for r in full))

  data_dir = str(tmp_path / "tfds")
  builder = tfds_builders.CovertypeRows(config="kaggle", data_dir=data_dir)
  for split, rows, labelled in (("train", train, True), ("test", test, False)):
    examples = sorted(_prepare(builder, kaggle, split), key=lambda ex: ex["row"])
    assert len(examples) == len(rows)
    for ex, r in zip(examples, rows):
      np.testing.assert_array_equal(ex["continuous"], r[:10])
      assert ex["wilderness_area"] == np.argmax(r[10:14])
      assert ex["soil_type"] == np.argmax(r[14:54])
      assert ex["cover_type"] == (r[54] - 1 if labelled else -1)
  examples = sorted(_prepare(tfds_builders.CovertypeRows(config="uci", data_dir=data_dir), uci),
                    key=lambda ex: ex["row"])
  assert [int(ex["cover_type"]) for ex in examples] == list(full[:, 54] - 1)
  with pytest.raises(Exception, match="covtype.data"):
    _prepare(tfds_builders.CovertypeRows(config="uci", data_dir=str(tmp_path / "other")),
             kaggle)


def test_covertype_real_train_csv(shared_data, tmp_path):
  examples = _prepare(tfds_builders.CovertypeRows(config="kaggle",
                                                  data_dir=str(tmp_path / "tfds")),
                      shared_data / "covertype")
  labels = np.array([ex["cover_type"] for ex in examples])
  assert len(examples) == 15_120
  np.testing.assert_array_equal(np.bincount(labels), [2_160] * 7)


def test_set_files_baskets_and_long(tmp_path):
  baskets, long = tmp_path / "baskets", tmp_path / "long"
  baskets.mkdir()
  long.mkdir()
  (baskets / "shop.csv").write_text("whole milk, rolls/buns,whole milk\n\nＵＨＴ-milk,yogurt\n"
                                    "alone\n")
  with gzip.open(baskets / "more.txt.gz", "wt", encoding="utf-8") as f:
    f.write("a,b\n")
  (long / "events.csv").write_text("set,element,order\ns1,x,3\ns2,y,1\ns1,z,1\ns1,x,2\n"
                                   "s2,w,0\n")
  data_dir = str(tmp_path / "tfds")
  got = {ex["set_id"].decode(): _texts(ex["elements"]) for ex in _prepare(
      tfds_builders.SetFiles(config="baskets", data_dir=data_dir), baskets)}
  # Line 4 has one element: no context, skipped as sets.load_sets does.
  assert got == {"shop:1": ["whole milk", "rolls/buns"], "shop:3": ["UHT-milk", "yogurt"],
                 "more:1": ["a", "b"]}
  cfg = tfds_builders.SetFilesConfig(name="ordered", format="long", order_column="order")
  got = {ex["set_id"].decode(): _texts(ex["elements"]) for ex in _prepare(
      tfds_builders.SetFiles(config=cfg, data_dir=data_dir), long)}
  assert got == {"events:s1": ["z", "x"], "events:s2": ["w", "y"]}


def test_set_files_real_groceries(shared_data, tmp_path):
  path = shared_data / "sets" / "groceries.csv"
  corpus = sets.load_sets(path)
  examples = _prepare(tfds_builders.SetFiles(config="baskets", data_dir=str(tmp_path / "tfds")),
                      path.parent)
  got = {ex["set_id"].decode(): _texts(ex["elements"]) for ex in examples}
  assert len(got) == len(corpus) > 7_000   # 9,835 baskets, the one-item ones skipped
  for i in (0, len(corpus) - 1):
    assert got[f"groceries:{corpus.set_ids[i]}"] == [
        corpus.vocab[e] for e in corpus.indices[corpus.indptr[i]:corpus.indptr[i + 1]]]
