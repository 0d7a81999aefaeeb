"""The help desk's embedded answerer (R-HELP-1): answer quality on the labelled paraphrases of
the co-op's FAQ (seed 004), answer latency in process, and cold start - each next to a baseline
measured in the same run.

- quality: top-1 accuracy of BM25 over character 2/3-grams on ``coop_faq_questions.csv`` (every
  question written from the FAQ in other words), the share of right answers at or above the
  escalation threshold, and small talk that would (wrongly) be answered; baseline: keyword
  containment (the FAQ question's longest run of kanji/katakana found in the user's text), which
  is what an auto-response rule list amounts to.
- latency: median and p95 of one answer over the 16-entry FAQ, and of the baseline.
- cold start: a fresh interpreter importing the answerer, building the index from the CSV and
  answering once (median of N runs), next to ``import boto3`` in the same run.

    python bench/helpdesk.py [--runs 9]"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import subprocess
import sys
import time

from common import ROOT, pct

from tsunagu.helpdesk.domain import Hours
from tsunagu.helpdesk.retrieval import FaqEntry, FaqIndex, normalise

DATA = ROOT / "local" / "tsunagu_local" / "data"
SMALL_TALK = ["こんにちは", "ありがとう", "今日の天気は?", "おはようございます", "よろしくお願いします", "了解です"]


def load() -> tuple[list[FaqEntry], list[dict[str, str]]]:
    with (DATA / "coop_faq.csv").open(encoding="utf-8") as f:
        faq = [FaqEntry(r["faq_id"], r["question"], r["answer"], r["category"]) for r in csv.DictReader(f)]
    with (DATA / "coop_faq_questions.csv").open(encoding="utf-8") as f:
        return faq, list(csv.DictReader(f))


def keyword_baseline(faq: list[FaqEntry]):  # type: ignore[no-untyped-def]
    runs = {
        e.faq_id: sorted(re.findall(r"[一-龥ァ-ヶー]{2,}", normalise(e.question)), key=len, reverse=True) for e in faq
    }

    def answer(question: str) -> str | None:
        q = normalise(question)
        best, best_len = None, 0
        for fid, words in runs.items():
            hit = sum(len(w) for w in words if w in q)
            if hit > best_len:
                best, best_len = fid, hit
        return best

    return answer


def timed(fn, questions: list[str], repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - t) * 1e6)
    return out


COLD = """
import time, csv
t = time.perf_counter()
{body}
print((time.perf_counter() - t) * 1000)
"""
ANSWERER = """
from tsunagu.helpdesk.retrieval import FaqEntry, FaqIndex
rows = list(csv.DictReader(open({path!r}, encoding="utf-8")))
idx = FaqIndex([FaqEntry(r["faq_id"], r["question"], r["answer"]) for r in rows])
idx.best("クーポンは何回使えますか")
"""


def cold(body: str, runs: int) -> float:
    ms = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", COLD.format(body=body)], capture_output=True, text=True, check=True)
        ms.append(float(out.stdout.strip()))
    return statistics.median(ms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    faq, labelled = load()
    idx, threshold = FaqIndex(faq), Hours().threshold
    questions = [q["question"] for q in labelled]
    top1 = [idx.best(q["question"]) for q in labelled]
    right = [m is not None and m.entry.faq_id == q["faq_id"] for m, q in zip(top1, labelled, strict=True)]
    confident_right = sum(1 for m, ok in zip(top1, right, strict=True) if ok and m and m.confidence >= threshold)
    confident_wrong = sum(1 for m, ok in zip(top1, right, strict=True) if not ok and m and m.confidence >= threshold)
    talk_answered = sum(1 for t in SMALL_TALK if (m := idx.best(t)) and m.confidence >= threshold)
    base = keyword_baseline(faq)
    base_right = sum(1 for q in labelled if base(q["question"]) == q["faq_id"])
    print(f"labelled questions: {len(labelled)} over {len(faq)} FAQ entries (seed 004)")
    print(
        f"top-1 accuracy: n-gram BM25 {sum(right)}/{len(labelled)} = {sum(right) / len(labelled):.1%}; "
        f"keyword baseline {base_right}/{len(labelled)} = {base_right / len(labelled):.1%}"
    )
    print(
        f"at threshold {threshold}: answered and right {confident_right}, answered and wrong {confident_wrong}, "
        f"escalated {len(labelled) - confident_right - confident_wrong}; "
        f"small talk answered {talk_answered}/{len(SMALL_TALK)}"
    )
    ours = timed(idx.best, questions, 20)
    theirs = timed(base, questions, 20)
    print(
        f"answer latency (µs): n-gram BM25 median {statistics.median(ours):.0f} p95 {pct(ours, 95):.0f}; "
        f"keyword baseline median {statistics.median(theirs):.0f} p95 {pct(theirs, 95):.0f}; "
        f"ratio {statistics.median(ours) / statistics.median(theirs):.1f}x"
    )
    t = time.perf_counter()
    for _ in range(100):
        FaqIndex(faq)
    print(f"index build: {(time.perf_counter() - t) * 10:.2f} ms per build of {len(faq)} entries")
    ans = cold(ANSWERER.format(path=str(DATA / "coop_faq.csv")), args.runs)
    boto = cold("import boto3", args.runs)
    print(
        f"cold start (median of {args.runs}): answerer import + index + first answer {ans:.1f} ms; "
        f"import boto3 {boto:.1f} ms; ratio {ans / boto:.2f}"
    )


if __name__ == "__main__":
    main()
