"""Operator CLI for bulk work against a tsunagu deployment (or the local stack).

    python -m tsunagu_local.cli members-import FILE.csv --api URL --account ID --key KEY

Reads a member register CSV (UTF-8 or Shift_JIS; one row per contract line), groups it per
member, sends it in batches of at most 1,000 members with a progress bar, and prints every
rejected row with its CSV line number. Exit status 1 when any row was rejected."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tsunagu.domain.members import MAX_ROWS_PER_REQUEST, csv_to_rows, decode_csv
from tsunagu_local.client import request


def progress(done: int, total: int, width: int = 30) -> None:
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} members")
    sys.stderr.flush()


def members_import(path: str, api: str, account: str, key: str, batch: int) -> int:
    with open(path, "rb") as fh:
        rows, line_numbers = csv_to_rows(decode_csv(fh.read()))
    imported, rejected = 0, []
    for start in range(0, len(rows), batch):
        chunk, numbers = rows[start : start + batch], line_numbers[start : start + batch]
        r = request(
            "POST",
            f"{api.rstrip('/')}/accounts/{account}/members",
            {"members": chunk},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        if r.status != 200:
            sys.stderr.write(f"\nbatch starting at CSV line {numbers[0]} failed: {r.status} {r.text[:300]}\n")
            return 2
        out = r.json
        imported += out["imported"]
        for e in out["errors"]:
            rejected.append({**e, "csv_line": numbers[e["row"] - 1]})
        progress(min(start + batch, len(rows)), len(rows))
    sys.stderr.write("\n")
    print(
        json.dumps({"imported": imported, "rejected": len(rejected), "errors": rejected}, ensure_ascii=False, indent=2)
    )
    return 1 if rejected else 0


def main() -> None:
    ap = argparse.ArgumentParser(prog="tsunagu_local.cli")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("members-import", help="import a member register CSV in batches")
    m.add_argument("file")
    m.add_argument("--api", default=os.environ.get("TSUNAGU_API", "http://127.0.0.1:3000"))
    m.add_argument("--account", required=True)
    m.add_argument("--key", default=os.environ.get("TSUNAGU_API_KEY"), help="or TSUNAGU_API_KEY")
    m.add_argument("--batch", type=int, default=MAX_ROWS_PER_REQUEST)
    args = ap.parse_args()
    if not args.key:
        ap.error("an API key is needed (--key or TSUNAGU_API_KEY)")
    sys.exit(members_import(args.file, args.api, args.account, args.key, min(args.batch, MAX_ROWS_PER_REQUEST)))


if __name__ == "__main__":
    main()
