"""HTTP routes of the help desk: the FAQ (JSON or CSV), a dry-run answer, operator hours, the
operator queue with its metrics, operator replies and the hand-back (R-HELP-1, R-PLAN-5)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tsunagu import wiring
from tsunagu.api import AccountId, UserId, authenticated, errors, uploaded_bytes
from tsunagu.api import router as new_router

router = new_router()
Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class FaqIn(BaseModel):
    entries: list[dict[str, Any]] = Field(
        min_length=1, max_length=500, description="faq_id, question, answer, category"
    )
    replace: bool = Field(default=False, description="also delete the entries not sent")


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class HoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: Clock | None = None
    close: Clock | None = None
    calendar: (
        Annotated[str, StringConstraints(pattern=r"^(weekends|jp_holidays|jp_holidays_year_end|every_day)$")] | None
    ) = None
    wait_timeout_min: int | None = Field(default=None, ge=1, le=1440)
    idle_timeout_min: int | None = Field(default=None, ge=1, le=1440)
    handle_min: int | None = Field(default=None, ge=1, le=120)
    threshold: float | None = Field(default=None, ge=0, le=1)

    @field_validator("threshold")
    @classmethod
    def _three_places(cls, v: float | None) -> float | None:
        # A score threshold needs no more than three places; rounding also keeps subnormal floats
        # (2e-313) from reaching DynamoDB's Decimal context, which refuses them.
        return None if v is None else round(v, 3)


class OperatorReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


@router.post("/accounts/<account_id>/faq")  # type: ignore[untyped-decorator]
def load_faq(account_id: AccountId, body: Annotated[FaqIn, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.help_desk().load_faq(account_id, body.entries, body.replace)


@router.post("/accounts/<account_id>/faq/import")  # type: ignore[untyped-decorator]
def import_faq_csv(
    account_id: AccountId,
    replace: Annotated[bool, Query(description="also delete the entries not in the file")] = False,
) -> dict[str, Any]:
    """FAQ from CSV (faq_id, question, answer[, category]); ``?replace=true`` drops the rest."""
    authenticated(router, account_id)
    return wiring.help_desk().load_faq_csv(account_id, uploaded_bytes(router), replace)


@router.get("/accounts/<account_id>/faq")  # type: ignore[untyped-decorator]
def list_faq(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"entries": wiring.help_desk().faq(account_id)}


@router.post("/accounts/<account_id>/helpdesk/ask")  # type: ignore[untyped-decorator]
def ask(account_id: AccountId, body: Annotated[AskIn, Body()]) -> dict[str, Any]:
    """What the answerer would reply, and whether it would escalate (changes nothing)."""
    authenticated(router, account_id)
    return wiring.help_desk().ask(account_id, body.question)


@router.get("/accounts/<account_id>/helpdesk/settings")  # type: ignore[untyped-decorator]
def get_settings(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.help_desk().settings(account_id)


@router.put("/accounts/<account_id>/helpdesk/settings")  # type: ignore[untyped-decorator]
def put_settings(account_id: AccountId, body: Annotated[HoursIn, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.help_desk().put_settings(account_id, body.model_dump(exclude_none=True))


@router.get("/accounts/<account_id>/helpdesk/queue")  # type: ignore[untyped-decorator]
def queue(account_id: AccountId) -> dict[str, Any]:
    """Who waits for an operator (oldest first), who is queued for opening, and today's metrics."""
    authenticated(router, account_id)
    return wiring.help_desk().queue(account_id)


@router.post(
    "/accounts/<account_id>/helpdesk/conversations/<user_id>/replies",
    responses=errors(s409="the conversation is not with an operator (not_escalated)"),
)  # type: ignore[untyped-decorator]
def operator_reply(account_id: AccountId, user_id: UserId, body: Annotated[OperatorReplyIn, Body()]) -> dict[str, Any]:
    """An operator's answer: a reply while the member's reply token is valid, else a push;
    metered as ``chat`` (not an additional message with Chat Plus, R-PLAN-5)."""
    authenticated(router, account_id)
    return wiring.help_desk().operator_reply(account_id, user_id, body.text, body.request_id)


@router.post(
    "/accounts/<account_id>/helpdesk/conversations/<user_id>/handback",
    responses=errors(s409="the conversation is already with the bot (not_escalated)"),
)  # type: ignore[untyped-decorator]
def hand_back(account_id: AccountId, user_id: UserId) -> dict[str, Any]:
    """The operator hands the chat back to the bot."""
    authenticated(router, account_id)
    return wiring.help_desk().hand_back(account_id, user_id)
