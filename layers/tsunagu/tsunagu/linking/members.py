"""The member register a business imports (R-LINK-1, R-LINK-9, R-LINK-10, R-LINK-14), and its
at-rest form: every verification factor as a keyed hash, passwords with scrypt, nothing raw.

Rows are validated one by one so that a bad row is reported (row number, field, stable code -
never the rejected value) and the rest of the batch is imported."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tsunagu.linking.domain import (
    LinkRefused,
    age_band,
    factor_hash,
    hash_password,
    normalize_email,
    normalize_login_id,
    normalize_phone_jp,
    parse_birth_date,
    parse_member_number,
    parse_usage_code,
)
from tsunagu.linking.register import ContractLine, MemberRecord

MAX_ROWS_PER_REQUEST = 1000
# scrypt (n=2^14) costs ~40 ms per password on a full core, several times that on a 512 MB
# Lambda: 100 passwords keep a request well inside the API's timeout.
MAX_PASSWORDS_PER_REQUEST = 100


def batches(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(start, end) slices of ``rows`` that each fit one request: at most MAX_ROWS_PER_REQUEST
    members and MAX_PASSWORDS_PER_REQUEST of them with a password."""
    out: list[tuple[int, int]] = []
    start = passwords = 0
    for i, row in enumerate(rows):
        has_password = bool(row.get("password"))
        if i > start and (i - start == MAX_ROWS_PER_REQUEST or passwords + has_password > MAX_PASSWORDS_PER_REQUEST):
            out.append((start, i))
            start, passwords = i, 0
        passwords += has_password
    if rows:
        out.append((start, len(rows)))
    return out


class ContractLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    usage_code: str | None = None
    monthly_base_fee: int = Field(default=0, ge=0, le=10_000_000, description="yen, tax excluded")


Attribute = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class MemberIn(BaseModel):
    """One register row as the business sends it (raw values; hashed before storage)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    member_number: str
    phone: str | None = None
    birth_date: str | None = None
    email: str | None = None
    login_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    password: Annotated[str, StringConstraints(min_length=8, max_length=128)] | None = None
    lines: list[ContractLineIn] = Field(default_factory=list, max_length=20)
    # Attributes segments may target (campaigns room); free text of the business's own codes.
    store: Attribute | None = None
    plan: Attribute | None = None
    prefecture: Attribute | None = None

    def __repr__(self) -> str:
        return f"MemberIn(member_number={self.member_number!r}, <factors redacted>)"

    __str__ = __repr__


@dataclass
class RowError:
    row: int
    code: str
    message: str
    field: str | None = None
    member_number: str | None = None


@dataclass
class ParsedRows:
    records: list[MemberRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def to_record(m: MemberIn, key: bytes) -> MemberRecord:
    """Validate and hash one row; raises LinkRefused (with the field in ``details``)."""

    def checked(fld: str, fn: Any, raw: str) -> str:
        try:
            return str(fn(raw))
        except LinkRefused as e:
            e.details = fld
            raise

    mn = checked("member_number", parse_member_number, m.member_number)
    lines = []
    for i, ln in enumerate(m.lines):
        code = checked(f"lines[{i}].usage_code", parse_usage_code, ln.usage_code) if ln.usage_code else None
        lines.append(
            ContractLine(ln.line_id, factor_hash(key, "usage_code", code) if code else None, ln.monthly_base_fee)
        )
    if len({ln.line_id for ln in lines}) != len(lines):
        raise LinkRefused("契約回線のIDが重複しています。", code="duplicate_line_id", details="lines")
    birth = checked("birth_date", parse_birth_date, m.birth_date) if m.birth_date else None
    return MemberRecord(
        member_number=mn,
        phone_hash=factor_hash(key, "phone", checked("phone", normalize_phone_jp, m.phone)) if m.phone else None,
        birth_hash=factor_hash(key, "birth", birth) if birth else None,
        email_hash=factor_hash(key, "email", checked("email", normalize_email, m.email)) if m.email else None,
        login_id_hash=factor_hash(key, "login_id", normalize_login_id(m.login_id)) if m.login_id else None,
        password_hash=hash_password(m.password) if m.password else None,
        lines=tuple(lines),
        store=m.store,
        plan=m.plan,
        prefecture=m.prefecture,
        age_band=age_band(birth, date.today()) if birth else None,
    )


def parse_rows(rows: list[dict[str, Any]], key: bytes, row_numbers: list[int] | None = None) -> ParsedRows:
    """``row_numbers``: what to call each row in errors (CSV line numbers); default 1, 2, ..."""
    out = ParsedRows()
    seen: set[str] = set()
    numbers = row_numbers or list(range(1, len(rows) + 1))
    for n, raw in zip(numbers, rows, strict=True):
        try:
            m = MemberIn.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            out.errors.append(
                RowError(
                    n,
                    "invalid_row",
                    first.get("msg", "invalid"),
                    ".".join(str(p) for p in first.get("loc", ())) or None,
                    raw.get("member_number") if isinstance(raw, dict) else None,
                )
            )
            continue
        try:
            rec = to_record(m, key)
        except LinkRefused as e:
            out.errors.append(RowError(n, e.code, e.message, str(e.details) if e.details else None, m.member_number))
            continue
        if rec.member_number in seen:
            out.errors.append(
                RowError(
                    n, "duplicate_member", "同じ組合員番号が複数行にあります。", "member_number", rec.member_number
                )
            )
            continue
        seen.add(rec.member_number)
        out.records.append(rec)
    return out


CSV_COLUMNS = (
    "member_number",
    "phone",
    "birth_date",
    "email",
    "login_id",
    "password",
    "line_id",
    "usage_code",
    "monthly_base_fee",
    "store",
    "plan",
    "prefecture",
)


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Shift_JIS (cp932) - what Japanese Excel writes."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError:
        raise LinkRefused("the CSV must be UTF-8 or Shift_JIS text", code="csv_format") from None


def csv_to_rows(text: str) -> tuple[list[dict[str, Any]], list[int]]:
    """CSV (one row per contract line; a member's rows share its member number) -> member
    dicts, and the first CSV line number of each member (for error reports)."""
    try:
        return _csv_to_rows(text)
    except csv.Error as e:  # e.g. a field past the csv module's limit
        raise LinkRefused(f"the CSV cannot be read: {e}", code="csv_format") from None


def _csv_to_rows(text: str) -> tuple[list[dict[str, Any]], list[int]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))  # CR-only (old Mac) line ends too
    unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
    if unknown or "member_number" not in (reader.fieldnames or ()):
        raise LinkRefused(f"CSV columns must be among: {', '.join(CSV_COLUMNS)}", code="csv_columns")
    members: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line_no, r in enumerate(reader, start=2):
        mn = (r.get("member_number") or "").strip()
        m = members.setdefault(mn, {"member_number": mn, "lines": []})
        first_line.setdefault(mn, line_no)
        for col in ("phone", "birth_date", "email", "login_id", "password", "store", "plan", "prefecture"):
            if r.get(col):
                m[col] = r[col].strip()
        if r.get("line_id"):
            fee = (r.get("monthly_base_fee") or "0").strip()
            m["lines"].append(
                {
                    "line_id": r["line_id"].strip(),
                    "usage_code": (r.get("usage_code") or None),
                    "monthly_base_fee": int(fee) if fee.isascii() and fee.isdigit() else fee,
                }
            )
    return list(members.values()), [first_line[k] for k in members]
