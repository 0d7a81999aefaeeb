"""Phone numbers normalised + hashed per second on one core (notification messages), next to
the phonenumbers library's parse + format (+ the same hash) as the baseline, interleaved in the
same run; then a differential check of the fast path against the library on N generated
numbers (default 1,000,000).

    python bench/phone_hash.py [--n 1000000] [--rounds 7]"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import phonenumbers  # noqa: E402

from tests.unit.test_phone_domain import generated  # noqa: E402
from tsunagu.notifications.phone import library_reference, line_hash, to_e164  # noqa: E402

REALISTIC = [
    "090-1234-5678",
    "09012345678",
    "+81 90 1234 5678",
    "０９０－１２３４－５６７８",
    "080 9876 5432",
    "03-1234-5678",
    "0120-123-456",
    "070-1111-2222",
]


def tsunagu(batch: list[str]) -> int:
    n = 0
    for raw in batch:
        e = to_e164(raw)
        if e is not None:
            line_hash(e)
            n += 1
    return n


def baseline(batch: list[str]) -> int:
    n = 0
    for raw in batch:
        num = phonenumbers.parse(raw, "JP")
        hashlib.sha256(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164).encode()).hexdigest()
        n += 1
    return n


def rate(fn, batch: list[str]) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(batch)
    return len(batch) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    batch = REALISTIC * 2500  # 20,000 numbers per timing
    ours, base = [], []
    for _ in range(args.rounds):
        ours.append(rate(tsunagu, batch))
        base.append(rate(baseline, batch))
    o, b = statistics.median(ours), statistics.median(base)
    print(f"realistic Japanese input ({len(REALISTIC)} shapes), {args.rounds} interleaved rounds of {len(batch):,}")
    print("| path | numbers/s (median) |\n|---|---:|")
    print(f"| tsunagu to_e164 + line_hash | {o:,.0f} |\n| phonenumbers parse + format + sha256 | {b:,.0f} |")
    print(f"ratio: {o / b:.1f}x")
    t = time.perf_counter()
    mismatches = 0
    for raw in generated(args.n, seed=2026):
        if to_e164(raw) != library_reference(raw):
            mismatches += 1
    print(f"differential: {args.n:,} generated numbers, {mismatches} mismatches ({time.perf_counter() - t:.0f} s)")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
