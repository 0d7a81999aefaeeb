"""Operator CLI for bulk work against a tsunagu deployment (or the local stack).

    python -m tsunagu_local.cli members-import FILE.csv --api URL --account ID --key KEY
    python -m tsunagu_local.cli notify FILE.csv --template ntpl_... --api URL --account ID --key KEY

``members-import`` reads a member register CSV (UTF-8 or Shift_JIS; one row per contract line),
groups it per member, sends it in batches of at most 1,000 members with a progress bar, and
prints every rejected row with its CSV line number.

``notify`` reads a CSV with the columns ``phone`` and ``reference``; every other column is a
template parameter (``{{column}}``). It sends batches of at most 1,000 notifications with a
progress bar and prints the batch ids and every refused row (CSV line, reference, code - never
the number). Re-running the same file is safe: references already accepted are duplicates.

Exit status 1 when any row was rejected / refused, 2 when a request failed."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys

from tsunagu.linking.members import MAX_ROWS_PER_REQUEST, csv_to_rows, decode_csv
from tsunagu.linking.members import batches as member_batches
from tsunagu_local.client import request


def progress(done: int, total: int, width: int = 30, what: str = "members") -> None:
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}")
    sys.stderr.flush()


def _split(start: int, end: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, end)) for a in range(start, end, max(1, size))]


def members_import(path: str, api: str, account: str, key: str, batch: int) -> int:
    with open(path, "rb") as fh:
        rows, line_numbers = csv_to_rows(decode_csv(fh.read()))
    imported, rejected = 0, []
    slices = [(a, b) for start, end in member_batches(rows) for a, b in _split(start, end, batch)]
    for start, end in slices:
        chunk, numbers = rows[start:end], line_numbers[start:end]
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
        progress(end, len(rows))
    sys.stderr.write("\n")
    print(
        json.dumps({"imported": imported, "rejected": len(rejected), "errors": rejected}, ensure_ascii=False, indent=2)
    )
    return 1 if rejected else 0


NOTIFY_BATCH = 1000


def notify_rows(data: bytes) -> list[tuple[int, dict[str, object]]]:
    """(CSV line, batch item) per row; columns other than phone and reference are parameters."""
    reader = csv.DictReader(io.StringIO(decode_csv(data)))
    missing = {"phone", "reference"} - set(reader.fieldnames or [])
    if missing:
        raise SystemExit(f"the CSV needs the columns phone and reference (missing: {', '.join(sorted(missing))})")
    out = []
    for row in reader:
        params = {k: (v or "") for k, v in row.items() if k not in ("phone", "reference") and k}
        out.append(
            (reader.line_num, {"phone": row["phone"] or "", "reference": row["reference"] or "", "parameters": params})
        )
    return out


def notify(path: str, api: str, account: str, key: str, template: str, batch: int, label: str | None) -> int:
    with open(path, "rb") as fh:
        rows = notify_rows(fh.read())
    batches: list[str] = []
    accepted = duplicates = 0
    refused: list[dict[str, object]] = []

    def summary() -> str:
        doc = {"batches": batches, "accepted": accepted, "duplicates": duplicates, "refused": refused}
        return json.dumps(doc, ensure_ascii=False, indent=2)

    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        body: dict[str, object] = {"template_id": template, "items": [item for _, item in chunk]}
        if label:
            body["label"] = label
        r = request(
            "POST",
            f"{api.rstrip('/')}/accounts/{account}/notifications",
            body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        if r.status != 202:
            sys.stderr.write(f"\nbatch starting at CSV line {chunk[0][0]} failed: {r.status} {r.text[:300]}\n")
            print(summary())
            return 2
        out = r.json
        batches.append(out["batch_id"])
        accepted += out["accepted"]
        duplicates += len(out["duplicates"])
        for x in out["refused"]:
            refused.append({"csv_line": chunk[x["index"]][0], "reference": x["reference"], "code": x["code"]})
        progress(min(start + batch, len(rows)), len(rows), what="notifications")
    sys.stderr.write("\n")
    print(summary())
    return 1 if refused else 0


def main() -> None:
    ap = argparse.ArgumentParser(prog="tsunagu_local.cli")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("members-import", help="import a member register CSV in batches")
    m.add_argument("file")
    m.add_argument("--api", default=os.environ.get("TSUNAGU_API", "http://127.0.0.1:3000"))
    m.add_argument("--account", required=True)
    m.add_argument("--key", default=os.environ.get("TSUNAGU_API_KEY"), help="or TSUNAGU_API_KEY")
    m.add_argument("--batch", type=int, default=MAX_ROWS_PER_REQUEST)
    nt = sub.add_parser("notify", help="send LINE notification messages to the phone numbers of a CSV")
    nt.add_argument("file")
    nt.add_argument("--template", required=True, help="an approved notification template id")
    nt.add_argument("--label", default=None)
    nt.add_argument("--api", default=os.environ.get("TSUNAGU_API", "http://127.0.0.1:3000"))
    nt.add_argument("--account", required=True)
    nt.add_argument("--key", default=os.environ.get("TSUNAGU_API_KEY"), help="or TSUNAGU_API_KEY")
    nt.add_argument("--batch", type=int, default=NOTIFY_BATCH)
    args = ap.parse_args()
    if not args.key:
        ap.error("an API key is needed (--key or TSUNAGU_API_KEY)")
    if args.cmd == "notify":
        size = max(1, min(args.batch, NOTIFY_BATCH))
        sys.exit(notify(args.file, args.api, args.account, args.key, args.template, size, args.label))
    sys.exit(members_import(args.file, args.api, args.account, args.key, min(args.batch, MAX_ROWS_PER_REQUEST)))


if __name__ == "__main__":
    main()
