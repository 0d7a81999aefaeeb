"""Notification messages by phone number (R-PNP-1 ... R-PNP-5).

- ``NotificationTemplates``: templates with review status (pending until approved; a content
  change sends one back to pending; advertising refused).
- ``NotificationBatches``: a batch is checked item by item (E.164, allowed countries, reference,
  parameters), stored, and queued one SQS message per notification; reports and the CSV of the
  undelivered.
- ``NotificationSender`` (SQS worker): claims a notification, routes it (push to a linked friend,
  or a notification message to the hashed number), calls LINE at the channel's rate with retries
  on 5xx / timeouts, records the result and the usage-ledger entry once.
- ``DeliveryReconciler`` (the ``delivery`` webhook event) and ``NotificationSweep`` (24 hours).

No pydantic here: the sender and the event worker import this module on their cold start.
"""

from __future__ import annotations

import csv
import io
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tsunagu.errors import (
    Conflict,
    DomainError,
    Forbidden,
    LineRateLimited,
    LineRefused,
    NotFound,
    UpstreamError,
    ValidationFailed,
)
from tsunagu.linking.domain import factor_hash
from tsunagu.notifications import domain as n
from tsunagu.notifications.phone import line_hash
from tsunagu.ratelimit import TokenBucket

if TYPE_CHECKING:
    from tsunagu.accounts.ports import AccountStore, ChannelSecrets
    from tsunagu.linking.ports import KeyRing, LinkedMembers, MemberRegister
    from tsunagu.messaging.ports import FriendStore
    from tsunagu.notifications.ports import LineNotifications, NotificationStore, SendQueue

JST_OFFSET_MS = 9 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: Any) -> str | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="seconds") if ms else None


def new_id(prefix: str) -> str:
    """Time-ordered id: sorts by creation (batches are listed newest first)."""
    return f"{prefix}_{_now_ms():013d}{secrets.token_hex(4)}"


# ----------------------------------------------------------------------------- templates
@dataclass
class NotificationTemplates:
    store: NotificationStore

    @staticmethod
    def view(t: dict[str, Any]) -> dict[str, Any]:
        return {
            "template_id": t["template_id"],
            "name": t["name"],
            "kind": t["kind"],
            "content": t["content"],
            "status": t["status"],
            "version": int(t["version"]),
            "parameters": sorted(n.placeholders(t["content"])),
            "created_at": _iso(t["created_at"]),
            "updated_at": _iso(t["updated_at"]),
            "approved_at": _iso(t.get("approved_at")),
            "review_note": t.get("review_note"),
        }

    @staticmethod
    def _checked(kind: str, content: dict[str, Any]) -> None:
        try:
            n.check_template(kind, content)
        except n.TemplateInvalid as e:
            raise ValidationFailed(e.message, code=e.code) from None

    def create(self, account_id: str, name: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        self._checked(kind, content)
        now = _now_ms()
        tpl = {
            "template_id": new_id("ntpl"),
            "name": name,
            "kind": kind,
            "content": content,
            "digest": n.content_digest(kind, content),
            "status": n.PENDING,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        self.store.put_template(account_id, tpl)
        return self.view(tpl)

    def get(self, account_id: str, template_id: str) -> dict[str, Any]:
        t = self.store.template(account_id, template_id)
        if t is None:
            raise NotFound("no such notification template", code="template_not_found")
        return t

    def list(self, account_id: str) -> list[dict[str, Any]]:
        return [self.view(t) for t in self.store.templates(account_id)]

    def update(
        self, account_id: str, template_id: str, name: str | None, kind: str | None, content: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Any change of content sends the template back to ``pending`` (R-PNP-3: a new or
        changed message needs a new review); a new name alone keeps its status."""
        t = self.get(account_id, template_id)
        new_kind = kind or t["kind"]
        new_content = content if content is not None else t["content"]
        self._checked(new_kind, new_content)
        digest = n.content_digest(new_kind, new_content)
        changed = digest != t["digest"]
        updated = {
            **{k: v for k, v in t.items() if k not in ("PK", "SK", "entity")},
            "name": name or t["name"],
            "kind": new_kind,
            "content": new_content,
            "digest": digest,
            "version": int(t["version"]) + 1,
            "updated_at": _now_ms(),
        }
        if changed:
            updated.update(status=n.PENDING, approved_at=None, review_note=None)
        if not self.store.put_template(account_id, updated, expected_version=int(t["version"])):
            raise Conflict("the template changed meanwhile; read it again", code="version_conflict")
        return self.view(updated)

    def approve(self, account_id: str, template_id: str, version: int, note: str | None) -> dict[str, Any]:
        """Record the outcome of LINE's UX review (done outside tsunagu) for one version."""
        t = self.get(account_id, template_id)
        if int(t["version"]) != version:
            raise Conflict(
                f"version {version} is not the current version ({int(t['version'])}); review the current content",
                code="version_conflict",
            )
        approved = {
            **{k: v for k, v in t.items() if k not in ("PK", "SK", "entity")},
            "status": n.APPROVED,
            "approved_at": _now_ms(),
            "review_note": note,
            "version": version + 1,
            "updated_at": _now_ms(),
        }
        if not self.store.put_template(account_id, approved, expected_version=version):
            raise Conflict("the template changed meanwhile; read it again", code="version_conflict")
        return self.view(approved)


# ----------------------------------------------------------------------------- batches
@dataclass
class NotificationBatches:
    store: NotificationStore
    templates: NotificationTemplates
    factor_keys: KeyRing
    queue: SendQueue

    def submit(
        self,
        account_id: str,
        settings: dict[str, Any],
        template_id: str,
        items: list[Any],
        label: str | None = None,
    ) -> dict[str, Any]:
        problem = n.eligibility_problem(str(settings.get("account_type")), bool(settings.get("certified_provider")))
        if problem:
            raise Forbidden(
                f"this account may not send LINE notification messages: {problem} (R-PNP-3)",
                code="notification_not_allowed",
            )
        if not 1 <= len(items) <= n.MAX_ITEMS_PER_BATCH:
            raise ValidationFailed(
                f"send 1 to {n.MAX_ITEMS_PER_BATCH} notifications per batch (split larger files)", code="batch_size"
            )
        t = self.templates.get(account_id, template_id)
        if t["status"] != n.APPROVED:
            raise Conflict(
                "the template is not approved; only approved templates can be sent", code="template_not_approved"
            )
        countries = settings.get("notification_countries") or list(n.DEFAULT_COUNTRIES)
        routing = settings.get("notification_routing") or n.ROUTING_PUSH_TO_FRIENDS
        batch_id = new_id("nb")
        batch = {
            "batch_id": batch_id,
            "template_id": template_id,
            "template_version": int(t["version"]),
            "kind": t["kind"],
            "content": t["content"],
            "routing": routing,
            "label": label,
            "created_at": _now_ms(),
            "submitted": len(items),
            "status": "receiving",
        }
        # The batch (with the content it was accepted with) exists before any notification
        # that points at it, so a sender never meets a notification without its content.
        self.store.put_batch(account_id, batch)
        key = self.factor_keys.key(account_id) if routing == n.ROUTING_PUSH_TO_FRIENDS else None
        refused: list[dict[str, Any]] = []
        duplicates: list[dict[str, Any]] = []
        messages: list[str] = []
        seen: set[str] = set()
        accepted = 0
        for index, raw in enumerate(items):
            try:
                item = n.accept_item(account_id, index, raw, countries, t["kind"], t["content"])
            except n.ItemRefused as e:
                ref = raw.get("reference") if isinstance(raw, dict) else None
                ref = ref if isinstance(ref, str) and n.REFERENCE.fullmatch(ref) else None  # never echo junk
                refused.append({"index": index, "reference": ref, "code": e.code, "message": e.message[:200]})
                continue
            if item.tag in seen:
                duplicates.append({"index": index, "reference": item.reference, "batch_id": batch_id})
                continue
            seen.add(item.tag)
            target_batch = batch_id
            if self.store.add(account_id, batch_id, index, item, {"template_id": template_id}):
                accepted += 1
            else:
                existing = self.store.get(account_id, item.tag) or {}
                target_batch = existing.get("batch_id", batch_id)
                duplicates.append({"index": index, "reference": item.reference, "batch_id": target_batch})
                if existing.get("state") != n.ACCEPTED:
                    continue
                # Stored but never sent (the earlier request died before queueing it): queue it
                # again - the sender's claim makes a second message for it harmless.
            messages.append(self._message(account_id, target_batch, item, key))
        if messages:
            self.queue.send("notify", messages)
        batch.update(
            status="queued",
            accepted=accepted,
            # codes only: 1,000 refusals with their messages could pass DynamoDB's 400 KB item
            refused=[{k: r[k] for k in ("index", "reference", "code")} for r in refused],
            duplicates=duplicates,
        )
        self.store.put_batch(account_id, batch)
        return {
            "batch_id": batch_id,
            "submitted": len(items),
            "accepted": accepted,
            "refused": refused,
            "duplicates": duplicates,
        }

    @staticmethod
    def _message(account_id: str, batch_id: str, item: n.AcceptedItem, key: bytes | None) -> str:
        """What the sender needs and nothing more: LINE's hash of the number (computed here,
        when it is sent, never stored), the keyed hash the member register uses (to find a
        linked friend), and the parameters."""
        domestic = n.domestic_jp(item.e164)
        member_key = factor_hash(key, "phone", domestic) if key is not None and domestic else None
        body = {
            "a": account_id,
            "b": batch_id,
            "t": item.tag,
            "to": line_hash(item.e164),
            "mk": member_key,
            "p": item.params,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    def _batch(self, account_id: str, batch_id: str) -> dict[str, Any]:
        b = self.store.batch(account_id, batch_id)
        if b is None:
            raise NotFound("no such notification batch", code="batch_not_found")
        return b

    def report(self, account_id: str, batch_id: str) -> dict[str, Any]:
        b = self._batch(account_id, batch_id)
        rows = sorted(self.store.batch_notifications(account_id, batch_id), key=lambda r: int(r["seq"]))
        return {
            "batch_id": batch_id,
            "template_id": b["template_id"],
            "label": b.get("label"),
            "created_at": _iso(b["created_at"]),
            "submitted": int(b["submitted"]),
            "accepted": int(b.get("accepted", 0)),
            "refused": len(b.get("refused", [])),
            "duplicates": len(b.get("duplicates", [])),
            "counts": n.report_counts(r["state"] for r in rows),
            "notifications": [
                {
                    "index": int(r["seq"]),
                    "reference": r["reference"],
                    "state": r["state"],
                    "route": r.get("route"),
                    "reason": r.get("reason"),
                    "sent_at": _iso(r.get("sent_at")),
                    "delivered_at": _iso(r.get("delivered_at")),
                }
                for r in rows
            ],
            "refusals": b.get("refused", []),
            "duplicate_items": b.get("duplicates", []),
        }

    def undelivered_csv(self, account_id: str, batch_id: str) -> tuple[str, int]:
        """The notifications that did not reach anyone (undelivered after 24 hours, or refused by
        LINE), for the business's SMS or mail fallback: by its own reference, never a number."""
        self._batch(account_id, batch_id)
        rows = sorted(self.store.batch_notifications(account_id, batch_id), key=lambda r: int(r["seq"]))
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(["reference", "state", "reason", "sent_at"])
        count = 0
        for r in rows:
            if r["state"] in (n.UNDELIVERED, n.FAILED):
                w.writerow([r["reference"], r["state"], r.get("reason") or "", _iso(r.get("sent_at")) or ""])
                count += 1
        return "\ufeff" + out.getvalue(), count

    def list(self, account_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return [
            {
                "batch_id": b["batch_id"],
                "template_id": b["template_id"],
                "label": b.get("label"),
                "created_at": _iso(b["created_at"]),
                "submitted": int(b["submitted"]),
                "accepted": int(b.get("accepted", 0)),
            }
            for b in self.store.batches(account_id, limit)
        ]


# ----------------------------------------------------------------------------- sender
class RetryLater(UpstreamError):
    code = "retry_later"


class RateLimitedLater(RetryLater):
    """LINE answered 429: nothing was sent; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


# LINE's 429 without a Retry-After: wait a second (push and PNP allow 2,000 requests/s). A message
# timer is at most 15 minutes (SQS). After this many rate-limited rounds a notification goes the
# ordinary way (visibility timeout, then the DLQ) so a channel LINE keeps refusing is noticed.
DEFAULT_RETRY_AFTER_S = 1
MAX_DELAY_S = 900
MAX_RATE_LIMITED_ROUNDS = 20


@dataclass
class SenderConfig:
    lease_ms: int = 60_000
    attempts: int = 3  # calls per SQS delivery before handing the message back to the queue
    backoff_s: float = 0.2  # first backoff; doubles, with jitter
    rate_per_second: float = 2000.0  # this instance's share of the channel's limit


@dataclass
class NotificationSender:
    store: NotificationStore
    register: MemberRegister
    links: LinkedMembers
    friends: FriendStore
    secrets: ChannelSecrets
    line: LineNotifications
    config: SenderConfig = field(default_factory=SenderConfig)
    sleep: Callable[[float], None] = time.sleep
    accounts: Any = None  # AccountStore (profile): R-PNP-3 is checked again at send time
    # The notification queue: a notification LINE rate-limited goes back on it with a message
    # timer of LINE's Retry-After (without it, the SQS visibility timeout decides when).
    queue: SendQueue | None = None
    _batches: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _eligibility: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def _batch(self, account_id: str, batch_id: str) -> dict[str, Any]:
        key = (account_id, batch_id)
        if key not in self._batches:
            b = self.store.batch(account_id, batch_id)
            if b is None:
                raise RetryLater("the batch is not stored yet")
            self._batches[key] = b
        return self._batches[key]

    def _ineligible(self, account_id: str) -> str | None:
        """Why the account may not send notification messages now (R-PNP-3), read at most once
        a minute per account; None when it may (or when no account store is wired)."""
        if self.accounts is None:
            return None
        now = time.monotonic()
        cached = self._eligibility.get(account_id)
        if cached is None or now - cached[0] > 60:
            profile = self.accounts.profile(account_id)
            problem = (
                "the account no longer exists"
                if profile is None
                else n.eligibility_problem(profile.account_type, profile.certified_provider)
            )
            cached = self._eligibility[account_id] = (now, problem)
        return cached[1]

    def _friend_user(self, account_id: str, member_key: str | None) -> str | None:
        """The one LINE user, linked to a member with this phone, who is a friend right now."""
        if not member_key:
            return None
        users: set[str] = set()
        for member in self.register.by_phone(account_id, member_key):
            for target in (f"MEMBER#{member}", f"CONTRACTOR#{member}"):
                link = self.links.target(account_id, target)
                if link:
                    users.add(link["user_id"])
        if len(users) != 1:
            return None  # nobody linked, or a shared number linked to several people: let LINE match
        user = users.pop()
        friend = self.friends.get(account_id, user)
        return user if friend is not None and friend.state == "friend" else None

    def send(self, msg: dict[str, Any]) -> str:
        account_id, tag = msg["a"], msg["t"]
        claim, item = self.store.claim(account_id, tag, self.config.lease_ms)
        if claim is None:
            if item is None:
                return "unknown_notification"
            if item["state"] == n.SENDING:
                raise RetryLater("another sender holds this notification")
            return "already_sent" if item["state"] != n.ACCEPTED else "lost_race"
        problem = self._ineligible(account_id)
        if problem:  # the account lost R-PNP-3 eligibility after the batch was accepted
            self.store.fail(account_id, tag, claim, "notification_not_allowed", 0, n.ROUTE_PNP)
            return "failed"
        batch = self._batch(account_id, msg["b"])
        try:
            body = n.render(batch["kind"], batch["content"], msg.get("p") or {})
        except n.ItemRefused as e:
            self.store.fail(account_id, tag, claim, e.code, 0, n.ROUTE_PNP)
            return "failed"
        user = (
            self._friend_user(account_id, msg.get("mk")) if batch.get("routing") == n.ROUTING_PUSH_TO_FRIENDS else None
        )
        route = n.choose_route(batch.get("routing", ""), batch["kind"], user is not None)
        token = self.secrets.access_token(account_id)
        if not token:
            self.store.release(account_id, tag, claim, "channel_not_configured")
            raise RetryLater("the account has no channel access token")
        if route == n.ROUTE_PUSH and user is not None:  # choose_route pushes only to a known friend
            retry_key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tsunagu:{account_id}:{tag}"))

            def call() -> None:
                self.line.push(token, user, body["messages"], retry_key)

        else:

            def call() -> None:
                self.line.pnp_push(token, msg["to"], body, tag)

        try:
            return self._deliver(account_id, tag, claim, route, call)
        except RateLimitedLater as e:
            rounds = int(msg.get("rl") or 0)
            if self.queue is None or rounds >= MAX_RATE_LIMITED_ROUNDS:
                raise
            # Try again when LINE said, not sooner: the same message, due after Retry-After.
            self.queue.send_later("notify", json.dumps({**msg, "rl": rounds + 1}), e.retry_after)
            return "rate_limited"

    def _bucket(self, account_id: str) -> TokenBucket:
        if account_id not in self._buckets:
            self._buckets[account_id] = TokenBucket(self.config.rate_per_second, sleep=self.sleep)
        return self._buckets[account_id]

    def _deliver(self, account_id: str, tag: str, claim: str, route: str, call: Callable[[], None]) -> str:

        last = ""
        for attempt in range(self.config.attempts):
            self._bucket(account_id).acquire()
            try:
                call()
            except LineRateLimited as e:  # 429: LINE accepted nothing; calling again now won't help
                if e.monthly:  # the month's message limit (a push): final for this notification
                    self.store.fail(account_id, tag, claim, "line_monthly_limit", 429, route)
                    return "failed"
                self.store.release(account_id, tag, claim, "rate_limited")
                wait = e.retry_after if e.retry_after is not None else DEFAULT_RETRY_AFTER_S
                raise RateLimitedLater("LINE's rate limit", min(MAX_DELAY_S, max(1, wait))) from None
            except LineRefused as e:  # 4xx: final (LINE's 422 = nobody reachable at that number)
                self.store.fail(
                    account_id, tag, claim, n.failure_reason(e.http_status, e.message), e.http_status, route
                )
                return "failed"
            except DomainError as e:  # 5xx, 429, timeout: back off and try again
                last = e.message
                if attempt + 1 < self.config.attempts:
                    self.sleep(self.config.backoff_s * (2**attempt) * (0.5 + random.random()))  # noqa: S311
                continue
            kind = "push" if route == n.ROUTE_PUSH else "notification"
            return self.store.mark_sent(account_id, tag, claim, route, kind, tag, _now_ms())
        self.store.release(account_id, tag, claim, last[:200])
        raise RetryLater(f"LINE did not accept the notification after {self.config.attempts} tries")


# ----------------------------------------------------------------------------- reconciliation
TAG_LENGTH = 32


@dataclass
class DeliveryReconciler:
    store: NotificationStore

    def delivered(self, account_id: str, event: dict[str, Any]) -> str:
        """The ``delivery`` event: ``delivery.data`` is the delivery tag tsunagu sent."""
        data = str((event.get("delivery") or {}).get("data") or "")
        if len(data) != TAG_LENGTH or any(c not in "0123456789abcdef" for c in data):
            return "not_ours"  # sent outside tsunagu (no tag, or a hashed phone number)
        return self.store.mark_delivered(account_id, data, int(event.get("timestamp") or _now_ms()))


@dataclass
class NotificationSweep:
    accounts: AccountStore
    store: NotificationStore

    def run(self, now_ms: int | None = None) -> dict[str, int]:
        now = now_ms if now_ms is not None else _now_ms()
        swept = {a: self.store.sweep(a, now) for a in self.accounts.list_ids()}
        return {a: c for a, c in swept.items() if c}
