"""HTTP routes of messaging: friend state and counts, the 1:1 chat history as CSV (R-HIST-1)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from tsunagu import wiring
from tsunagu.api import AccountId, UserId, authenticated, csv_response
from tsunagu.api import router as new_router

router = new_router()


@router.get("/accounts/<account_id>/friends")  # type: ignore[untyped-decorator]
def list_friends(account_id: AccountId) -> dict[str, Any]:
    authenticated(router, account_id)
    q = router.current_event.query_string_parameters or {}
    return wiring.friend_query().page(account_id, q.get("limit"), q.get("after"))


@router.get("/accounts/<account_id>/friends/<user_id>")  # type: ignore[untyped-decorator]
def get_friend(account_id: AccountId, user_id: UserId) -> dict[str, Any]:
    authenticated(router, account_id)
    return wiring.friend_query().one(account_id, user_id)


def _chats(account_id: str, user_id: str | None, name: str) -> Response[str]:
    q = router.current_event.query_string_parameters or {}
    body, cursor, rows = wiring.chat_export().export(
        account_id, user_id, q.get("since"), q.get("until"), q.get("limit"), q.get("cursor")
    )
    headers = {"X-Row-Count": str(rows), **({"X-Next-Cursor": cursor} if cursor else {})}
    return csv_response(body, name, headers)


@router.get("/accounts/<account_id>/chats")  # type: ignore[untyped-decorator]
def export_all_chats(account_id: AccountId) -> Response[str]:
    """All users' 1:1 history as CSV (R-HIST-1). Query: since, until (JST dates), limit, cursor."""
    authenticated(router, account_id)
    return _chats(account_id, None, f"chats-{account_id}")


@router.get("/accounts/<account_id>/chats/<user_id>")  # type: ignore[untyped-decorator]
def export_user_chats(account_id: AccountId, user_id: UserId) -> Response[str]:
    """One user's 1:1 history as CSV (R-HIST-1). Query: since, until (JST dates), limit, cursor."""
    authenticated(router, account_id)
    return _chats(account_id, user_id, f"chats-{account_id}-{user_id}")
