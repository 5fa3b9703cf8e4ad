"""Synthetic JADER releases: the four PMDA CSV files with a latent clinical structure.

Real JADER (PMDA's Japanese Adverse Drug Event Report database) is a manual download, so
tests and demos use a generated release written in exactly the real layout (column
names, cp932 encoding, one row per drug / event / disease, several 報告回数 per case).

Usage::

  from tfrs_emb.data import synthetic_jader
  info = synthetic_jader.write_release("runs/jader_syn", num_cases=20_000, seed=0)
  # -> demo*.csv, drug*.csv, reac*.csv, hist*.csv (cp932) + latent_classes.csv (utf-8)

or ``python -m trainers.make_synthetic_jader --cases=692821 --out=DIR --seed=0``.

Latent structure (what a clinician would recognise):
  * therapeutic classes (statins, ARBs, kinase inhibitors, ...) each own drugs named with
    their INN stem (…スタチン, …サルタン, …チニブ), indications (hist, 原疾患等) and
    class-typical adverse events (横紋筋融解症 for statins, 間質性肺疾患 for kinase
    inhibitors, ...);
  * Zipf-like popularity of classes and of drugs within a class;
  * polypharmacy: a case has a primary class (its 被疑薬) and 0-3 concomitant classes;
  * noise: general adverse events and comorbidities from a long Zipf tail, random
    concomitant drugs;
  * name variants: half-width katakana, full-width ASCII, stray spaces (NFKC + strip in
    the loader folds them), and follow-up reports (報告回数 2, 3) that supersede the first.

The side file ``latent_classes.csv`` (識別番号, primary_class, classes) records the ground
truth: ``primary_class`` is the class of the case's suspected drugs.
Memory is bounded by ``chunk_cases`` (cases generated and written per step).
"""

import dataclasses
import numbers
import os
import pathlib
import time
import unicodedata
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tfrs_emb.core.log import Log, no_log

DEMO_COLUMNS = ["識別番号", "報告回数", "性別", "年齢", "体重", "身長", "報告年度・四半期",
                "状況", "報告の種類", "報告者の資格", "E2B"]
DRUG_COLUMNS = ["識別番号", "報告回数", "医薬品連番", "医薬品の関与", "医薬品（一般名）",
                "医薬品（販売名）", "投与経路", "投与開始日", "投与終了日", "投与量", "投与単位",
                "分割投与回数", "使用理由", "医薬品の処置", "再投与による再発の有無", "リスク区分等"]
REAC_COLUMNS = ["識別番号", "報告回数", "有害事象連番", "有害事象", "転帰", "有害事象の発現日"]
HIST_COLUMNS = ["識別番号", "報告回数", "患者情報連番", "原疾患等"]
LATENT_FILE = "latent_classes.csv"

# (class name, INN-like stem, real example drugs, indications, class-typical events)
_CLASSES = [
    ("HMG-CoA還元酵素阻害薬", "スタチン", ["アトルバスタチン", "ロスバスタチン", "プラバスタチン"],
     ["脂質異常症", "高コレステロール血症"], ["横紋筋融解症", "筋肉痛", "CK増加", "肝機能異常"]),
    ("アンジオテンシンII受容体拮抗薬", "サルタン", ["カンデサルタン", "オルメサルタン", "テルミサルタン"],
     ["高血圧", "慢性心不全"], ["高カリウム血症", "血管浮腫", "腎機能障害", "低血圧"]),
    ("ACE阻害薬", "プリル", ["エナラプリル", "イミダプリル"],
     ["高血圧", "糖尿病性腎症"], ["咳嗽", "血管浮腫", "高カリウム血症"]),
    ("β遮断薬", "オロール", ["ビソプロロール", "カルベジロール"],
     ["高血圧", "心房細動", "狭心症"], ["徐脈", "房室ブロック", "心不全"]),
    ("カルシウム拮抗薬", "ジピン", ["アムロジピン", "ニフェジピン"],
     ["高血圧", "狭心症"], ["末梢性浮腫", "歯肉増殖", "低血圧"]),
    ("直接経口抗凝固薬", "キサバン", ["アピキサバン", "エドキサバン", "リバーロキサバン"],
     ["心房細動", "深部静脈血栓症"], ["消化管出血", "脳出血", "血尿", "貧血"]),
    ("DPP-4阻害薬", "グリプチン", ["シタグリプチン", "リナグリプチン"],
     ["2型糖尿病"], ["類天疱瘡", "低血糖", "急性膵炎"]),
    ("SGLT2阻害薬", "グリフロジン", ["エンパグリフロジン", "ダパグリフロジン"],
     ["2型糖尿病", "慢性心不全"], ["ケトアシドーシス", "脱水", "尿路感染", "性器感染"]),
    ("スルホニルウレア", "グリミド", ["グリメピリド", "グリクラジド"],
     ["2型糖尿病"], ["低血糖", "意識消失", "体重増加"]),
    ("プロトンポンプ阻害薬", "プラゾール", ["ランソプラゾール", "エソメプラゾール"],
     ["逆流性食道炎", "胃潰瘍"], ["低マグネシウム血症", "間質性腎炎", "偽膜性大腸炎"]),
    ("非ステロイド性抗炎症薬", "プロフェン", ["ロキソプロフェン", "イブプロフェン"],
     ["関節痛", "腰痛症", "関節リウマチ"], ["胃潰瘍", "急性腎障害", "喘息発作"]),
    ("副腎皮質ステロイド", "ゾロン", ["プレドニゾロン", "メチルプレドニゾロン"],
     ["関節リウマチ", "ネフローゼ症候群", "間質性肺疾患"],
     ["高血糖", "骨粗鬆症", "ニューモシスチス肺炎", "大腿骨頭壊死"]),
    ("ビスホスホネート", "ドロン酸", ["アレンドロン酸", "ゾレドロン酸"],
     ["骨粗鬆症", "骨転移"], ["顎骨壊死", "非定型大腿骨骨折", "低カルシウム血症"]),
    ("チロシンキナーゼ阻害薬", "チニブ", ["ゲフィチニブ", "オシメルチニブ", "イマチニブ"],
     ["非小細胞肺癌", "慢性骨髄性白血病"], ["間質性肺疾患", "下痢", "ざ瘡様皮膚炎", "肝機能異常"]),
    ("免疫チェックポイント阻害薬", "マブ", ["ニボルマブ", "ペムブロリズマブ"],
     ["非小細胞肺癌", "悪性黒色腫", "腎細胞癌"],
     ["間質性肺疾患", "甲状腺機能低下症", "大腸炎", "1型糖尿病", "重症筋無力症"]),
    ("白金製剤", "プラチン", ["シスプラチン", "カルボプラチン", "オキサリプラチン"],
     ["非小細胞肺癌", "胃癌", "大腸癌"], ["好中球減少症", "急性腎障害", "末梢性ニューロパチー", "悪心"]),
    ("タキサン", "タキセル", ["パクリタキセル", "ドセタキセル"],
     ["乳癌", "非小細胞肺癌"], ["発熱性好中球減少症", "末梢性ニューロパチー", "脱毛症"]),
    ("フルオロキノロン", "フロキサシン", ["レボフロキサシン", "シプロフロキサシン"],
     ["肺炎", "尿路感染"], ["腱断裂", "QT延長", "痙攣", "低血糖"]),
    ("セフェム系抗菌薬", "セフ", ["セフトリアキソン", "セファゾリン"],
     ["肺炎", "蜂巣炎"], ["偽膜性大腸炎", "薬疹", "アナフィラキシーショック"]),
    ("ベンゾジアゼピン", "ゼパム", ["ジアゼパム", "ロラゼパム"],
     ["不安障害", "不眠症"], ["傾眠", "転倒", "依存"]),
    ("非定型抗精神病薬", "ペリドン", ["リスペリドン", "パリペリドン"],
     ["統合失調症", "双極性障害"], ["悪性症候群", "錐体外路障害", "高プロラクチン血症", "体重増加"]),
    ("SSRI", "キセチン", ["フルオキセチン", "パロキセチン"],
     ["うつ病", "パニック障害"], ["セロトニン症候群", "低ナトリウム血症", "自殺念慮"]),
    ("抗てんかん薬", "トリギン", ["ラモトリギン"],
     ["てんかん", "双極性障害"], ["スティーブンス・ジョンソン症候群", "中毒性表皮壊死融解症", "薬疹"]),
    ("抗ウイルス薬", "ビル", ["ソホスブビル", "オセルタミビル"],
     ["C型肝炎", "インフルエンザ"], ["異常行動", "貧血", "頭痛"]),
    ("アゾール系抗真菌薬", "コナゾール", ["ボリコナゾール", "フルコナゾール"],
     ["真菌感染", "深在性真菌症"], ["視覚障害", "肝機能異常", "QT延長"]),
    ("TNF阻害薬", "リムマブ", ["アダリムマブ", "インフリキシマブ"],
     ["関節リウマチ", "クローン病", "潰瘍性大腸炎"], ["結核", "ニューモシスチス肺炎", "敗血症"]),
    ("オピオイド", "モルフォン", ["ヒドロモルフォン", "オキシモルフォン"],
     ["癌性疼痛"], ["便秘", "呼吸抑制", "傾眠", "せん妄"]),
    ("免疫抑制薬", "リムス", ["タクロリムス", "エベロリムス"],
     ["腎移植", "ループス腎炎"], ["腎機能障害", "高血糖", "サイトメガロウイルス感染"]),
    ("抗甲状腺薬", "チアマゾール類", ["チアマゾール", "プロピルチオウラシル"],
     ["バセドウ病"], ["無顆粒球症", "肝機能異常", "ANCA関連血管炎"]),
    ("抗血小板薬", "グレル", ["クロピドグレル", "プラスグレル"],
     ["狭心症", "脳梗塞"], ["消化管出血", "血栓性血小板減少性紫斑病", "皮下出血"]),
]

_GENERAL_EVENTS = ["肝機能異常", "薬疹", "発熱", "悪心", "嘔吐", "下痢", "発疹", "そう痒症",
                   "頭痛", "浮動性めまい", "倦怠感", "食欲減退", "呼吸困難", "血小板減少症",
                   "アナフィラキシー反応", "意識レベルの低下", "死亡", "状態悪化", "肺炎",
                   "急性腎障害", "間質性肺疾患", "汎血球減少症", "低ナトリウム血症", "敗血症"]
_ORGANS = ["肝", "腎", "肺", "心", "脳", "膵", "胃", "腸", "皮膚", "眼", "耳", "骨", "筋",
           "血管", "神経", "甲状腺", "副腎", "膀胱", "食道", "口腔", "関節", "リンパ節",
           "脊髄", "末梢神経", "網膜", "気管支", "胆管", "胆嚢", "子宮", "前立腺"]
_FINDINGS = ["障害", "炎", "出血", "梗塞", "浮腫", "腫瘤", "機能低下", "機能亢進", "壊死",
             "線維症", "萎縮", "潰瘍", "穿孔", "感染", "疼痛", "嚢胞", "結石", "不全",
             "狭窄", "拡張", "肥大", "新生物", "硬化", "変性", "膿瘍"]
_COMORBIDITIES = ["高血圧", "2型糖尿病", "脂質異常症", "慢性腎臓病", "心房細動", "骨粗鬆症",
                  "逆流性食道炎", "不眠症", "便秘", "認知症", "慢性閉塞性肺疾患", "喘息",
                  "高尿酸血症", "前立腺肥大症", "うつ病", "貧血", "肥満", "甲状腺機能低下症"]
_KANA = list("アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモ"
             "ヤユヨラリルレロワガギグゲゴザジズゼゾダデドバビブベボパピプペポ")
_KANA_TAIL = ["ン", "ル", "ト", "ド", "ロ", "リ", "キ", "ジ", "ノ", "ミ"]
_NON_CLASS = "その他"


def _half_width_table() -> Dict[str, str]:
  """Maps full-width katakana (and voiced forms) to their half-width spelling."""
  table = {}
  halves = [chr(c) for c in range(0xFF66, 0xFF9E)]
  for h in halves:
    full = unicodedata.normalize("NFKC", h)
    if len(full) == 1:
      table.setdefault(full, h)
    for mark in ("\uff9e", "\uff9f"):
      voiced = unicodedata.normalize("NFKC", h + mark)
      if len(voiced) == 1:
        table.setdefault(voiced, h + mark)
  table["ー"] = "\uff70"
  return table


_HALF = _half_width_table()


def _variant(name: str, rng: np.random.Generator) -> str:
  """A spelling of ``name`` that NFKC + strip folds back (half-width kana, ASCII, spaces)."""
  choice = rng.integers(3)
  if choice == 0 and any(ch in _HALF for ch in name):
    return "".join(_HALF.get(ch, ch) for ch in name)
  if choice == 1 and any("!" <= ch <= "~" for ch in name):
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in name)
  return (" " if rng.random() < 0.5 else "") + name + " "


@dataclasses.dataclass
class Vocabulary:
  """The generator's element universe (canonical NFKC names) and its class structure."""
  class_names: List[str]
  drugs: List[str]                 # canonical generic names
  drug_class: np.ndarray           # int [num_drugs]
  class_drugs: List[np.ndarray]    # per class: drug indices, most popular first
  class_events: List[List[str]]    # per class: typical adverse events
  class_hist: List[List[str]]      # per class: indications
  tail_events: List[str]           # long-tail noise events, most frequent first
  tail_hist: List[str]             # long-tail comorbidities, most frequent first


def build_vocabulary(seed: int = 0, drugs_per_class: int = 60) -> Vocabulary:
  """Builds the class → drugs / indications / events universe (deterministic in seed).

  With the defaults: 30 classes, 1,800 drugs, ~780 tail events, ~450 comorbidities.
  """
  rng = np.random.default_rng(seed + 7919)
  seen = set()
  drugs, drug_class, class_drugs = [], [], []
  for c, (_, stem, real, _, _) in enumerate(_CLASSES):
    names = [n for n in real if n not in seen]
    seen.update(names)
    while len(names) < drugs_per_class:
      k = rng.integers(2, 4)
      pre = "".join(rng.choice(_KANA, size=k)) + rng.choice(_KANA_TAIL)
      name = unicodedata.normalize("NFKC", stem + pre if stem.startswith("セフ") else pre + stem)
      if name not in seen:
        seen.add(name)
        names.append(name)
    idx = np.arange(len(drugs), len(drugs) + len(names))
    drugs.extend(names)
    drug_class.extend([c] * len(names))
    class_drugs.append(idx)
  combos = [o + f for o in _ORGANS for f in _FINDINGS]
  rng.shuffle(combos)
  tail_events = list(dict.fromkeys(_GENERAL_EVENTS + combos))
  tail_hist = list(dict.fromkeys(_COMORBIDITIES + [o + f for o in _ORGANS[:18]
                                                   for f in _FINDINGS]))
  for name in drugs + tail_events + tail_hist:
    if "," in name or '"' in name:
      raise ValueError(f"generator vocabulary name needs CSV quoting: {name!r}")
  return Vocabulary(
      class_names=[c[0] for c in _CLASSES], drugs=drugs, drug_class=np.asarray(drug_class),
      class_drugs=class_drugs, class_events=[list(c[4]) for c in _CLASSES],
      class_hist=[list(c[3]) for c in _CLASSES], tail_events=tail_events,
      tail_hist=tail_hist)


def _zipf_cdf(n: int, s: float) -> np.ndarray:
  w = 1.0 / np.arange(1, n + 1) ** s
  return np.cumsum(w) / w.sum()


class _Sampler:
  """Vectorised draws from the vocabulary (Zipf within each class and in the tails)."""

  def __init__(self, vocab: Vocabulary):
    self.vocab = vocab
    self.num_classes = len(vocab.class_names)
    self.class_cdf = _zipf_cdf(self.num_classes, 0.8)
    self.drug_sizes = np.array([len(d) for d in vocab.class_drugs])
    self.drug_offsets = np.array([d[0] for d in vocab.class_drugs])
    self.drug_cdfs = [_zipf_cdf(n, 1.1) for n in self.drug_sizes]
    # Class-typical events / indications as global string tables with offsets.
    self.event_names = [e for evs in vocab.class_events for e in evs]
    self.event_offsets = np.cumsum([0] + [len(e) for e in vocab.class_events])
    self.hist_names = [h for hs in vocab.class_hist for h in hs]
    self.hist_offsets = np.cumsum([0] + [len(h) for h in vocab.class_hist])
    self.tail_event_cdf = _zipf_cdf(len(vocab.tail_events), 1.05)
    self.tail_hist_cdf = _zipf_cdf(len(vocab.tail_hist), 1.05)
    self.all_drug_cdf = _zipf_cdf(len(vocab.drugs), 1.0)
    self.all_drug_perm = np.random.default_rng(11).permutation(len(vocab.drugs))

  def classes(self, rng, n):
    return np.searchsorted(self.class_cdf, rng.random(n))

  def drugs_of(self, rng, classes):
    """One drug per entry of ``classes`` (Zipf within the class)."""
    out = np.empty(len(classes), np.int64)
    u = rng.random(len(classes))
    for c in np.unique(classes):
      m = classes == c
      out[m] = self.drug_offsets[c] + np.minimum(
          np.searchsorted(self.drug_cdfs[c], u[m]), self.drug_sizes[c] - 1)
    return out

  def uniform_in(self, rng, offsets, classes):
    lo, hi = offsets[classes], offsets[classes + 1]
    return lo + (rng.random(len(classes)) * (hi - lo)).astype(np.int64)


def _pick(names: Sequence[str], idx: np.ndarray) -> np.ndarray:
  return np.asarray(names, dtype=object)[idx]


def _zipf_pick(rng: np.random.Generator, names: Sequence[str], cdf: np.ndarray,
               count: int) -> np.ndarray:
  """``count`` draws from ``names`` with the cumulative distribution ``cdf``."""
  return _pick(names, np.minimum(np.searchsorted(cdf, rng.random(count)), len(names) - 1))


def _chunk_rows(sampler: _Sampler, rng: np.random.Generator, first_case: int, n: int):
  """Generates the element rows of cases [first_case, first_case + n).

  Returns dict with per-row arrays for drug/reac/hist plus the case-level latent classes.
  """
  vocab = sampler.vocab
  case = np.arange(n)
  primary = sampler.classes(rng, n)
  n_extra = np.minimum(rng.poisson(0.9, n), 3)
  extra = sampler.classes(rng, n * 3).reshape(n, 3)
  extra_mask = np.arange(3)[None, :] < n_extra[:, None]
  extra_mask &= extra != primary[:, None]
  # Drug rows: primary class 1-2 suspected drugs, each extra class 1 concomitant drug,
  # 0-3 random concomitant drugs (noise).
  n_prim = 1 + (rng.random(n) < 0.3)
  d_case = [np.repeat(case, n_prim)]
  d_cls = [np.repeat(primary, n_prim)]
  d_role = [np.zeros(n_prim.sum(), np.int8)]
  ec, ek = np.nonzero(extra_mask)
  d_case.append(ec)
  d_cls.append(extra[ec, ek])
  d_role.append(np.where(rng.random(len(ec)) < 0.15, 0,
                         np.where(rng.random(len(ec)) < 0.05, 2, 1)).astype(np.int8))
  drug_ids = [sampler.drugs_of(rng, np.concatenate(d_cls))]
  n_noise = np.minimum(rng.poisson(1.5, n), 6)
  nc = np.repeat(case, n_noise)
  noise_drugs = sampler.all_drug_perm[np.minimum(
      np.searchsorted(sampler.all_drug_cdf, rng.random(len(nc))), len(vocab.drugs) - 1)]
  d_case.append(nc)
  drug_ids.append(noise_drugs)
  d_role.append(np.ones(len(nc), np.int8))
  drug_case = np.concatenate(d_case)
  drug_id = np.concatenate(drug_ids)
  drug_role = np.concatenate(d_role)
  # Reaction rows: 1-3 typical events of the primary class, 0-1 of an extra class, and a
  # Zipf tail of general events.
  n_typ = 1 + rng.binomial(2, 0.45, n)
  rc = np.repeat(case, n_typ)
  r_names = [_pick(sampler.event_names, sampler.uniform_in(rng, sampler.event_offsets,
                                                           primary[rc]))]
  r_case = [rc]
  has_extra = extra_mask[:, 0] & (rng.random(n) < 0.35)
  xc = case[has_extra]
  r_names.append(_pick(sampler.event_names,
                       sampler.uniform_in(rng, sampler.event_offsets, extra[xc, 0])))
  r_case.append(xc)
  n_tail = np.minimum(rng.poisson(1.0, n), 4)
  tc = np.repeat(case, n_tail)
  r_names.append(_zipf_pick(rng, vocab.tail_events, sampler.tail_event_cdf, len(tc)))
  r_case.append(tc)
  reac_case = np.concatenate(r_case)
  reac_name = np.concatenate(r_names)
  # History rows: indication of the primary class (p=0.75), of extra classes (p=0.5),
  # and comorbidities from a Zipf tail.
  hp = case[rng.random(n) < 0.75]
  h_names = [_pick(sampler.hist_names, sampler.uniform_in(rng, sampler.hist_offsets,
                                                          primary[hp]))]
  h_case = [hp]
  keep = rng.random(len(ec)) < 0.5
  h_names.append(_pick(sampler.hist_names, sampler.uniform_in(
      rng, sampler.hist_offsets, extra[ec[keep], ek[keep]])))
  h_case.append(ec[keep])
  n_com = np.minimum(rng.poisson(0.7, n), 3)
  cc = np.repeat(case, n_com)
  h_names.append(_zipf_pick(rng, vocab.tail_hist, sampler.tail_hist_cdf, len(cc)))
  h_case.append(cc)
  hist_case = np.concatenate(h_case)
  hist_name = np.concatenate(h_names)
  classes_str = [";".join(str(c) for c in [p] + list(e[m])) for p, e, m in
                 zip(primary, extra, extra_mask)]
  return dict(primary=primary, classes=classes_str,
              drug=(drug_case, np.asarray(vocab.drugs, dtype=object)[drug_id], drug_role),
              reac=(reac_case, reac_name), hist=(hist_case, hist_name))


def _apply_variants(names: np.ndarray, rng: np.random.Generator, rate: float,
                    cache: Dict[str, List[str]]) -> np.ndarray:
  """Replaces a ``rate`` fraction of names with NFKC-foldable spelling variants."""
  pick = np.nonzero(rng.random(len(names)) < rate)[0]
  if len(pick):
    names = names.copy()
    for i in pick:
      v = cache.setdefault(names[i], [])
      if len(v) < 3:
        v.append(_variant(names[i], rng))
      names[i] = v[rng.integers(len(v))]
  return names


def _seq(case: np.ndarray) -> np.ndarray:
  """1-based running number of each row within its case (rows grouped by case)."""
  order = np.argsort(case, kind="stable")
  c = case[order]
  starts = np.r_[0, np.nonzero(np.diff(c))[0] + 1]
  run = np.arange(len(c)) - np.repeat(starts, np.diff(np.r_[starts, len(c)]))
  out = np.empty(len(c), np.int64)
  out[order] = run + 1
  return out


_ROLES = np.array(["被疑薬", "併用薬", "相互作用"], dtype=object)


def write_release(out_dir: "str | os.PathLike", num_cases: int, seed: int = 0,
                  encoding: str = "cp932", chunk_cases: int = 100_000,
                  variant_rate: float = 0.03, followup_rate: float = 0.08,
                  suffix: str = "202401", vocab: Optional[Vocabulary] = None) -> dict:
  """Writes a synthetic JADER release (demo/drug/reac/hist CSVs + latent_classes.csv).

  Args:
    out_dir: folder to create / overwrite the five files in.
    num_cases: number of distinct 識別番号 (the talk: 692,821).
    seed: random seed (the release is a deterministic function of it and the sizes).
    encoding: "cp932" (real PMDA files), "utf-8" or "utf-8-sig".
    chunk_cases: cases generated and written per step (bounds memory).
    variant_rate: fraction of element cells written as a spelling variant.
    followup_rate: fraction of cases that also have an earlier, superseded report
      (報告回数 1 with a partial element set; the latest 報告回数 is the truth).
    suffix: file name suffix (``demo{suffix}.csv`` ...).
    vocab: element universe; ``build_vocabulary(seed)`` when None.

  Returns:
    dict with the file paths, number of rows per file, num_cases and seconds taken.

  Raises:
    ValueError: num_cases or chunk_cases below 1 (nothing is written).
  """
  for name, value in (("num_cases", num_cases), ("chunk_cases", chunk_cases)):
    if not isinstance(value, numbers.Integral) or value < 1:
      raise ValueError(f"{name} must be an integer >= 1 (a release needs at least one "
                       f"case), got {value!r}")
  t0 = time.time()
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  vocab = vocab or build_vocabulary(seed)
  sampler = _Sampler(vocab)
  rng = np.random.default_rng(seed)
  paths = {k: out / f"{k}{suffix}.csv" for k in ("demo", "drug", "reac", "hist")}
  columns = {"demo": DEMO_COLUMNS, "drug": DRUG_COLUMNS, "reac": REAC_COLUMNS,
             "hist": HIST_COLUMNS}
  handles = {k: open(p, "w", encoding=encoding, newline="") for k, p in paths.items()}
  latent = open(out / LATENT_FILE, "w", encoding="utf-8", newline="")
  latent.write("識別番号,primary_class,primary_class_name,classes\n")
  rows = {k: 0 for k in paths}
  variant_cache: Dict[str, List[str]] = {}
  try:
    for k, h in handles.items():
      h.write(",".join(columns[k]) + "\r\n")
    for first in range(0, num_cases, chunk_cases):
      n = min(chunk_cases, num_cases - first)
      g = _chunk_rows(sampler, rng, first, n)
      ids = np.array([f"JD{first + i + 1:08d}" for i in range(n)], dtype=object)
      # Follow-up reports: version 2 is the complete case; version 1 holds a subset of
      # rows plus a stale event that must not survive loading.
      fu = rng.random(n) < followup_rate
      rep = np.where(fu, 2, 1)
      _write_demo(handles["demo"], rng, ids, rep, fu)
      rows["demo"] += n + int(fu.sum())
      d_case, d_name, d_role = g["drug"]
      r_case, r_name = g["reac"]
      h_case, h_name = g["hist"]
      d_name = _apply_variants(d_name, rng, variant_rate, variant_cache)
      r_name = _apply_variants(r_name, rng, variant_rate, variant_cache)
      h_name = _apply_variants(h_name, rng, variant_rate, variant_cache)
      old_d = fu[d_case] & (rng.random(len(d_case)) < 0.6)
      old_r = fu[r_case] & (rng.random(len(r_case)) < 0.5)
      stale = np.nonzero(fu)[0]
      stale_names = np.asarray(vocab.tail_events, dtype=object)[
          rng.integers(len(vocab.tail_events), size=len(stale))]
      rows["drug"] += _write_drug(handles["drug"], rng, ids, rep, d_case, d_name, d_role,
                                  old_d)
      rows["reac"] += _write_table(
          handles["reac"], ids, np.r_[rep[r_case], np.ones(old_r.sum() + len(stale), np.int64)],
          np.r_[r_case, r_case[old_r], stale],
          np.r_[r_name, r_name[old_r], stale_names],
          extra=lambda m: {"転帰": rng.choice(np.array(["回復", "軽快", "未回復", "死亡", "不明"],
                                                      dtype=object), m, p=[.4, .3, .15, .05, .1]),
                           "有害事象の発現日": np.full(m, "", dtype=object)},
          seq_col="有害事象連番", name_col="有害事象", columns=REAC_COLUMNS)
      rows["hist"] += _write_table(
          handles["hist"], ids, rep[h_case], h_case, h_name, extra=lambda m: {},
          seq_col="患者情報連番", name_col="原疾患等", columns=HIST_COLUMNS)
      lat = pd.DataFrame({"識別番号": ids, "primary_class": g["primary"],
                          "primary_class_name": np.asarray(vocab.class_names,
                                                           dtype=object)[g["primary"]],
                          "classes": g["classes"]})
      lat.to_csv(latent, header=False, index=False)
  finally:
    for h in handles.values():
      h.close()
    latent.close()
  return dict(paths={k: str(p) for k, p in paths.items()}, latent=str(out / LATENT_FILE),
              rows=rows, num_cases=num_cases, seconds=time.time() - t0, encoding=encoding)


def _write_rows(handle, columns: Sequence[np.ndarray], tail: str = ""):
  """Writes CSV rows (fields joined by ",", CRLF), each followed by the constant ``tail``.

  Much faster than DataFrame.to_csv for millions of rows; fields never need quoting
  (``build_vocabulary`` guarantees names without "," or '"').
  """
  cols = [c.tolist() if c.dtype == object else c.astype(str).tolist() for c in columns]
  end = tail + "\r\n"
  handle.write(end.join(map(",".join, zip(*cols))) + end if len(cols[0]) else "")


def _write_demo(handle, rng, ids, rep, fu):
  n = len(ids)
  idx = np.r_[np.arange(n), np.nonzero(fu)[0]]
  rep_all = np.r_[rep, np.ones(int(fu.sum()), np.int64)]
  m = len(idx)
  _write_rows(handle, [
      ids[idx], rep_all,
      rng.choice(np.array(["男性", "女性", "不明"], dtype=object), m, p=[.48, .48, .04]),
      rng.choice(np.array(["10歳代", "20歳代", "30歳代", "40歳代", "50歳代", "60歳代", "70歳代",
                           "80歳代", "不明"], dtype=object), m),
      np.full(m, ",", dtype=object),   # 体重, 身長 (empty)
      rng.choice(np.array([f"{y}年第{q}四半期" for y in range(2004, 2024)
                           for q in range(1, 5)], dtype=object), m),
      rng.choice(np.array(["完了報告", "未完了"], dtype=object), m, p=[.9, .1]),
      rng.choice(np.array(["自発報告", "試験", "文献"], dtype=object), m, p=[.7, .2, .1]),
      rng.choice(np.array(["医師", "薬剤師", "その他の医療専門家", "消費者"], dtype=object), m)],
      tail=",")                        # E2B (empty)


def _write_drug(handle, rng, ids, rep, d_case, d_name, d_role, old):
  case = np.r_[d_case, d_case[old]]
  name = np.r_[d_name, d_name[old]]
  role = np.r_[d_role, d_role[old]]
  r = np.r_[rep[d_case], np.ones(int(old.sum()), np.int64)]
  m = len(case)
  order = np.lexsort((r, case))
  case, name, role, r = case[order], name[order], role[order], r[order]
  seq = _seq(case * 4 + r)
  routes = rng.choice(np.array(["経口", "静脈内", "皮下", "不明"], dtype=object), m,
                      p=[.7, .2, .05, .05])
  # 販売名 empty, then 投与経路, then 9 empty columns (投与開始日 … リスク区分等).
  _write_rows(handle, [ids[case], r, seq, _ROLES[role], name, np.full(m, "", dtype=object),
                       routes], tail="," * 9)
  return m


def _write_table(handle, ids, rep, case, name, extra, seq_col, name_col, columns):
  order = np.lexsort((rep, case))
  case, name, rep = case[order], name[order], rep[order]
  m = len(case)
  data = {"識別番号": ids[case], "報告回数": rep, seq_col: _seq(case * 4 + rep),
          name_col: name}
  data.update(extra(m))
  _write_rows(handle, [np.asarray(data[c]) for c in columns])
  return m


def class_names() -> Sequence[str]:
  """Names of the latent therapeutic classes, indexed by ``primary_class``."""
  return [c[0] for c in _CLASSES]


def cached_release(cache_dir: "str | os.PathLike", num_cases: int, seed: int = 0,
                   log: Log = no_log) -> pathlib.Path:
  """The synthetic release of ``num_cases`` cases and ``seed``, generated once per cache.

  Every experiment shares one folder scheme (``CACHE/synthetic_{cases}_s{seed}``), so a
  release is never generated twice. A ``.complete`` marker is written last: an interrupted
  generation is redone, never reused half-written.

  Returns:
    The release folder.
  """
  if num_cases < 1:
    raise ValueError(f"num_cases must be a positive number of cases, got {num_cases}")
  out = pathlib.Path(cache_dir) / f"synthetic_{num_cases}_s{seed}"
  done = out / ".complete"
  if done.exists():
    log(f"reusing the synthetic JADER release in {out}")
    return out
  log(f"generating a synthetic JADER release of {num_cases:,d} cases in {out}")
  info = write_release(out, num_cases, seed=seed)
  log(f"  written in {info['seconds']:.1f} s: {info['rows']}")
  done.write_text("ok\n")
  return out
