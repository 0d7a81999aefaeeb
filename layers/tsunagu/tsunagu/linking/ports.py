"""What linking depends on, as Protocols: the member register, the link store (links, nonces,
sessions, attempt counters, audit), the per-account factor key. The stores implement them;
notifications and coupons read the register and links through these same ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tsunagu.linking.register import MemberRecord


class MemberRegister(Protocol):
    def find(self, account_id: str, kind: str, factor_hash: str) -> tuple[str, str | None] | None: ...
    def get(self, account_id: str, member_number: str) -> MemberRecord | None: ...
    def page(self, account_id: str, limit: int, after: str | None) -> tuple[list[str], str | None]: ...
    def put(self, account_id: str, records: list[MemberRecord]) -> None: ...
    def by_phone(self, account_id: str, phone_hash: str) -> list[str]: ...


class LinkedMembers(Protocol):
    """Who is linked: read by coupons (R-LINK-7: linked users are members) and notifications."""

    def target(self, account_id: str, target: str) -> dict[str, Any] | None: ...
    def user_links(self, account_id: str, user_id: str) -> list[dict[str, Any]]: ...
    def linked_users(
        self, account_id: str, limit: int, after: dict[str, Any] | None
    ) -> tuple[list[str], dict[str, Any] | None]: ...


class LinkStore(LinkedMembers, Protocol):
    def add_failure(self, account_id: str, subject: str, window: int, expires_at: int, delta: int = 1) -> int: ...
    def failures(self, account_id: str, subject: str, window: int) -> int: ...
    def get_nonce(self, account_id: str, nonce: str) -> dict[str, Any] | None: ...
    def put_nonce(
        self, account_id: str, nonce: str, user_id: str, target: str, member_number: str, expires_at: int
    ) -> None: ...
    def get_session(self, account_id: str, session_id: str) -> dict[str, Any] | None: ...
    def put_session(
        self, account_id: str, session_id: str, user_id: str, link_token: str, csrf: str, expires_at: int
    ) -> None: ...
    def link(
        self,
        account_id: str,
        nonce: str,
        user_id: str,
        target: str,
        member_number: str,
        contractor_target: str | None,
    ) -> str | None: ...
    def unlink(
        self, account_id: str, target: str, actor: str, reason: str | None, expected_user: str | None = None
    ) -> str | None: ...
    def audit_trail(self, account_id: str, limit: int = 100) -> list[dict[str, Any]]: ...


class KeyRing(Protocol):
    """A secret key per account (factor hashing, coupon codes), kept in Secrets Manager."""

    def key(self, account_id: str) -> bytes: ...


class FactTagger(Protocol):
    """The audiences capability's automatic tags on facts (campaigns room): a link made or
    released, a coupon granted or redeemed, may add or remove tags by the account's rules."""

    def on_fact(self, account_id: str, user_id: str, on: str, value: str = "") -> int: ...
