"""Loader for a directory of Hexo / Jekyll-style markdown blog posts.

A post is a markdown file that starts with a YAML front matter block between two ``---``
lines (``title``, ``date``, ``tags``/``tag``, ``categories``/``category``, ``lede``, ...),
followed by the markdown body. Heading lines (``# ...`` to ``###### ...``) are collected
outside fenced code blocks (````` ``` ````` and ``~~~``), so a ``# comment`` inside a shell
snippet is not mistaken for a heading.

Posts that cannot be parsed are skipped and reported with their path and the reason;
``strict=True`` raises instead. Front matter is read with limits, so no post can make
the load hang or exhaust memory: YAML aliases are refused (an alias chain expands
exponentially), nesting is capped at ``MAX_YAML_DEPTH`` and the block at
``MAX_FRONT_MATTER_CHARS``. Dates stay strings until ``parse_date``, so an impossible
date (2020-02-30) skips its post instead of aborting the load. Tags and categories with
a line break, tab or other control character, and a second file with the same post id
(``x.md`` beside ``x.markdown``), are skipped with their reason.
"""

import dataclasses
import datetime as _dt
import pathlib
import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

import yaml

from tfrs_emb.core.log import Log, no_log

TEXT_VARIANTS = ("title", "title+lede", "title+lede+headings", "body")
POST_SUFFIXES = (".md", ".markdown")

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M",
                 "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
                 "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S %z", "%Y/%m/%d %H:%M:%S %z")
_FILENAME_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})")
_DATE_PREFIX = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
# Line breaks, tabs and other control characters: a tag holding one would break the TSV
# and table rows written from the tag vocabulary.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_YAML_DEPTH = 20
MAX_FRONT_MATTER_CHARS = 100_000


class _FrontMatterLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
  """SafeLoader with limits: no aliases, nesting at most ``MAX_YAML_DEPTH``, and
  timestamps kept as strings (``parse_date`` checks them and names a bad one)."""

  def __init__(self, stream):
    super().__init__(stream)
    self._depth = 0

  def compose_node(self, parent, index):
    if self.check_event(yaml.AliasEvent):
      raise yaml.composer.ComposerError(
          None, None, "aliases (*name) are not accepted: an alias chain can expand "
          "without bound", self.peek_event().start_mark)
    self._depth += 1
    try:
      if self._depth > MAX_YAML_DEPTH:
        raise yaml.composer.ComposerError(
            None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
            self.peek_event().start_mark)
      return super().compose_node(parent, index)
    finally:
      self._depth -= 1


_FrontMatterLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                   yaml.SafeLoader.construct_yaml_str)


class PostParseError(ValueError):
  """A post file that cannot be used; the message names the file and the reason."""

  def __init__(self, path: "str | pathlib.Path", reason: str):
    super().__init__(f"{path}: {reason}")
    self.path = str(path)
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class Post:
  """One blog post.

  Attributes:
    post_id: path relative to the posts directory, without the suffix (``2020/foo``).
    path: the file's path.
    title: front matter ``title``.
    date: publication time (naive, local as written).
    tags: tags in front matter order, duplicates removed.
    categories: categories flattened in order (``first`` is the main category).
    lede: front matter ``lede`` (multi-line values joined with newlines), or "".
    headings: heading texts outside fenced code, in order.
    body: markdown body after the front matter, fenced code removed.
  """
  post_id: str
  path: str
  title: str
  date: _dt.datetime
  tags: Tuple[str, ...]
  categories: Tuple[str, ...]
  lede: str
  headings: Tuple[str, ...]
  body: str

  def text(self, variant: str) -> str:
    """The post's text for one of ``TEXT_VARIANTS``."""
    if variant == "title":
      parts = [self.title]
    elif variant == "title+lede":
      parts = [self.title, self.lede]
    elif variant == "title+lede+headings":
      parts = [self.title, self.lede, *self.headings]
    elif variant == "body":
      parts = [self.body]
    else:
      raise ValueError(f"unknown text variant {variant!r}; expected one of {TEXT_VARIANTS}")
    return "\n".join(p for p in parts if p)

  @property
  def first_category(self) -> str:
    return self.categories[0] if self.categories else ""


@dataclasses.dataclass
class LoadResult:
  """Posts loaded (sorted by date, then id) and the files skipped as (path, reason)."""
  posts: List[Post]
  skipped: List[Tuple[str, str]]

  def summary(self) -> str:
    lines = [f"loaded {len(self.posts)} posts, skipped {len(self.skipped)}"]
    lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
    return "\n".join(lines)


def texts(posts: Sequence[Post], variant: str) -> List[str]:
  """The text of every post for one variant."""
  return [p.text(variant) for p in posts]


def paragraphs(body: str, min_chars: int = 20, max_chars: int = 300) -> List[str]:
  """The prose paragraphs of a post body (blank-line separated blocks; headings, tables,
  quotes, images and HTML blocks dropped; whitespace collapsed), each cut to
  ``max_chars`` characters; blocks shorter than ``min_chars`` are dropped."""
  out = []
  for block in re.split(r"\n[ \t]*\n", body):
    block = block.strip()
    if not block or block[0] in "#|>!<" or _HEADING.match(block):
      continue
    text = " ".join(block.split())
    if len(text) >= min_chars:
      out.append(text[:max_chars])
  return out


def contrastive_views(post: Post, max_paragraphs: int) -> Tuple[str, List[str]]:
  """A post's own text pairs, no tags: the anchor (title + lede) and its positives (all
  headings, one per line; with 4 or more headings also each half of them; then up to
  ``max_paragraphs`` body paragraphs)."""
  heads = post.headings
  groups = [heads] + ([heads[:len(heads) // 2], heads[len(heads) // 2:]]
                      if len(heads) >= 4 else [])
  positives = ["\n".join(g) for g in groups if g]
  return post.text("title+lede"), positives + paragraphs(post.body)[:max_paragraphs]


def _string_list(value: Any, field: str, path: pathlib.Path) -> Tuple[str, ...]:
  """Flattens a YAML tag/category value (str, list, nested list) into unique strings."""
  out: List[str] = []

  def walk(v):
    if v is None:
      return
    if isinstance(v, (list, tuple)):
      for x in v:
        walk(x)
    elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
      s = str(v).strip()
      if _CONTROL.search(s):
        raise PostParseError(path, f"front matter field {field!r} has a value with a line "
                             f"break, tab or other control character: {s!r}")
      if s and s not in out:
        out.append(s)
    else:
      raise PostParseError(path, f"front matter field {field!r} must be a string or a list "
                           f"of strings, got {type(v).__name__}")

  walk(value)
  return tuple(out)


def parse_date(value: Any) -> Optional[_dt.datetime]:
  """Parses a front matter date (YAML datetime/date or one of the blog's string forms)."""
  if isinstance(value, _dt.datetime):
    return value.replace(tzinfo=None)
  if isinstance(value, _dt.date):
    return _dt.datetime(value.year, value.month, value.day)
  if isinstance(value, str):
    s = value.strip()
    for fmt in _DATE_FORMATS:
      try:
        return _dt.datetime.strptime(s, fmt).replace(tzinfo=None)
      except ValueError:
        continue
    try:  # the other ISO 8601 forms YAML knows as timestamps (fractions, Z, offsets)
      return _dt.datetime.fromisoformat(s).replace(tzinfo=None)
    except ValueError:
      pass
  return None


def _date_problem(value: Any) -> str:
  """Why ``parse_date`` rejected ``value``: an impossible date or an unknown form."""
  m = _DATE_PREFIX.match(value.strip()) if isinstance(value, str) else None
  if m:
    try:
      _dt.date(*map(int, m.groups()))
    except ValueError as e:
      return f"not a valid date ({e})"
  return "not in a known form (expected e.g. 2020/01/15 09:25:42 or 2020-01-15)"


def split_front_matter(text: str, path: "str | pathlib.Path") -> Tuple[str, str, int]:
  """Splits ``---`` front matter from the body.

  Returns:
    (front matter YAML text, body text, 1-based line number where the body starts).

  Raises:
    PostParseError: no opening ``---`` on the first line, or no closing ``---``.
  """
  lines = text.splitlines()
  if not lines or lines[0].strip() != "---":
    raise PostParseError(path, "no YAML front matter (expected '---' on line 1)")
  for i in range(1, len(lines)):
    if lines[i].strip() in ("---", "..."):
      return "\n".join(lines[1:i]), "\n".join(lines[i + 1:]), i + 2
  raise PostParseError(path, "front matter opened with '---' on line 1 is never closed")


def headings_and_body(body: str) -> Tuple[Tuple[str, ...], str]:
  """Heading texts outside fenced code, and the body with fenced code blocks removed."""
  heads: List[str] = []
  kept: List[str] = []
  fence: Optional[str] = None
  for line in body.splitlines():
    m = _FENCE.match(line)
    if fence is None and m:
      fence = m.group(1)
      continue
    if fence is not None:
      if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and \
          not line.strip()[len(m.group(1)):].strip():
        fence = None
      continue
    kept.append(line)
    h = _HEADING.match(line)
    if h and h.group(2):
      heads.append(h.group(2))
  return tuple(heads), "\n".join(kept).strip()


def parse_post(path: "str | pathlib.Path", root: "str | pathlib.Path | None" = None) -> Post:
  """Parses one markdown post.

  Args:
    path: the markdown file.
    root: directory the ``post_id`` is made relative to (defaults to the file's folder).

  Raises:
    PostParseError: with the path and reason (undecodable bytes, no/unclosed front matter,
      bad YAML, front matter not a mapping, missing title, missing or unknown date form).
  """
  path = pathlib.Path(path)
  root = pathlib.Path(root) if root is not None else path.parent
  try:
    text = path.read_bytes().decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise PostParseError(path, f"not valid UTF-8 (byte {e.start}: {e.reason})") from None
  fm_text, body, _ = split_front_matter(text, path)
  if len(fm_text) > MAX_FRONT_MATTER_CHARS:
    raise PostParseError(path, f"front matter is {len(fm_text):,d} characters long "
                         f"(limit {MAX_FRONT_MATTER_CHARS:,d})")
  try:
    fm = yaml.load(fm_text, Loader=_FrontMatterLoader) if fm_text.strip() else {}
  except yaml.YAMLError as e:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 2}" if mark is not None else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    raise PostParseError(path, f"bad YAML in front matter{where}: {problem}") from None
  if not isinstance(fm, dict):
    raise PostParseError(path, f"front matter must be a YAML mapping, got {type(fm).__name__}")
  title = fm.get("title")
  if title is None or not str(title).strip():
    raise PostParseError(path, "front matter has no 'title'")
  date = parse_date(fm.get("date"))
  if date is None:
    if fm.get("date") is not None:
      raise PostParseError(path, f"front matter 'date' {fm.get('date')!r} is "
                           f"{_date_problem(fm.get('date'))}")
    m = _FILENAME_DATE.match(path.name)
    if not m:
      raise PostParseError(path, "front matter has no 'date' and the file name does not "
                           "start with YYYYMMDD or YYYY-MM-DD")
    try:
      date = _dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
      raise PostParseError(path, "front matter has no 'date' and the file name's date "
                           f"{m.group(0)!r} is invalid") from None
  tags = _string_list(fm["tags"] if "tags" in fm else fm.get("tag"), "tags", path)
  cats = _string_list(fm["categories"] if "categories" in fm else fm.get("category"),
                      "categories", path)
  lede = fm.get("lede") or ""
  if not isinstance(lede, str):
    lede = str(lede)
  heads, clean_body = headings_and_body(body)
  rel = path.relative_to(root) if path.is_relative_to(root) else pathlib.Path(path.name)
  post_id = rel.with_suffix("").as_posix()
  return Post(post_id=post_id, path=str(path), title=str(title).strip(), date=date,
              tags=tags, categories=cats, lede=lede.strip(), headings=heads,
              body=clean_body)


def load_posts(posts_dir: "str | pathlib.Path", strict: bool = False,
               log: Log = no_log) -> LoadResult:
  """Loads every ``*.md`` / ``*.markdown`` file under ``posts_dir`` (recursively).

  Args:
    posts_dir: e.g. a Hexo blog's ``source/_posts``.
    strict: raise ``PostParseError`` on the first bad post instead of skipping it.
    log: called with the loaded/skipped counts and each skipped file with its reason
      (None: silent).

  Returns:
    LoadResult with posts sorted by (date, post_id) and the skipped (path, reason) pairs.

  Raises:
    FileNotFoundError: ``posts_dir`` is not a directory or holds no post file.
    PostParseError: with ``strict``, for the first bad post.
  """
  posts_dir = pathlib.Path(posts_dir)
  if not posts_dir.is_dir():
    raise FileNotFoundError(f"posts directory {posts_dir} does not exist or is not a folder")
  posts, skipped = [], []
  files = sorted(p for p in posts_dir.rglob("*")
                 if p.is_file() and p.suffix.lower() in POST_SUFFIXES)
  if not files:
    raise FileNotFoundError(f"posts directory {posts_dir} has no post file (*.md or "
                            "*.markdown, searched recursively)")
  seen = {}  # post id -> file it was loaded from
  for f in files:
    try:
      post = parse_post(f, posts_dir)
      if post.post_id in seen:
        raise PostParseError(f, f"duplicate post id {post.post_id!r}: already loaded "
                             f"from {seen[post.post_id]}")
      seen[post.post_id] = f
      posts.append(post)
    except PostParseError as e:
      if strict:
        raise
      skipped.append((e.path, e.reason))
  posts.sort(key=lambda p: (p.date, p.post_id))
  result = LoadResult(posts, skipped)
  log(result.summary())
  return result
