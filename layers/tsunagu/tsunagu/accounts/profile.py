"""What the workers need of an account, read without pydantic.

Settings are validated once, at the edge, when the API stores them (``domain.accounts``); the
workers and the webhook intake read them back as plain frozen dataclasses. That keeps pydantic
and the settings models (~0.13 s of imports) off their cold start (docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AutoReplyRule:
    keywords: tuple[str, ...]
    match: str  # exact | contains
    reply: str


@dataclass(frozen=True, slots=True)
class AccountProfile:
    account_id: str
    greeting: str | None = None
    auto_responses: tuple[AutoReplyRule, ...] = ()
    catch_all_reply: str | None = None
    chat_retention_days: int = 365
    forward_urls: tuple[str, ...] = ()
    link_policy: tuple[tuple[str, ...], ...] = ()  # accepted factor combinations (R-LINK-1/9/14)
    account_type: str = "unverified"  # R-PNP-3 (with certified_provider)
    certified_provider: bool = False

    @classmethod
    def from_settings(cls, account_id: str, settings: dict[str, Any]) -> AccountProfile:
        """From the stored settings map (the JSON dump of ``AccountSettings``)."""
        rules = tuple(
            AutoReplyRule(
                tuple(str(k) for k in ar.get("keywords", [])), str(ar.get("match", "exact")), str(ar["reply"])
            )
            for ar in settings.get("auto_responses") or []
        )
        return cls(
            account_id=account_id,
            greeting=settings.get("greeting"),
            auto_responses=rules,
            catch_all_reply=settings.get("catch_all_reply"),
            chat_retention_days=int(settings.get("chat_retention_days") or 365),
            forward_urls=tuple(settings.get("forward_urls") or ()),
            link_policy=tuple(tuple(c) for c in (settings.get("link_policy") or {}).get("accepted", [])),
            account_type=str(settings.get("account_type") or "unverified"),
            certified_provider=bool(settings.get("certified_provider")),
        )
