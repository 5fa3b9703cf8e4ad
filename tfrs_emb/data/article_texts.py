"""Article-like texts (titles, ledes, headings; Japanese and English) for encoder checks.

Used by the encoder benchmark, the encoder tests and the export check: real tech-blog posts
when ``../shared/data/techblog`` is present, otherwise a deterministic generator built
from a few sample articles, so nothing here needs data at run time.
"""

import dataclasses
import random
from typing import List, Sequence, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class ArticleParts:
  """The parts of an article that the article tower reads."""
  title: str
  lede: str
  headings: Tuple[str, ...]

  def text(self) -> str:
    """title + lede + headings, one per line (the tower's input)."""
    return "\n".join(p for p in (self.title, self.lede, *self.headings) if p)


SAMPLE_ARTICLES = (
    ArticleParts("打鍵テストをCIで回す：Cypress on GitHub Actions",
                 "つらい打鍵テストをCIで回して、テスト結果をWebダッシュボードで共有しようというお話です。",
                 ("マイクロサービスのテストが打鍵になりがち問題", "Cypressの書き方", "まとめ")),
    ArticleParts("Go言語でAWS Lambdaを書くときのTips",
                 "Serverless な構成で Go を使うときにハマったポイントと、その回避策を紹介します。",
                 ("はじめに", "コールドスタート対策", "エラーハンドリング", "おわりに")),
    ArticleParts("Terraform で GCP の IAM を管理する",
                 "IAM の権限設計と Terraform のモジュール分割について、実案件での学びをまとめました。",
                 ("背景", "モジュール構成", "plan の差分レビュー", "まとめ")),
    ArticleParts("Vue.js最初の難関、「props down, event up」を初心者にわかるように解説してみた",
                 "親子コンポーネント間のデータの受け渡しを図解で説明します。",
                 ("propsとは", "emitとは", "よくある間違い")),
    ArticleParts("Introduction to Apache Kafka Streams",
                 "A hands-on tour of stream processing with Kafka Streams, from topology to testing.",
                 ("Why streams?", "Stateful operations", "Testing topologies", "Conclusion")),
    ArticleParts("機械学習モデルをTensorFlow Servingでデプロイする",
                 "学習済みのSavedModelをDockerで動かし、REST APIで推論するまでの手順です。",
                 ("SavedModelの書き出し", "Dockerでの起動", "RESTでのリクエスト", "性能測定")),
    ArticleParts("Building a design system with Storybook",
                 "How our team keeps UI components consistent across five products.",
                 ("Tokens first", "Visual regression tests", "Lessons learned")),
    ArticleParts("PostgreSQLのパーティショニング入門",
                 "大きなテーブルを月単位に分割して、クエリとメンテナンスを速くする方法を解説します。",
                 ("宣言的パーティショニング", "インデックスの扱い", "運用上の注意")),
    ArticleParts("スクラム開発で見積もりをうまくやるには",
                 "ストーリーポイントとベロシティの使い方について、チームで試したことを共有します。",
                 ("見積もりの目的", "プランニングポーカー", "振り返り")),
    ArticleParts("Rust で CLI ツールを作る",
                 "clap と serde を使って、設定ファイルを読む小さな CLI を作りながら Rust の基本を学びます。",
                 ("プロジェクトの作成", "引数のパース", "エラー処理", "配布")),
    ArticleParts("Securing a REST API with OAuth 2.0 and OpenID Connect",
                 "Tokens, scopes and the authorization code flow explained with a working example.",
                 ("Roles in OAuth", "PKCE", "Validating ID tokens")),
    ArticleParts("自然言語処理で技術ブログのタグを推薦する",
                 "文埋め込みを使って、記事に付けるべきタグを自動で提案する仕組みを作りました。",
                 ("Universal Sentence Encoder", "タグの埋め込み", "評価", "今後の課題")),
)

def parts_of_posts(posts) -> List[ArticleParts]:
  """Title, lede and headings of ``tfrs_emb.data.techblog.Post`` objects."""
  return [ArticleParts(p.title, p.lede, tuple(p.headings)) for p in posts]


def mixed_article_texts(parts: Sequence[ArticleParts], n: int, seed: int = 0) -> List[str]:
  """``n`` article texts of realistic mixed length from ``parts``.

  First every real piece: each title, lede, title + lede, full article text and
  heading; then, until ``n``, recombined articles (the title of one, the lede of
  another, a random run of headings), deterministically from ``seed``.

  Args:
    parts: the articles to draw from (e.g. ``parts_of_posts`` of the tech-blog
      posts, or ``SAMPLE_ARTICLES``); at least one.
    n: number of texts.
    seed: random seed of the recombination.

  Returns:
    ``n`` strings.
  """
  if not parts:
    raise ValueError("mixed_article_texts needs at least one article")
  texts = []
  for p in parts:
    texts += [p.title, p.lede, f"{p.title}\n{p.lede}", p.text(), *p.headings]
  texts = [t for t in texts if t]
  rng = random.Random(seed)
  headings = [h for p in parts for h in p.headings] or ["まとめ"]
  while len(texts) < n:
    a, b = rng.choice(parts), rng.choice(parts)
    k = rng.randint(0, min(12, len(headings)))
    start = rng.randrange(len(headings))
    run = [headings[(start + i) % len(headings)] for i in range(k)]
    texts.append(ArticleParts(a.title, b.lede, tuple(run)).text())
  return texts[:n]


def replicated_texts(parts: Sequence[ArticleParts], n: int, seed: int = 0) -> List[str]:
  """``n`` article texts that keep the length distribution of ``parts`` (timing at a
  larger blog size).

  Copy 0 is each article's own text; later copies keep an article's title and lede and
  take the headings of another article in a shuffled order, so texts differ (no caching
  can help) but stay as long as real ones.
  """
  if not parts:
    raise ValueError("replicated_texts needs at least one article")
  rng = np.random.default_rng(seed)
  out = []
  for j in range(n):
    p = parts[j % len(parts)]
    if j < len(parts):
      out.append(p.text())
      continue
    heads = list(parts[int(rng.integers(len(parts)))].headings)
    rng.shuffle(heads)
    out.append(ArticleParts(p.title, p.lede, tuple(heads)).text())
  return out
