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
    """What is stored: hashes only."""

    member_number: str
    phone_hash: str | None = None
    birth_hash: str | None = None
    email_hash: str | None = None
    login_id_hash: str | None = None
    password_hash: str | None = None
    lines: tuple[ContractLine, ...] = ()
