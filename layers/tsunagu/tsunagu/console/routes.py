"""HTTP routes of the console's staff in the business API: invite (the first admin is invited
with the account's API key), list, disable, and the staff audit trail. The console's own 設定
page calls the same service."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tsunagu import wiring
from tsunagu.api import AccountId, authenticated
from tsunagu.api import router as new_router

router = new_router()
StaffId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class StaffInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] = ""
    scopes: list[str] = Field(
        min_length=1, max_length=7, description="admin, members, messaging, coupons, pos, billing, read"
    )


@router.post("/accounts/<account_id>/staff", status_code=201)  # type: ignore[untyped-decorator]
def invite_staff(account_id: AccountId, req: Annotated[StaffInvite, Body()]) -> dict[str, Any]:
    """Invite a staff member to the console; ``invite_path`` (72 hours, single use) is shown once."""
    authenticated(router, account_id)
    staff, token = wiring.staff_service().invite(account_id, req.email, req.name, req.scopes, "api_key")
    return {"staff": staff.view(), "invite_path": f"/console/{account_id}/invite?t={token}"}


@router.get("/accounts/<account_id>/staff")  # type: ignore[untyped-decorator]
def list_staff(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"staff": wiring.staff_service().members(account_id)}


@router.delete("/accounts/<account_id>/staff/<staff_id>")  # type: ignore[untyped-decorator]
def disable_staff(account_id: AccountId, staff_id: StaffId) -> dict[str, Any]:
    """Disable a staff member (their sessions end at once); the last admin cannot be disabled."""
    authenticated(router, account_id)
    return wiring.staff_service().disable(account_id, staff_id, "api_key")


@router.get("/accounts/<account_id>/staff-audit")  # type: ignore[untyped-decorator]
def staff_audit(account_id: AccountId) -> dict[str, Any]:
    """The staff audit trail, newest first: who released which link, approved which template, …"""
    authenticated(router, account_id)
    return {"entries": wiring.staff_service().audit_trail(account_id)}
