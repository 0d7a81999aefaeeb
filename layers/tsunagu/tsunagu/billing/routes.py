"""HTTP routes of metering and billing (included by the accounts API): sends through tsunagu,
live usage, forecasts, plans, options, budgets, invoices, points, and the business-day
calendar (R-MSG-1, R-MSG-2, R-PLAN-1 ... R-PLAN-6, R-BIZ-1, R-PTS-1)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from tsunagu import wiring
from tsunagu.api import AccountId, authenticated, csv_or_json, csv_response, errors
from tsunagu.api import router as new_router
from tsunagu.errors import ValidationFailed
from tsunagu.observability import metrics

router = new_router()
Month = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Campaign(BaseModel):
    """R-MSG-1: a send (or a series of sends) capped at a chosen number of recipients."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    cap: StrictInt = Field(ge=1)


class SendIn(BaseModel):
    """``body`` is LINE's request body for the kind (``to`` and ``messages``; a narrowcast also
    needs ``limit.max``). ``retry_key`` (a UUID) makes a retried request safe: it is LINE's
    ``X-Line-Retry-Key`` and the send's id in the usage ledger."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["push", "multicast", "broadcast", "narrowcast"]
    body: dict[str, Any]
    retry_key: Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
    campaign: Campaign | None = None


class ForecastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: StrictInt = Field(ge=0, le=100_000_000)
    day: date | None = Field(default=None, description="JST date of the planned send; default today")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Literal["communication", "light", "standard"]


class OptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    option: Literal["chat_plus", "call_plus", "premium_id"]
    start: date
    end: date | None = None
    yearly: StrictBool = False


class BudgetIn(BaseModel):
    """Standard plan: the month's billable messages never pass either limit."""

    model_config = ConfigDict(extra="forbid")

    monthly_yen: StrictInt | None = Field(default=None, ge=0, le=10**12)
    monthly_messages: StrictInt | None = Field(default=None, ge=0, le=10**10)


class CallsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
    minutes: StrictInt = Field(ge=1, le=1440)


@router.post("/accounts/<account_id>/messages")  # type: ignore[untyped-decorator]
def send_message(account_id: AccountId, req: Annotated[SendIn, Body()]) -> dict[str, Any]:
    """Send through tsunagu: metered, quota-checked first (409 ``quota_exceeded`` says how many
    are left; nothing is sent), counted once per retry key."""
    authenticated(router, account_id)
    campaign = (req.campaign.id, req.campaign.cap) if req.campaign else None
    result: dict[str, Any] = wiring.billing_service().send(account_id, req.kind, req.body, req.retry_key, campaign)
    metrics.add_metric(name="MessagesSent", unit="Count", value=result["recipients"])
    return result


@router.get("/accounts/<account_id>/usage")  # type: ignore[untyped-decorator]
def usage(
    account_id: AccountId, month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None
) -> dict[str, Any]:
    """This month's messages and cost so far, live from the usage ledger."""
    authenticated(router, account_id)
    return wiring.billing_service().usage(account_id, month)


@router.post("/accounts/<account_id>/forecast")  # type: ignore[untyped-decorator]
def forecast(account_id: AccountId, req: Annotated[ForecastIn, Body()]) -> dict[str, Any]:
    """The cost and quota effect of a planned send of N billable messages on a day."""
    authenticated(router, account_id)
    return wiring.billing_service().forecast(account_id, req.messages, req.day)


@router.get("/accounts/<account_id>/plan")  # type: ignore[untyped-decorator]
def get_plan(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.billing_service().plan_view(account_id)


@router.post("/accounts/<account_id>/plan")  # type: ignore[untyped-decorator]
def change_plan(account_id: AccountId, req: Annotated[PlanIn, Body()]) -> dict[str, Any]:
    """R-PLAN-3: an upgrade applies today, a downgrade on the 1st of next month."""
    authenticated(router, account_id)
    return wiring.billing_service().change_plan(account_id, req.plan)


@router.post("/accounts/<account_id>/options", status_code=201)  # type: ignore[untyped-decorator]
def add_option(account_id: AccountId, req: Annotated[OptionIn, Body()]) -> dict[str, Any]:
    """Chat Plus, Call Plus or a premium ID (R-PLAN-4, R-PLAN-5)."""
    authenticated(router, account_id)
    return wiring.billing_service().add_option(account_id, req.option, req.start, req.end, req.yearly)


@router.put("/accounts/<account_id>/budget")  # type: ignore[untyped-decorator]
def set_budget(account_id: AccountId, req: Annotated[BudgetIn, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.billing_service().set_budget(account_id, req.monthly_yen, req.monthly_messages)


@router.post(  # type: ignore[untyped-decorator]
    "/accounts/<account_id>/calls",
    responses=errors(s409="Call Plus is not active, or the call is already recorded (call_plus_inactive, …)"),
)
def record_calls(account_id: AccountId, req: Annotated[CallsIn, Body()]) -> dict[str, Any]:
    """Call Plus minutes, 5 yen each (R-PLAN-5), counted once per call id."""
    authenticated(router, account_id)
    return wiring.billing_service().record_calls(account_id, req.call_id, req.minutes)


@router.get(
    "/accounts/<account_id>/invoices/<month>",
    responses=csv_or_json("the invoice (JSON, or a CSV file with format=csv)", {"type": "object"}),
)  # type: ignore[untyped-decorator]
def get_invoice(
    account_id: AccountId, month: Month, format: Annotated[Literal["json", "csv"], Query()] = "json"
) -> Any:
    """A closed month's invoice (immutable), as JSON or ``?format=csv``."""
    authenticated(router, account_id)
    doc = wiring.billing_service().invoice(account_id, month)
    if format == "csv":
        from tsunagu.billing.service import invoice_csv

        return csv_response(invoice_csv(doc), f"invoice-{account_id}-{month}")
    return doc


@router.get("/accounts/<account_id>/points/<month>")  # type: ignore[untyped-decorator]
def points(account_id: AccountId, month: Month) -> dict[str, Any]:
    """R-PTS-1 statements: points granted to contractor-linked customers that month."""
    authenticated(router, account_id)
    return {"month": month, "statements": wiring.billing_service().points(account_id, month)}


@router.get("/calendar/earliest-start")  # type: ignore[untyped-decorator]
def earliest_start(
    product: Annotated[Literal["notification", "chat_plus", "call_plus"], Query()],
    submitted_at: Annotated[datetime, Query(description="ISO 8601 with an offset, e.g. 2026-11-20T16:30:00+09:00")],
    calendar: Annotated[Literal["weekends", "jp_holidays", "jp_holidays_year_end"], Query()] = "weekends",
) -> dict[str, Any]:
    """R-BIZ-1: the earliest start date for an application submitted at ``submitted_at``
    (business days before the start, not counting it; 17:00 JST cut-off)."""
    from tsunagu.billing import calendar as cal

    if submitted_at.tzinfo is None:
        raise ValidationFailed("submitted_at needs a UTC offset (e.g. +09:00)", code="naive_datetime")
    years = cal.HOLIDAY_YEARS
    if not years.start <= submitted_at.year < years.stop - 1:  # the start may fall in the next year
        raise ValidationFailed(
            f"submitted_at must be in {years.start}-{years.stop - 2} (the holiday tables' range)",
            code="date_out_of_range",
        )
    start = cal.earliest_start(product, submitted_at, calendar)
    return {
        "product": product,
        "calendar": calendar,
        "submitted_at": submitted_at.isoformat(),
        "counted_from": cal.submission_day(submitted_at, calendar).isoformat(),
        "business_days": cal.LEAD_BUSINESS_DAYS[cal.Product(product)],
        "earliest_start": start.isoformat(),
    }
