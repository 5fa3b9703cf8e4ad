"""Post loader on hostile or malformed posts: each skipped with its true reason (or
raised with --strict), never a hang, a raw traceback or an aborted load (issue #13)."""

import datetime as dt
import time

import pytest

from tests.data.test_techblog import GOOD, _write
from tfrs_emb.data import techblog as tb


def _post(front_matter: str) -> str:
  return f"---\n{front_matter}\n---\n# 見出し\n"


BILLION_LAUGHS = "\n".join(
    ["title: x", "date: 2020-01-15", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)])

BAD = {
    "laughs.md": (_post(BILLION_LAUGHS),
                  "bad YAML in front matter at line 5: aliases (*name) are not "
                  "accepted: an alias chain can expand without bound"),
    "merge.md": (_post("base: &b {x: 1}\ntitle: t\ndate: 2020-01-15\n<<: *b"),
                 "aliases (*name) are not accepted"),
    "deep.md": (_post("title: t\ndate: 2020-01-15\nx: " + "[" * 5000 + "]" * 5000),
                "bad YAML in front matter at line 4: nested deeper than 20 "
                "levels"),
    "deepblock.md": (_post("title: t\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(40))),
                     "nested deeper than 20 levels"),
    "feb30.md": (_post("title: t\ndate: 2020-02-30"),
                 "front matter 'date' '2020-02-30' is not a valid date (day is out of range "
                 "for month)"),
    "month13.md": (_post("title: t\ndate: 2020/13/01 10:00:00"),
                   "front matter 'date' '2020/13/01 10:00:00' is not a valid date (month must "
                   "be in 1..12)"),
    "tagged.md": (_post("title: t\ndate: !!timestamp 2020-02-30"),
                  "front matter 'date' '2020-02-30' is not a valid date"),
    "huge.md": (_post("title: t\nlede: " + "x" * 200_000),
                "front matter is 200,015 characters long (limit 100,000)"),
    "tabtag.md": (_post('title: t\ndate: 2020-01-15\ntags: ["a\\tb", ok]'),
                  "front matter field 'tags' has a value with a line break, tab or other "
                  "control character: 'a\\tb'"),
    "newlinecat.md": (_post('title: t\ndate: 2020-01-15\ncategories: "x\\ny"'),
                      "front matter field 'categories' has a value with a line break"),
    "latin1.md": (GOOD.replace("テスト", "caf\xe9").encode("latin-1", "replace"),
                  "not valid UTF-8"),
    "empty.md": ("", "no YAML front matter (expected '---' on line 1)"),
}


def test_hostile_posts_are_skipped_with_their_reason_and_the_rest_loads(tmp_path):
  _write(tmp_path, "good.md", GOOD)
  for name, (text, _) in BAD.items():
    _write(tmp_path, name, text)
  t0 = time.perf_counter()
  result = tb.load_posts(tmp_path, verbose=False)
  assert time.perf_counter() - t0 < 5.0          # no alias expansion, no deep recursion
  assert [p.post_id for p in result.posts] == ["good"]
  reasons = {p.rsplit("/", 1)[-1]: r for p, r in result.skipped}
  assert set(reasons) == set(BAD)
  for name, (_, expected) in BAD.items():
    assert expected in reasons[name], (name, reasons[name])


def test_same_post_id_from_two_suffixes_is_skipped_naming_the_first(tmp_path):
  _write(tmp_path, "x.md", GOOD)
  _write(tmp_path, "x.markdown", GOOD.replace("Goで始めるテスト", "別の記事"))
  result = tb.load_posts(tmp_path, verbose=False)
  assert [p.title for p in result.posts] == ["別の記事"]   # x.markdown sorts first
  ((path, reason),) = result.skipped
  assert path.endswith("x.md")
  assert reason == f"duplicate post id 'x': already loaded from {tmp_path / 'x.markdown'}"
  with pytest.raises(tb.PostParseError, match=r"x\.md: duplicate post id 'x'"):
    tb.load_posts(tmp_path, strict=True, verbose=False)


@pytest.mark.parametrize("written,expected", [
    ("2020-01-15", dt.datetime(2020, 1, 15)),
    ("2020-01-15 09:25:42.5", dt.datetime(2020, 1, 15, 9, 25, 42, 500000)),
    ("2020-01-15T09:25:42Z", dt.datetime(2020, 1, 15, 9, 25, 42)),
    ("2020-01-15T09:25:42+09:00", dt.datetime(2020, 1, 15, 9, 25, 42)),
    ('"2020/01/15 09:25:42"', dt.datetime(2020, 1, 15, 9, 25, 42)),
])
def test_yaml_timestamp_forms_still_parse_as_strings(tmp_path, written, expected):
  post = tb.parse_post(_write(tmp_path, "p.md", _post(f"title: t\ndate: {written}")))
  assert post.date == expected


def test_folder_without_post_files_is_an_error(tmp_path):
  _write(tmp_path, "notes.txt", GOOD)
  with pytest.raises(FileNotFoundError, match=r"has no post file \(\*\.md or \*\.markdown, "
                                              r"searched recursively\)"):
    tb.load_posts(tmp_path, verbose=False)
