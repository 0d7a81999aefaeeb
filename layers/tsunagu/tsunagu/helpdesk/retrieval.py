"""The embedded answerer's retrieval: BM25 over character n-grams of the FAQ (R-HELP-1).

Japanese has no spaces between words. A morphological analyser (sudachipy, fugashi + unidic,
janome) would split words properly, but each brings a dictionary of tens to hundreds of MB and
seconds of cold start; short FAQ questions are matched well by overlapping character bigrams and
trigrams of the NFKC-normalised text, with no dependency at all (quality and cold start are
measured in ``bench/helpdesk.py``, figures in docs/benchmarks.md).

Ranking is Okapi BM25 (k1 = 1.2, b = 0.75) over each entry's question (counted twice) and
answer. Confidence is separate from rank: the IDF-weighted share of the question's bigrams the
best entry contains (0 … 1) - a BM25 score has no fixed scale, a coverage does."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

_DROP = re.compile(r"[\s、。,.!?!?「」『』()()・:::【】<>〈〉\"'`~〜ー-]+")
# Words that carry no meaning in a question; removed before n-grams are taken.
_FILLER = ("ですか", "ますか", "でしょうか", "ください", "教えて", "について", "どうすれば", "いいですか", "のですが")
K1, B = 1.2, 0.75


def normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    for w in _FILLER:
        t = t.replace(w, " ")
    return _DROP.sub("", t)


def grams(text: str, sizes: tuple[int, ...] = (2, 3)) -> list[str]:
    t = normalise(text)
    if len(t) < 2:
        return [t] if t else []
    return [t[i : i + n] for n in sizes for i in range(len(t) - n + 1)]


@dataclass(frozen=True, slots=True)
class FaqEntry:
    faq_id: str
    question: str
    answer: str
    category: str = ""


@dataclass(frozen=True, slots=True)
class Match:
    entry: FaqEntry
    score: float
    confidence: float


class FaqIndex:
    def __init__(self, entries: list[FaqEntry]):
        self.entries = entries
        self.docs: list[Counter[str]] = []
        for e in entries:
            q = grams(e.question)
            self.docs.append(Counter(q + q + grams(e.answer)))
        self.lengths = [sum(c.values()) for c in self.docs]
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        df: Counter[str] = Counter()
        for c in self.docs:
            df.update(c.keys())
        n = len(entries)
        self.idf = {g: math.log(1 + (n - f + 0.5) / (f + 0.5)) for g, f in df.items()}
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)

    def ranked(self, question: str, k: int = 3) -> list[Match]:
        q = Counter(grams(question))
        if not q or not self.entries:
            return []
        scores: list[tuple[float, int]] = []
        for i, doc in enumerate(self.docs):
            s = 0.0
            norm = K1 * (1 - B + B * self.lengths[i] / self.avg)
            for g, qtf in q.items():
                tf = doc.get(g, 0)
                if tf:
                    s += self.idf[g] * tf * (K1 + 1) / (tf + norm) * qtf
            scores.append((s, i))
        scores.sort(key=lambda x: (-x[0], x[1]))
        return [Match(self.entries[i], s, self._coverage(q, i)) for s, i in scores[:k] if s > 0]

    def _coverage(self, q: Counter[str], i: int) -> float:
        bigrams = [g for g in q if len(g) == 2] or list(q)
        total = sum(self.idf.get(g, self.unknown_idf) for g in bigrams)
        hit = sum(self.idf[g] for g in bigrams if g in self.docs[i])
        return round(hit / total, 4) if total else 0.0

    def best(self, question: str) -> Match | None:
        top = self.ranked(question, 1)
        return top[0] if top else None
