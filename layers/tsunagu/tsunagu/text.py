"""Text that cannot be stored: JSON may carry a lone UTF-16 surrogate (``"\\ud800"``), which
Python decodes into a ``str`` that no UTF-8 encoder (DynamoDB, hashing, SQS) accepts. Requests
holding one are refused before anything is written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# Surrogates only reach a JSON text as \u escapes (UTF-8 cannot encode them): a cheap pre-check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def may_hold_surrogate(raw: str | bytes) -> bool:
    """False when a JSON text cannot decode to a surrogate (no \\uD800-\\uDFFF escape in it)."""
    pattern = _SURROGATE_ESCAPE_BYTES if isinstance(raw, bytes) else _SURROGATE_ESCAPE
    return pattern.search(raw) is not None  # type: ignore[arg-type]


def has_lone_surrogate(value: Any) -> bool:
    """True when a decoded JSON value holds a string with an unpaired surrogate (a pair in the
    JSON text decodes to one character, so any surrogate left in a ``str`` is lone)."""
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def json_has_lone_surrogate(raw: str) -> bool:
    """The same for a JSON text; False for text that is not JSON (its parser reports that)."""
    if not may_hold_surrogate(raw):
        return False
    try:
        return has_lone_surrogate(json.loads(raw))
    except (ValueError, RecursionError):
        return False


def decode_spreadsheet_csv(data: bytes) -> str | None:
    """A CSV as Japanese spreadsheets write it: UTF-8 (with or without BOM), else Shift_JIS
    (cp932, what Japanese Excel saves); None when it is neither."""
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def csv_table(
    data: bytes, *, required: set[str], allowed: tuple[str, ...], refuse: Callable[[str, str], Exception]
) -> list[dict[str, str]]:
    """The rows of a spreadsheet CSV whose header holds every ``required`` column and nothing
    outside ``allowed``; cells as written ('' when empty). ``refuse(message, code)`` builds the
    capability's own error (codes ``csv_format`` and ``csv_columns``)."""
    import csv
    import io

    text_ = decode_spreadsheet_csv(data)
    if text_ is None:
        raise refuse("the CSV must be UTF-8 or Shift_JIS text", "csv_format")
    try:
        reader = csv.DictReader(io.StringIO(text_, newline=""))
        header = reader.fieldnames or []
        if not required <= set(header) or set(header) - set(allowed):
            raise refuse(f"CSV columns must be among: {', '.join(allowed)}", "csv_columns")
        rows = []
        for r in reader:
            if None in r:  # more cells than the header has
                raise refuse("a row has more cells than the header", "csv_format")
            rows.append({k: v or "" for k, v in r.items()})
        return rows
    except csv.Error as e:
        raise refuse(f"the CSV cannot be read: {e}", "csv_format") from None
