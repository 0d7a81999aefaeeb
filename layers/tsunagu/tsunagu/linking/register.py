"""The member register at rest: verification factors as keyed hashes only (no pydantic here:
the linking page and workers read records without importing it; see docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContractLine:
    line_id: str
    usage_code_hash: str | None
    monthly_base_fee: int


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """What is stored: hashes of the factors, and the attributes segments may target (store,
    plan, prefecture, and an age band worked out from the birth date at import - never the date)."""

    member_number: str
    phone_hash: str | None = None
    birth_hash: str | None = None
    email_hash: str | None = None
    login_id_hash: str | None = None
    password_hash: str | None = None
    lines: tuple[ContractLine, ...] = ()
    store: str | None = None
    plan: str | None = None
    prefecture: str | None = None
    age_band: str | None = None
