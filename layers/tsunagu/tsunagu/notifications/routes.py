"""HTTP routes of notification messages by phone number (included by the accounts API):
templates with review status, batches, batch reports and the CSV of the undelivered."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from tsunagu import wiring
from tsunagu.api import AccountId, authenticated, csv_or_json, csv_response, errors
from tsunagu.api import router as new_router
from tsunagu.observability import metrics

router = new_router()
TemplateId = Annotated[str, Path(pattern=r"^ntpl_[0-9a-f]{21}$")]
BatchId = Annotated[str, Path(pattern=r"^nb_[0-9a-f]{21}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TemplateIn(BaseModel):
    """``flexible``: content = {"messages": [1-5 LINE message objects, no image/video/audio]};
    ``template``: content = {"template_key": LINE's key, "body": {emphasizedItem, items, buttons}}.
    ``{{name}}`` placeholders are filled from each notification's parameters."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: Literal["flexible", "template"]
    content: dict[str, Any]


class TemplateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: Literal["flexible", "template"] | None = None
    content: dict[str, Any] | None = None


class Approval(BaseModel):
    """The outcome of LINE's UX review (done outside tsunagu), for the version reviewed."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt = Field(ge=1)
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class BatchIn(BaseModel):
    """Items: {"phone": "090-1234-5678" or "+66...", "reference": your id (unique per account),
    "parameters": {"name": "value"}}. Bad items are refused one by one, never the whole batch."""

    model_config = ConfigDict(extra="forbid")

    template_id: Annotated[str, StringConstraints(pattern=r"^ntpl_[0-9a-f]{21}$")]
    label: Annotated[str, StringConstraints(max_length=100)] | None = None
    items: list[Any] = Field(min_length=1, max_length=1000)


@router.post("/accounts/<account_id>/notification-templates", status_code=201)  # type: ignore[untyped-decorator]
def create_template(account_id: AccountId, t: Annotated[TemplateIn, Body()]) -> dict[str, Any]:
    """A new template starts ``pending``; advertising content is refused (R-PNP-3)."""
    authenticated(router, account_id)
    return wiring.notification_templates().create(account_id, t.name, t.kind, t.content)


@router.get("/accounts/<account_id>/notification-templates")  # type: ignore[untyped-decorator]
def list_templates(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"templates": wiring.notification_templates().list(account_id)}


@router.get("/accounts/<account_id>/notification-templates/<template_id>")  # type: ignore[untyped-decorator]
def get_template(account_id: AccountId, template_id: TemplateId) -> dict[str, Any]:
    authenticated(router, account_id)
    templates = wiring.notification_templates()
    return templates.view(templates.get(account_id, template_id))


@router.patch("/accounts/<account_id>/notification-templates/<template_id>")  # type: ignore[untyped-decorator]
def change_template(
    account_id: AccountId, template_id: TemplateId, c: Annotated[TemplateChange, Body()]
) -> dict[str, Any]:
    """Any change of content sends the template back to ``pending`` (a new review)."""
    authenticated(router, account_id)
    return wiring.notification_templates().update(account_id, template_id, c.name, c.kind, c.content)


@router.post("/accounts/<account_id>/notification-templates/<template_id>/approve")  # type: ignore[untyped-decorator]
def approve_template(account_id: AccountId, template_id: TemplateId, a: Annotated[Approval, Body()]) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.notification_templates().approve(account_id, template_id, a.version, a.note)


@router.post(  # type: ignore[untyped-decorator]
    "/accounts/<account_id>/notifications",
    status_code=202,
    responses=errors(s403="the account may not send notification messages, or the template is not approved"),
)
def submit_batch(account_id: AccountId, batch: Annotated[BatchIn, Body()]) -> dict[str, Any]:
    """Accept up to 1,000 notifications; each is refused or accepted on its own; a reference
    already accepted is reported as a duplicate and sent once."""
    account = authenticated(router, account_id)
    result: dict[str, Any] = wiring.notification_batches().submit(
        account_id, account.settings.model_dump(mode="json"), batch.template_id, batch.items, batch.label
    )
    metrics.add_metric(name="NotificationsAccepted", unit="Count", value=result["accepted"])
    metrics.add_metric(name="NotificationsRefused", unit="Count", value=len(result["refused"]))
    return result


@router.get("/accounts/<account_id>/notifications")  # type: ignore[untyped-decorator]
def list_batches(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    return {"batches": wiring.notification_batches().list(account_id)}


@router.get("/accounts/<account_id>/notifications/<batch_id>")  # type: ignore[untyped-decorator]
def batch_report(account_id: AccountId, batch_id: BatchId) -> dict[str, Any]:
    """Counts by state and every notification's state (sent, delivered, undelivered after 24
    hours, failed with LINE's reason)."""
    authenticated(router, account_id)
    return wiring.notification_batches().report(account_id, batch_id)


@router.get(
    "/accounts/<account_id>/notifications/<batch_id>/undelivered",
    responses=csv_or_json("the numbers not delivered, as CSV (hashes only)"),
)  # type: ignore[untyped-decorator]
def undelivered_csv(account_id: AccountId, batch_id: BatchId) -> Response[str]:
    """CSV of the references nobody received, for an SMS or mail fallback."""
    authenticated(router, account_id)
    body, rows = wiring.notification_batches().undelivered_csv(account_id, batch_id)
    return csv_response(body, f"undelivered-{batch_id}", {"X-Row-Count": str(rows)})
