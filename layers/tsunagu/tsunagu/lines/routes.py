"""HTTP routes of mobile lines: load lines (JSON or CSV), the carrier's usage feed, a line with
its history, data gifts by the business (idempotent on gift_id, R-GIFT-1), the carrier webhook
URL and the monthly rollover on demand (the schedule runs it too)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tsunagu import wiring
from tsunagu.api import AccountId, authenticated, errors, uploaded_bytes
from tsunagu.api import router as new_router

router = new_router()
LineId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
GiftId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Month = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]


class LinesIn(BaseModel):
    """Lines as the carrier knows them: line_id, member_number (the contract), allowance_mb,
    remaining_mb (default: the allowance), used_mb. Every row or none is stored."""

    lines: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class UsageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month = Field(description="JST month the use belongs to (YYYY-MM)")
    used_mb: int = Field(ge=0, le=10_000_000, description="cumulative MB used this month")


class GiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="the caller's idempotency key: one gift per id"
    )
    from_line: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    to_line: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    mb: int = Field(description="500, 1000, 1500, 2000 or 2500 (R-GIFT-1)")


class LinesSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier_webhook_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)] | None = None
    mypage_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s?#]+$", max_length=500)] | None = Field(
        default=None, description="the company's My Page; opened with ?ticket=… (R-LINK-12)"
    )


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket: Annotated[str, StringConstraints(min_length=1, max_length=400)]


class RolloverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month | None = None


@router.post("/accounts/<account_id>/lines")  # type: ignore[untyped-decorator]
def load_lines(account_id: AccountId, body: Annotated[LinesIn, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.lines_service().load(account_id, body.lines)


@router.post("/accounts/<account_id>/lines/import")  # type: ignore[untyped-decorator]
def import_lines_csv(account_id: AccountId) -> dict[str, Any]:
    """Lines from CSV (UTF-8 or Shift_JIS): line_id, member_number, allowance_mb[, remaining_mb, used_mb]."""
    authenticated(router, account_id)
    return wiring.lines_service().load_csv(account_id, uploaded_bytes(router))


@router.get(
    "/accounts/<account_id>/lines/<line_id>",
    responses=errors(s409="the line changed meanwhile; retry (line_busy)"),
)  # type: ignore[untyped-decorator]
def get_line(account_id: AccountId, line_id: LineId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.lines_service().view(account_id, line_id)


@router.put(
    "/accounts/<account_id>/lines/<line_id>/usage",
    responses=errors(s409="the line changed meanwhile; retry (line_busy)"),
)  # type: ignore[untyped-decorator]
def report_usage(account_id: AccountId, line_id: LineId, body: Annotated[UsageIn, Body()]) -> dict[str, Any]:
    """The carrier's usage feed; a report older than the last one changes nothing."""
    authenticated(router, account_id)
    return wiring.lines_service().report_usage(account_id, line_id, body.month, body.used_mb)


@router.post(
    "/accounts/<account_id>/gifts",
    responses=errors(s409="gift_conflict, gift_request_used, gift_id_reused or line_busy"),
)  # type: ignore[untyped-decorator]
def give_data(account_id: AccountId, body: Annotated[GiftIn, Body()]) -> dict[str, Any]:
    """A data gift, applied once per gift_id (a repeat answers ``already_applied``)."""
    authenticated(router, account_id)
    return wiring.lines_service().gift(account_id, body.gift_id, body.from_line, body.to_line, body.mb)


@router.put("/accounts/<account_id>/lines-settings")  # type: ignore[untyped-decorator]
def lines_settings(account_id: AccountId, body: Annotated[LinesSettingsIn, Body()]) -> dict[str, Any]:
    """Where data changes are announced (signed like LINE webhooks with the carrier key), and the
    My Page that login tickets open."""
    authenticated(router, account_id)
    wiring.line_store().put_settings(account_id, body.model_dump())
    return body.model_dump()


@router.post(
    "/accounts/<account_id>/mypage/tickets/redeem",
    responses=errors(s409="the ticket was redeemed before (ticket_used)"),
)  # type: ignore[untyped-decorator]
def redeem_ticket(account_id: AccountId, body: Annotated[TicketIn, Body()]) -> dict[str, Any]:
    """The company's site redeems a My Page login ticket, server to server: the member number,
    once. ``ticket_invalid`` (400), ``ticket_expired`` (400), ``ticket_used`` (409)."""
    authenticated(router, account_id)
    return wiring.lines_service().redeem_ticket(account_id, body.ticket)


@router.post("/accounts/<account_id>/lines/rollover")  # type: ignore[untyped-decorator]
def rollover(account_id: AccountId, body: Annotated[RolloverIn, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.lines_service().rollover(account_id, body.month)
