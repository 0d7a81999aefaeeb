"""The business API: accounts (create, settings, channel credentials), friends, chats, the member
register and links, notification messages and coupons (routes in ``tsunagu.routes``)."""

import base64
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tsunagu import wiring
from tsunagu.accounts.domain import (
    AccountSettings,
    AccountSettingsPatch,
    AccountView,
    ChannelCredentials,
    CreatedAccount,
)
from tsunagu.billing import routes as billing_routes
from tsunagu.coupons import routes as coupon_routes
from tsunagu.http import build_resolver, openapi_document
from tsunagu.notifications import routes as notification_routes
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
accounts = wiring.account_service()
friends = wiring.friend_query()
chats = wiring.chat_export()
members = wiring.member_service()
MemberNumber = Annotated[str, Path(pattern=r"^(?:\d{4,12}|N\d{10})$")]


class MemberBatch(BaseModel):
    members: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class StaffUnlink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["member", "contractor", "user"]
    line_id: str | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


app = build_resolver()
app.include_router(notification_routes.router)
app.include_router(coupon_routes.router)
app.include_router(billing_routes.router)
AccountId = Annotated[str, Path(max_length=64)]
UserId = Annotated[str, Path(pattern=r"^U[0-9a-f]{32}$")]


def _auth(account_id: str):  # type: ignore[no-untyped-def]
    account = accounts.authenticate(app.current_event.headers.get("authorization"), account_id)
    logger.append_keys(account_id=account_id)
    return account


@app.post("/accounts", status_code=201)  # type: ignore[untyped-decorator]
def create_account(settings: Annotated[AccountSettings, Body()]) -> CreatedAccount:
    accounts.check_operator(app.current_event.headers.get("authorization"), wiring.operator_key().value())
    account, api_key = accounts.create(settings)
    metrics.add_metric(name="AccountsCreated", unit="Count", value=1)
    return CreatedAccount(**AccountView.of(account).model_dump(), api_key=api_key)


@app.get("/accounts/<account_id>")  # type: ignore[untyped-decorator]
def get_account(account_id: AccountId) -> AccountView:
    return AccountView.of(_auth(account_id))


@app.patch("/accounts/<account_id>")  # type: ignore[untyped-decorator]
def patch_account(account_id: AccountId, patch: Annotated[AccountSettingsPatch, Body()]) -> AccountView:
    """``plan`` here is the plan last asked for: the change goes through the plan history
    (R-PLAN-3: upgrades at once, downgrades on the 1st); ``GET …/plan`` shows what is in force."""
    account = _auth(account_id)
    if patch.plan is not None and patch.plan != account.settings.plan:
        wiring.billing_service().change_plan(account_id, str(patch.plan))
    return AccountView.of(accounts.update(account, patch))


@app.put("/accounts/<account_id>/channel")  # type: ignore[untyped-decorator]
def put_channel(account_id: AccountId, creds: Annotated[ChannelCredentials, Body()]) -> dict[str, Any]:
    accounts.put_channel(_auth(account_id), creds.channel_secret, creds.access_token)
    return {"account_id": account_id, "channel_configured": True}


@app.get("/accounts/<account_id>/friends")  # type: ignore[untyped-decorator]
def list_friends(account_id: AccountId) -> dict[str, Any]:
    _auth(account_id)
    q = app.current_event.query_string_parameters or {}
    return friends.page(account_id, q.get("limit"), q.get("after"))


@app.get("/accounts/<account_id>/friends/<user_id>")  # type: ignore[untyped-decorator]
def get_friend(account_id: AccountId, user_id: UserId) -> dict[str, Any]:
    _auth(account_id)
    return friends.one(account_id, user_id)


def _csv(export: tuple[str, str | None, int], name: str) -> Response[str]:
    body, cursor, rows = export
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"', "X-Row-Count": str(rows)}
    if cursor:
        headers["X-Next-Cursor"] = cursor
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=body, headers=headers)


@app.get("/accounts/<account_id>/chats")  # type: ignore[untyped-decorator]
def export_all_chats(account_id: AccountId) -> Response[str]:
    """All users' 1:1 history as CSV (R-HIST-1). Query: since, until (JST dates), limit, cursor."""
    _auth(account_id)
    q = app.current_event.query_string_parameters or {}
    export = chats.export(account_id, None, q.get("since"), q.get("until"), q.get("limit"), q.get("cursor"))
    return _csv(export, f"chats-{account_id}")


@app.get("/accounts/<account_id>/chats/<user_id>")  # type: ignore[untyped-decorator]
def export_user_chats(account_id: AccountId, user_id: UserId) -> Response[str]:
    """One user's 1:1 history as CSV (R-HIST-1). Query: since, until (JST dates), limit, cursor."""
    _auth(account_id)
    q = app.current_event.query_string_parameters or {}
    export = chats.export(account_id, user_id, q.get("since"), q.get("until"), q.get("limit"), q.get("cursor"))
    return _csv(export, f"chats-{account_id}-{user_id}")


@app.post("/accounts/<account_id>/members")  # type: ignore[untyped-decorator]
def import_members(account_id: AccountId, batch: Annotated[MemberBatch, Body()]) -> dict[str, Any]:
    """Import or update up to 1,000 members (JSON). Bad rows are reported, the rest imported."""
    _auth(account_id)
    return members.import_rows(account_id, batch.members)


@app.post("/accounts/<account_id>/members/import")  # type: ignore[untyped-decorator]
def import_members_csv(account_id: AccountId) -> dict[str, Any]:
    """Import members from CSV (UTF-8 or Shift_JIS; one row per contract line)."""
    _auth(account_id)
    ev = app.current_event
    raw = ev.get("body") or ""
    data = base64.b64decode(raw) if ev.is_base64_encoded else raw.encode()
    return members.import_csv(account_id, data)


@app.get("/accounts/<account_id>/members")  # type: ignore[untyped-decorator]
def list_members(account_id: AccountId) -> dict[str, Any]:
    _auth(account_id)
    q = app.current_event.query_string_parameters or {}
    return members.page(account_id, q.get("limit"), q.get("after"))


@app.get("/accounts/<account_id>/members/<member_number>")  # type: ignore[untyped-decorator]
def get_member(account_id: AccountId, member_number: MemberNumber) -> dict[str, Any]:
    """Which factors are on file (never their values), contract lines and link status (R-LINK-14)."""
    _auth(account_id)
    return members.get(account_id, member_number)


@app.post("/accounts/<account_id>/members/<member_number>/unlink")  # type: ignore[untyped-decorator]
def staff_unlink(
    account_id: AccountId, member_number: MemberNumber, req: Annotated[StaffUnlink, Body()]
) -> dict[str, Any]:
    """Staff release a link after checking identity (R-LINK-6); the reason goes to the audit trail."""
    _auth(account_id)
    return members.staff_unlink(account_id, member_number, req.kind, req.line_id, req.reason)


@app.get("/accounts/<account_id>/segments/linked")  # type: ignore[untyped-decorator]
def linked_segments(account_id: AccountId) -> dict[str, Any]:
    """Linked members vs unlinked friends (R-LINK-7)."""
    _auth(account_id)
    return members.segments(account_id)


@app.get("/accounts/<account_id>/link-audit")  # type: ignore[untyped-decorator]
def link_audit(account_id: AccountId) -> dict[str, Any]:
    _auth(account_id)
    return {"entries": members.audit(account_id)}


@app.get("/openapi.json")  # type: ignore[untyped-decorator]
def openapi() -> dict[str, Any]:
    doc = openapi_document(app)
    doc["paths"].update(coupon_routes.LEAN_OPENAPI)  # the lean redemption and coupon page functions
    return doc


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
