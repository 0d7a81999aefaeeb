"""Segment evaluation in process: a 5-condition rule compiled by tsunagu.campaigns.segments over
N synthetic friend records (default 1,000,000), against a hand-written predicate over the same
records, interleaved in the same run (medians of R rounds). The issue's target: the compiled rule
takes at most 1.5x the hand-written predicate's time. Both must select the same friends.

    python bench/segments.py [--n 1000000] [--rounds 5]"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "tsunagu"))

from tsunagu.campaigns.segments import DAY_MS, Definitions, FriendFacts, compile_rule, evaluate, facts  # noqa: E402

NOW_MS = 1_780_000_000_000
STORES = [f"S{i:02d}" for i in range(20)]
TAGS = ["vip", "newsletter", "kids", "wine", "coupon_lover", "inactive"]


def records(n: int, seed: int = 7) -> list[FriendFacts]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        linked = rnd.random() < 0.4
        member = (
            {
                "store": rnd.choice(STORES),
                "plan": rnd.choice(["basic", "premium"]),
                "age_band": rnd.choice(["20s", "30s"]),
            }
            if linked
            else None
        )
        out.append(
            facts(
                f"U{i:032x}",
                blocked=rnd.random() < 0.08,
                since_ms=NOW_MS - rnd.randrange(0, 900) * DAY_MS,
                linked=linked,
                member=member,
                tags=rnd.sample(TAGS, rnd.randrange(0, 3)),
                fields={"points": rnd.randrange(0, 1000)} if rnd.random() < 0.5 else {},
                redeemed=["C1"] if rnd.random() < 0.1 else [],
            )
        )
    return out


RULE = {
    "all": [
        {"linked": True},
        {"attribute": "store", "in": ["S01", "S02", "S03"]},
        {"tag": "vip"},
        {"friend_days": {"gte": 30}},
        {"not": {"redeemed": "C1"}},
    ]
}


def hand_written(rs: list[FriendFacts]) -> list[str]:
    cut = NOW_MS - 30 * DAY_MS
    stores = frozenset({"S01", "S02", "S03"})
    return [
        r["user_id"]
        for r in rs
        if r["linked"]
        and r["store"] in stores
        and "vip" in r["tags"]
        and r["since_ms"] <= cut
        and "C1" not in r["redeemed"]
        and not r["blocked"]
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    t0 = time.perf_counter()
    rs = records(a.n)
    print(f"{a.n:,} synthetic friend records built in {time.perf_counter() - t0:.1f} s")
    defs = Definitions(frozenset(TAGS), {"points": "number"})
    compiled = compile_rule(RULE, defs, NOW_MS)
    expected = hand_written(rs)
    got = evaluate(compiled, rs).recipients
    assert got == expected, (len(got), len(expected))
    ours, base = [], []
    for _ in range(a.rounds):
        t = time.perf_counter()
        hand_written(rs)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate(compiled, rs)
        ours.append(time.perf_counter() - t)
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"matched (reachable): {len(expected):,}")
    print(f"hand-written predicate: median {mb:.3f} s  ({a.n / mb:,.0f} friends/s)")
    print(f"compiled segment rule:  median {mo:.3f} s  ({a.n / mo:,.0f} friends/s)")
    print(f"ratio compiled / hand-written: {mo / mb:.2f}x (target <= 1.5x)")
    compile_t = []
    for _ in range(200):
        t = time.perf_counter()
        compile_rule(RULE, defs, NOW_MS)
        compile_t.append(time.perf_counter() - t)
    print(f"compile (validate + build) the rule: median {statistics.median(compile_t) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
