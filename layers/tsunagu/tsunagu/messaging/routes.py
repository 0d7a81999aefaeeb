"""HTTP routes of messaging: friend state and counts, the 1:1 chat history as CSV (R-HIST-1)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from tsunagu import wiring
from tsunagu.api import AccountId, After, JstDay, UserId, authenticated, csv_or_json, csv_response, iso
from tsunagu.api import router as new_router
from tsunagu.messaging.chat_service import MAX_PAGE

router = new_router()


@router.get("/accounts/<account_id>/friends")  # type: ignore[untyped-decorator]
def list_friends(
    account_id: AccountId, limit: Annotated[int, Query(ge=1, le=500)] = 100, after: After = None
) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.friend_query().page(account_id, limit, after)


@router.get("/accounts/<account_id>/friends/<user_id>")  # type: ignore[untyped-decorator]
def get_friend(account_id: AccountId, user_id: UserId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.friend_query().one(account_id, user_id)


ChatLimit = Annotated[int | None, Query(ge=1, le=MAX_PAGE, description=f"rows per page (default {MAX_PAGE})")]
Cursor = Annotated[str | None, Query(max_length=2048, description="the X-Next-Cursor of the previous page")]


def _chats(
    account_id: str,
    user_id: str | None,
    name: str,
    since: date | None,
    until: date | None,
    limit: int | None,
    cursor: str | None,
) -> Response[str]:
    body, cursor, rows = wiring.chat_export().export(account_id, user_id, iso(since), iso(until), limit, cursor)
    headers = {"X-Row-Count": str(rows), **({"X-Next-Cursor": cursor} if cursor else {})}
    return csv_response(body, name, headers)


@router.get("/accounts/<account_id>/chats", responses=csv_or_json("a page of the history as CSV (UTF-8 with BOM)"))  # type: ignore[untyped-decorator]
def export_all_chats(
    account_id: AccountId, since: JstDay = None, until: JstDay = None, limit: ChatLimit = None, cursor: Cursor = None
) -> Response[str]:
    """All users' 1:1 history as CSV (R-HIST-1), a page at a time."""
    authenticated(router, account_id)
    return _chats(account_id, None, f"chats-{account_id}", since, until, limit, cursor)


@router.get(
    "/accounts/<account_id>/chats/<user_id>", responses=csv_or_json("a page of the history as CSV (UTF-8 with BOM)")
)  # type: ignore[untyped-decorator]
def export_user_chats(
    account_id: AccountId,
    user_id: UserId,
    since: JstDay = None,
    until: JstDay = None,
    limit: ChatLimit = None,
    cursor: Cursor = None,
) -> Response[str]:
    """One user's 1:1 history as CSV (R-HIST-1), a page at a time."""
    authenticated(router, account_id)
    return _chats(account_id, user_id, f"chats-{account_id}-{user_id}", since, until, limit, cursor)
