"""HTTP routes of accounts: create (operator key), settings, channel credentials."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from tsunagu import wiring
from tsunagu.accounts.domain import (
    AccountSettingsPatch,
    AccountView,
    ChannelCredentials,
    CreatedAccount,
    NewAccount,
)
from tsunagu.api import AccountId, authenticated
from tsunagu.api import router as new_router
from tsunagu.observability import metrics

router = new_router()


@router.post("/accounts", status_code=201)  # type: ignore[untyped-decorator]
def create_account(settings: Annotated[NewAccount, Body()]) -> CreatedAccount:
    accounts = wiring.account_service()
    accounts.check_operator(router.current_event.headers.get("authorization"), wiring.operator_key().value())
    account, api_key = accounts.create(settings)
    metrics.add_metric(name="AccountsCreated", unit="Count", value=1)
    return CreatedAccount(**AccountView.of(account).model_dump(), api_key=api_key)


@router.get("/accounts/<account_id>")  # type: ignore[untyped-decorator]
def get_account(account_id: AccountId) -> AccountView:
    return AccountView.of(authenticated(router, account_id))


@router.patch("/accounts/<account_id>")  # type: ignore[untyped-decorator]
def patch_account(account_id: AccountId, patch: Annotated[AccountSettingsPatch, Body()]) -> AccountView:
    """``plan`` here is the plan last asked for: the change goes through the plan history
    (R-PLAN-3: upgrades at once, downgrades on the 1st); ``GET …/plan`` shows what is in force."""
    account = authenticated(router, account_id)
    if patch.plan is not None and patch.plan != account.settings.plan:
        wiring.billing_service().change_plan(account_id, str(patch.plan))
    return AccountView.of(wiring.account_service().update(account, patch))


@router.put("/accounts/<account_id>/channel")  # type: ignore[untyped-decorator]
def put_channel(account_id: AccountId, creds: Annotated[ChannelCredentials, Body()]) -> dict[str, Any]:
    account = authenticated(router, account_id)
    wiring.account_service().put_channel(account, creds.channel_secret, creds.access_token)
    return {"account_id": account_id, "channel_configured": True}
