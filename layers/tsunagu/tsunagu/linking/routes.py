"""HTTP routes of the member register and its links: import (JSON or CSV), members, staff unlink
(R-LINK-6), linked segments (R-LINK-7) and the link audit trail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tsunagu import wiring
from tsunagu.api import AccountId, After, authenticated, uploaded_bytes
from tsunagu.api import router as new_router

router = new_router()
MemberNumber = Annotated[str, Path(pattern=r"^(?:\d{4,12}|N\d{10})$")]


class MemberBatch(BaseModel):
    members: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class StaffUnlink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["member", "contractor", "user"]
    line_id: str | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


@router.post("/accounts/<account_id>/members")  # type: ignore[untyped-decorator]
def import_members(account_id: AccountId, batch: Annotated[MemberBatch, Body()]) -> dict[str, Any]:
    """Import or update up to 1,000 members (JSON). Bad rows are reported, the rest imported."""
    authenticated(router, account_id)
    return wiring.member_service().import_rows(account_id, batch.members)


@router.post("/accounts/<account_id>/members/import")  # type: ignore[untyped-decorator]
def import_members_csv(account_id: AccountId) -> dict[str, Any]:
    """Import members from CSV (UTF-8 or Shift_JIS; one row per contract line)."""
    authenticated(router, account_id)
    return wiring.member_service().import_csv(account_id, uploaded_bytes(router))


@router.get("/accounts/<account_id>/members")  # type: ignore[untyped-decorator]
def list_members(
    account_id: AccountId, limit: Annotated[int, Query(ge=1, le=1000)] = 100, after: After = None
) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.member_service().page(account_id, limit, after)


@router.get("/accounts/<account_id>/members/<member_number>")  # type: ignore[untyped-decorator]
def get_member(account_id: AccountId, member_number: MemberNumber) -> dict[str, Any]:
    """Which factors are on file (never their values), contract lines and link status (R-LINK-14)."""
    authenticated(router, account_id)
    return wiring.member_service().get(account_id, member_number)


@router.post("/accounts/<account_id>/members/<member_number>/unlink")  # type: ignore[untyped-decorator]
def staff_unlink(
    account_id: AccountId, member_number: MemberNumber, req: Annotated[StaffUnlink, Body()]
) -> dict[str, Any]:
    """Staff release a link after checking identity (R-LINK-6); the reason goes to the audit trail."""
    authenticated(router, account_id)
    return wiring.member_service().staff_unlink(account_id, member_number, req.kind, req.line_id, req.reason)


@router.get("/accounts/<account_id>/segments/linked")  # type: ignore[untyped-decorator]
def linked_segments(account_id: AccountId) -> dict[str, Any]:
    """Linked members vs unlinked friends (R-LINK-7)."""
    authenticated(router, account_id)
    return wiring.member_service().segments(account_id)


@router.get("/accounts/<account_id>/link-audit")  # type: ignore[untyped-decorator]
def link_audit(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"entries": wiring.member_service().audit(account_id)}
