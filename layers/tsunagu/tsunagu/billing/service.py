"""Metering, quotas and billing (R-MSG-1, R-MSG-2, R-PLAN-1 ... R-PLAN-6, R-PTS-1).

- ``send``: a push / multicast / broadcast / narrowcast through tsunagu - its billable recipients
  are reserved against the month's cap first (capped plans: the free messages; Standard: an
  optional budget in yen or messages; a per-campaign cap), then LINE is called with the retry
  key, then the reservation is committed with its usage-ledger entry (or released on refusal).
- ``usage`` (live, from the ledger's counters), ``forecast``, plan changes, options.
- The schedules: daily rollup and LINE quota check, the monthly close (immutable invoice, late
  usage carried to the next one), points on the 10th.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tsunagu.billing import domain as b
from tsunagu.billing.ports import QuotaExceeded
from tsunagu.billing.usage import BILLABLE_KINDS, JST
from tsunagu.errors import (
    BadRequest,
    Conflict,
    DomainError,
    LineApiError,
    LineRateLimited,
    LineRefused,
    NotFound,
    RateLimited,
    UpstreamError,
    ValidationFailed,
)
from tsunagu.observability import logger

if TYPE_CHECKING:
    from tsunagu.accounts.ports import AccountStore, ChannelSecrets
    from tsunagu.billing.ports import BillingStore, LineSends, UsageTotals
    from tsunagu.messaging.ports import FriendStore

USER_ID_LEN = 33
# When LINE answers 429 without Retry-After: broadcast and narrowcast allow 60 requests an hour,
# push and multicast thousands a second (line-platform.md 2.4).
DEFAULT_RETRY_AFTER = {"broadcast": 60, "narrowcast": 60}
MAX_RECIPIENTS = 100_000_000  # one send's reservation; far beyond any account's friends
RETRY_KEY_WINDOW_MS = 24 * 3_600_000  # LINE keeps a retry key 24 hours (line-platform.md §2.3)


def request_fingerprint(kind: str, body: dict[str, Any]) -> str:
    """What a retry must repeat: the kind and LINE's request body (canonical JSON, SHA-256)."""
    canonical = json.dumps([kind, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def jst_today() -> date:
    return datetime.now(UTC).astimezone(JST).date()


class QuotaRefused(DomainError):
    """R-PLAN-1 / R-MSG-1: the send would pass the month's cap (or the campaign's): nothing sent."""

    code = "quota_exceeded"
    status = 409


def billable_total(totals: dict[str, int]) -> int:
    return sum(v for k, v in totals.items() if k.endswith("_messages") and k[: -len("_messages")] in BILLABLE_KINDS)


def recipients_of(kind: str, body: dict[str, Any], friends: int) -> int:
    """How many billable messages a send costs (R-MSG-2: counted per recipient), checked
    against LINE's limits: 1-5 message objects, 1-500 user ids per multicast."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5 or not all(isinstance(m, dict) for m in messages):
        raise ValidationFailed("messages must hold 1 to 5 message objects", code="message_count")
    if kind == "push":
        to = body.get("to")
        if not isinstance(to, str) or len(to) != USER_ID_LEN or not to.startswith(("U", "C", "R")):
            raise ValidationFailed("push needs 'to': one user, group or room id", code="invalid_recipient")
        return 1
    if kind == "multicast":
        to = body.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= 500:
            raise ValidationFailed("multicast sends to 1-500 user ids", code="invalid_recipient")
        if not all(isinstance(u, str) and len(u) == USER_ID_LEN and u.startswith("U") for u in to):
            raise ValidationFailed("multicast 'to' holds user ids (U + 32 hex)", code="invalid_recipient")
        return len(set(to))
    if kind == "broadcast":
        return friends  # every friend who has not blocked the account
    if kind == "narrowcast":
        limit_obj = body.get("limit")
        limit = limit_obj.get("max") if isinstance(limit_obj, dict) else None
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RECIPIENTS:
            raise ValidationFailed(
                "narrowcast through tsunagu needs limit.max (the reservation is made for it)", code="narrowcast_limit"
            )
        return limit
    raise ValidationFailed("kind must be push, multicast, broadcast or narrowcast", code="message_kind")


@dataclass
class BillingService:
    store: BillingStore
    ledger: UsageTotals
    accounts: AccountStore
    friends: FriendStore
    secrets: ChannelSecrets
    line: LineSends
    register: Any = None  # DynamoMemberRegister (points)
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))  # the one clock

    def today(self) -> date:
        """Today in JST on the service's clock (sends are stamped by the same clock)."""
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC).astimezone(JST).date()

    # ------------------------------------------------------------------ plans
    def history(self, account_id: str) -> list[tuple[date, str]]:
        stored = self.store.plan_history(account_id)
        if stored:
            return stored
        found = self.accounts.get(account_id)
        if found is None:
            raise NotFound("account not found")
        account = found[0]
        created = account.created_at.astimezone(JST).date()
        return [(created, str(account.settings.plan))]

    def change_plan(self, account_id: str, plan: str, on: date | None = None) -> dict[str, Any]:
        """R-PLAN-3: upgrades now (fee and free-message differences this month), downgrades on the 1st."""
        day = on or self.today()
        old = self.history(account_id)
        new = b.change_plan(old, day, plan)
        self.store.replace_plan_history(account_id, old, [(d, str(p)) for d, p in new])
        return self.plan_view(account_id)

    def plan_view(self, account_id: str) -> dict[str, Any]:
        day = self.today()
        hist = self.history(account_id)
        return {
            "plan": str(b.plan_on(hist, day)),
            "history": [{"effective": d.isoformat(), "plan": str(p)} for d, p in hist],
            "pending": [{"effective": d.isoformat(), "plan": str(p)} for d, p in hist if d > day],
        }

    def add_option(self, account_id: str, option: str, start: date, end: date | None, yearly: bool) -> dict[str, Any]:
        """Record a subscription (R-PLAN-4, R-PLAN-5). The same option and start again is the same
        subscription (e.g. its end set for a cancellation): its first-use flag, and with it the
        initial fee, is kept."""
        today = self.today()
        if start < today.replace(day=1):
            raise ValidationFailed(
                "an option cannot start before this month (earlier months are invoiced)", code="option_start_past"
            )
        if start > today + timedelta(days=2 * 366) or (end is not None and end > start + timedelta(days=10 * 366)):
            raise ValidationFailed("start within 2 years, end within 10 years of it", code="option_date_range")
        records = self.store.options(account_id)
        same = next((o for o in records if o["option"] == option and o["start"] == start.isoformat()), None)
        first_use = bool(same["first_use"]) if same else not any(o["option"] == option for o in records)
        try:
            sub = b.Subscription(b.Option(option), start, end, yearly, first_use=first_use)
        except ValueError as e:
            raise ValidationFailed(str(e), code="invalid_option") from None
        others = [s for s in self._subscriptions(records) if (s.option, s.start) != (sub.option, sub.start)]
        if b.overlapping_option([*others, sub]) is not None:
            raise Conflict(f"this {option} subscription overlaps one already recorded", code="option_overlaps")
        doc = {
            "option": str(sub.option),
            "start": start.isoformat(),
            "end": end.isoformat() if end else None,
            "yearly": yearly,
            "first_use": sub.first_use,
        }
        self.store.put_option(account_id, doc)
        return doc

    def _subscriptions(self, records: list[dict[str, Any]]) -> list[b.Subscription]:
        return [
            b.Subscription(
                b.Option(o["option"]),
                date.fromisoformat(o["start"]),
                date.fromisoformat(o["end"]) if o.get("end") else None,
                bool(o.get("yearly")),
                bool(o.get("first_use", True)),
            )
            for o in records
        ]

    def option_active(self, account_id: str, option: str, day: date) -> bool:
        """Is ``option`` (chat_plus, call_plus) subscribed on ``day`` (R-PLAN-5)."""
        subs = self._subscriptions(self.store.options(account_id))
        return any(str(s.option) == option and s.active_in(day, day) for s in subs)

    def set_budget(self, account_id: str, yen: int | None, messages: int | None) -> dict[str, Any]:
        current = self.store.settings(account_id)
        self.store.put_settings(account_id, {**current, "budget_yen": yen, "budget_messages": messages})
        return {"budget_yen": yen, "budget_messages": messages}

    def record_calls(self, account_id: str, call_id: str, minutes: int) -> dict[str, Any]:
        today = self.today()
        subs = self._subscriptions(self.store.options(account_id))
        if not any(s.option is b.Option.CALL_PLUS and s.active_in(today, today) for s in subs):
            raise Conflict("calls are billed under Call Plus: record its subscription first", code="call_plus_inactive")
        month = today.strftime("%Y-%m")
        recorded = self.store.record_calls(account_id, call_id, minutes, month)
        return {
            "call_id": call_id,
            "minutes": minutes,
            "month": month,
            "status": "recorded" if recorded else "duplicate",
        }

    # ------------------------------------------------------------------ quota
    def month_limit(self, account_id: str, day: date) -> tuple[int | None, str]:
        """The most billable messages the month may hold as of ``day``, and why."""
        hist = self.history(account_id)
        fc = b.forecast(hist, day, 0, 0)
        if not b.plan_spec(fc.plan).additional_allowed:
            return fc.allowance, f"the {fc.plan} plan's free messages"
        settings = self.store.settings(account_id)
        limits: list[tuple[int, str]] = []
        if settings.get("budget_messages") is not None:
            limits.append((int(settings["budget_messages"]), "the monthly message budget"))
        if settings.get("budget_yen") is not None:
            limits.append(
                (fc.allowance + affordable(Decimal(int(settings["budget_yen"]))), "the monthly budget in yen")
            )
        # Beyond the last list-price tier a contract price applies (R-PLAN-2): tsunagu cannot
        # price it, so it does not send it.
        limits.append((fc.allowance + b.LIST_PRICE_LIMIT, "the list price's last tier (beyond it, a contract price)"))
        return min(limits)

    def _reserve(
        self,
        account_id: str,
        retry_key: str,
        day: date,
        n: int,
        campaign: tuple[str, int] | None,
        fingerprint: str,
    ) -> bool:
        """Reserve ``n`` against the month's cap (and the campaign's); False when the retry key
        holds a reservation already."""

        limit, why = self.month_limit(account_id, day)
        try:
            return bool(
                self.store.reserve(
                    account_id, retry_key, day.strftime("%Y-%m"), n, limit, campaign, fingerprint=fingerprint
                )
            )
        except QuotaExceeded as e:
            scope = "this campaign's cap" if e.which == "campaign" else why
            raise QuotaRefused(
                f"sending to {n} would pass {scope}: {e.left} message(s) left this month; nothing was sent",
                code="quota_exceeded",
                details=[{"requested": n, "left": e.left, "limit": e.which}],
            ) from None

    def reserve_many(self, account_id: str, send_id: str, n: int, fingerprint: str) -> bool:
        """One reservation for a whole series of sends (a campaign): ``QuotaRefused`` (409) past
        the month's cap, nothing reserved; False when ``send_id`` holds a reservation already.
        Each send then records its own usage-ledger entry; ``settle`` closes the reservation."""
        return self._reserve(account_id, send_id, self.today(), n, None, fingerprint)

    def settle(self, account_id: str, send_id: str, used: int) -> bool:
        return self.store.settle(account_id, send_id, used)

    def left_this_month(self, account_id: str) -> int | None:
        """Billable messages the month can still reserve today (None: no cap applies)."""
        day = self.today()
        limit, _ = self.month_limit(account_id, day)
        if limit is None:
            return None
        return max(0, limit - self.store.reserved(account_id, day.strftime("%Y-%m")))

    def send(
        self, account_id: str, kind: str, body: dict[str, Any], retry_key: str, campaign: tuple[str, int] | None
    ) -> dict[str, Any]:

        n = recipients_of(kind, body, int(self.friends.counts(account_id).get("friends", 0)))
        token = self.secrets.access_token(account_id)
        if not token:
            raise Conflict(
                "store the channel's access token first (PUT /accounts/{id}/channel)", code="channel_not_configured"
            )
        day = self.today()
        month = day.strftime("%Y-%m")
        fingerprint = request_fingerprint(kind, body)
        fresh = self._reserve(account_id, retry_key, day, n, campaign, fingerprint)
        if not fresh:
            existing = self.store.reservation(account_id, retry_key) or {}
            if existing.get("fingerprint", fingerprint) != fingerprint:
                raise Conflict(
                    "this retry key was used for a different request; a retry must repeat it exactly",
                    code="retry_key_reused",
                )
            if existing.get("state") == "committed":
                return {"send_id": retry_key, "kind": kind, "recipients": int(existing["n"]), "status": "already_sent"}
            if existing.get("month") not in (None, month):
                # Reserved in a month that has ended and never confirmed by LINE: what goes out now
                # is this month's message, so it is reserved (and capped) again here.
                self.store.release(account_id, retry_key)
                self._reserve(account_id, retry_key, day, n, campaign, fingerprint)
            else:
                n = int(existing.get("n", n))  # counted as reserved (a broadcast's friends may have changed)
        try:
            outcome = self.line.send(token, kind, body, retry_key)
        except LineRefused as e:
            self.store.release(account_id, retry_key)
            raise BadRequest(
                f"LINE refused the send ({e.http_status}); nothing was counted", code="line_refused"
            ) from None
        except LineRateLimited as e:
            # LINE accepted nothing: the reservation is given back, and the caller is told when
            # to retry (LINE's Retry-After, or the endpoint's window when LINE gave none).
            self.store.release(account_id, retry_key)
            if e.monthly:
                raise QuotaRefused(
                    "LINE says the channel has reached its monthly message limit; nothing was sent",
                    code="line_monthly_limit",
                ) from None
            wait = e.retry_after if e.retry_after is not None else DEFAULT_RETRY_AFTER.get(kind, 1)
            raise RateLimited(
                f"LINE's rate limit for {kind}: retry with the same retry_key after {wait} s; nothing was sent",
                wait,
                code="line_rate_limited",
            ) from None
        except LineApiError:
            # Maybe sent, maybe not: keep the reservation; a retry with the same retry key either
            # sends or is answered 409 by LINE, and is then committed. Never retried, it is given
            # back after 24 hours (release_stale, daily).
            raise UpstreamError(
                "LINE did not answer; retry with the same X-Line-Retry-Key", code="line_unavailable"
            ) from None
        self.store.commit(account_id, retry_key, kind, n, self.now_ms())
        return {"send_id": retry_key, "kind": kind, "recipients": n, "status": outcome.replace("-", "_")}

    # ------------------------------------------------------------------ usage and forecast
    def usage(self, account_id: str, month: str | None = None) -> dict[str, Any]:
        """This month so far (or ``month``), live: the ledger's counters, not yesterday's figure."""
        day = self.today()
        month = month or day.strftime("%Y-%m")
        try:
            b.month_bounds(month)
        except ValueError:
            raise ValidationFailed("month must be YYYY-MM", code="invalid_month") from None
        totals = self.ledger.month_totals(account_id, month)
        billable = billable_total(totals)
        hist = self.history(account_id)
        out: dict[str, Any] = {"month": month, "by_kind": totals, "billable_messages": billable}
        try:
            inv = b.compute_invoice(
                month,
                hist,
                billable,
                options=self._subscriptions(self.store.options(account_id)),
                call_minutes=int(totals.get("call_minutes", 0)),
            )
        except ValueError:
            return {**out, "plan": None}
        if inv.plan.final_plan is None:  # a month before the account's plan started
            return {**out, "plan": None}
        limit, why = self.month_limit(account_id, day) if month == day.strftime("%Y-%m") else (None, "")
        out.update(
            plan=str(inv.plan.final_plan),
            free_messages=inv.free_messages,
            remaining_free=b.remaining_free(inv.free_messages, billable),
            reserved=self.store.reserved(account_id, month),
            cap=limit,
            cap_reason=why if limit is not None else None,
            cost_so_far=invoice_doc(inv)["totals"],
        )
        rollup = self.store.usage_day(account_id, day.isoformat()) or self.store.usage_day(
            account_id, (day - timedelta(days=1)).isoformat()
        )
        check = self.store.quota_check_of(account_id, day.isoformat()) or self.store.quota_check_of(
            account_id, (day - timedelta(days=1)).isoformat()
        )
        out["line_quota_check"] = (
            {"day": check["day"], **{k: int(check[k]) for k in ("line", "tsunagu", "outside_tsunagu")}}
            if check
            else None
        )
        out["daily_rollup"] = (
            {"day": rollup["day"], "billable_messages": int(rollup["billable_messages"])} if rollup else None
        )
        return out

    def month_to_date(self, account_id: str) -> dict[str, Any]:
        """This month's billable messages by day (the daily rollups, cumulative) and the month-end
        forecast at the pace so far (billable so far / days elapsed x days in the month)."""
        day = self.today()
        first = day.replace(day=1)
        next_month = (first + timedelta(days=32)).replace(day=1)
        days_in_month = (next_month - first).days
        rows = self.store.usage_days(account_id, first.isoformat(), day.isoformat())
        series = [{"day": str(r["day"]), "billable_messages": int(r["billable_messages"])} for r in rows]
        so_far = billable_total(self.ledger.month_totals(account_id, day.strftime("%Y-%m")))
        projected = so_far * days_in_month // day.day
        return {
            "month": day.strftime("%Y-%m"),
            "days": series,
            "billable_so_far": so_far,
            "projected_month_end": projected,
            "forecast": self.forecast(account_id, max(0, projected - so_far), day),
        }

    def forecast(self, account_id: str, n: int, day: date | None) -> dict[str, Any]:
        """The cost and quota effect of ``n`` more billable messages on ``day`` (plan in force then)."""
        when = day or self.today()
        month = when.strftime("%Y-%m")
        sent = (
            billable_total(self.ledger.month_totals(account_id, month))
            if month == self.today().strftime("%Y-%m")
            else 0
        )
        try:
            fc = b.forecast(self.history(account_id), when, sent, n)
        except (ValueError, b.ContractPriceRequired) as e:
            raise ValidationFailed(str(e), code="forecast_invalid") from None
        return {
            "day": when.isoformat(),
            "plan": str(fc.plan),
            "requested": n,
            "sent_this_month": sent,
            "free_messages": fc.allowance,
            "sendable": fc.sendable,
            "blocked": fc.blocked,
            "free": fc.free,
            "additional": fc.additional,
            "additional_cost_yen": yen(fc.cost),
            "remaining_free_after": fc.remaining_free_after,
        }

    # ------------------------------------------------------------------ monthly close
    def close_month(self, month: str, account_ids: Iterable[str] | None = None) -> dict[str, str]:
        """Write each account's invoice for ``month`` once (immutable); late usage of earlier
        closed months goes on this one as an adjustment. Re-running changes nothing."""
        results: dict[str, str] = {}
        for aid in account_ids if account_ids is not None else self.accounts.list_ids():
            try:
                results[aid] = self._close(aid, month)
            except Exception:  # one account's bad data must not stop every other account's invoice
                logger.exception("invoice close failed", extra={"account_id": aid, "month": month})
                results[aid] = "failed"
        return results

    def _close(self, account_id: str, month: str) -> str:
        if self.store.invoice(account_id, month) is not None:
            return "already_closed"
        hist = self.history(account_id)
        first, _ = b.month_bounds(month)
        if b.month_plan(hist, month).final_plan is None:
            return "no_plan"
        totals = self.ledger.month_totals(account_id, month)
        adjustments = self._late_usage(account_id, first)
        inv = b.compute_invoice(
            month,
            hist,
            billable_total(totals),
            options=self._subscriptions(self.store.options(account_id)),
            call_minutes=int(totals.get("call_minutes", 0)),
            adjustments=adjustments,
        )
        doc = invoice_doc(inv)
        doc["adjustments"] = [{"month": a.month, "invoiced": a.invoiced, "late": a.late} for a in adjustments]
        doc["usage"] = totals
        doc["closed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return "closed" if self.store.put_invoice(account_id, month, doc) else "already_closed"

    def _late_usage(self, account_id: str, first: date, lookback: int = 2) -> list[b.LateUsage]:
        """Billable messages counted for a closed month after its invoice was written."""
        months = []
        d = first
        for _ in range(lookback):
            d = (d.replace(day=1) - timedelta(days=1)).replace(day=1)
            months.append(d.strftime("%Y-%m"))
        invoices = {m: self.store.invoice(account_id, m) for m in months}
        out = []
        for m in reversed(months):
            inv = invoices[m]
            if inv is None:
                continue
            billed = int(inv["billable_messages"]) + sum(
                int(a["late"])
                for later in invoices.values()
                if later
                for a in later.get("adjustments", [])
                if a["month"] == m
            )
            now = billable_total(self.ledger.month_totals(account_id, m))
            if now > billed:
                out.append(b.LateUsage(m, billed, now - billed))
        return out

    def invoice(self, account_id: str, month: str) -> dict[str, Any]:
        doc = self.store.invoice(account_id, month)
        if doc is None:
            raise NotFound(f"no invoice for {month} (months are closed on the 1st, JST)", code="invoice_not_found")
        shown: dict[str, Any] = plain({k: v for k, v in doc.items() if k not in ("PK", "SK", "entity")})
        return shown

    # ------------------------------------------------------------------ schedules
    def _ids(self, only: Sequence[str] | None) -> Iterable[str]:
        """Every account, or only the named ones (an operator re-running a job for one account)."""
        return list(only) if only is not None else self.accounts.list_ids()

    def daily_rollup(self, day: date | None = None, only: Sequence[str] | None = None) -> dict[str, int]:
        """Keep ``GET /usage``'s daily figure and the quota check current (EventBridge, daily)."""
        d = day or self.today()
        month = d.strftime("%Y-%m")
        out = {}
        for aid in self._ids(only):
            totals = self.ledger.month_totals(aid, month)
            self.store.put_usage_day(
                aid, d.isoformat(), {"month": month, "billable_messages": billable_total(totals), **totals}
            )
            out[aid] = billable_total(totals)
        return out

    def release_stale(self, now_ms: int | None = None, only: Sequence[str] | None = None) -> dict[str, int]:
        """Give back reservations still open after LINE's 24-hour retry-key window (a send whose
        LINE call got no answer and was never retried): past it, a retry with the same key would
        be a new message at LINE, so the old reservation can no longer be committed. Without this
        a capped plan would lose those messages from its month. Returns releases per account."""
        cut = (now_ms if now_ms is not None else self.now_ms()) - RETRY_KEY_WINDOW_MS
        out = {}
        for aid in self._ids(only):
            released = sum(1 for sid in self.store.open_reservations(aid, cut) if self.store.release(aid, sid))
            if released:
                out[aid] = released
        return out

    def quota_check(self, day: date | None = None, only: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """Compare tsunagu's billable count with LINE's quota consumption: a difference is
        messages sent outside tsunagu (e.g. from LINE Official Account Manager)."""
        d = day or self.today()
        month = d.strftime("%Y-%m")
        out = {}
        for aid in self._ids(only):
            token = self.secrets.access_token(aid)
            if not token:
                continue
            try:
                line_count = self.line.quota_consumption(token)
            except DomainError:
                continue
            ours = billable_total(self.ledger.month_totals(aid, month))
            result = {"line": line_count, "tsunagu": ours, "outside_tsunagu": line_count - ours}
            self.store.put_quota_check(aid, d.isoformat(), {"month": month, **result})
            out[aid] = result
        return out

    def grant_points(self, month: str | None = None) -> dict[str, int]:
        """R-PTS-1: on the 10th, each contractor-linked customer gets 1 % of the monthly base fee
        in LINE points, once per month; the statement lists the lines it was computed from."""
        m = month or self.today().strftime("%Y-%m")
        granted: dict[str, int] = {}
        for aid in self.accounts.list_ids():
            links = self.store.contractors(aid)
            members = self.register.get_many(aid, [link["SK"].rsplit("#", 1)[1] for link in links]) if links else {}
            count = 0
            for link in links:
                number = link["SK"].rsplit("#", 1)[1]
                rec = members.get(number)
                if rec is None:
                    continue
                fee = sum(ln.monthly_base_fee for ln in rec.lines)
                statement = {
                    "user_id": link["user_id"],
                    "monthly_base_fee": fee,
                    "points": b.points_for(fee),
                    "lines": [{"line_id": ln.line_id, "monthly_base_fee": ln.monthly_base_fee} for ln in rec.lines],
                    "granted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                count += int(self.store.grant_points(aid, m, number, statement))
            granted[aid] = count
        return granted

    def points(self, account_id: str, month: str) -> list[dict[str, Any]]:
        return [
            plain({k: v for k, v in r.items() if k not in ("PK", "SK", "entity")})
            for r in self.store.points(account_id, month)
        ]


def plain(value: Any) -> Any:
    """DynamoDB's numbers (Decimal) as JSON numbers: counts are whole, money stays a string."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def yen(amount: Decimal) -> str:
    """An exact amount without trailing zeros: ``550000``, ``2.75``."""
    return f"{amount.normalize():f}"


def affordable(budget_yen: Decimal) -> int:
    """The most additional messages whose graduated price (R-PLAN-2) fits in ``budget_yen``."""
    lo, hi = 0, b.LIST_PRICE_LIMIT
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if b.additional_message_cost(mid) <= budget_yen:
            lo = mid
        else:
            hi = mid - 1
    return lo


def invoice_doc(inv: b.Invoice) -> dict[str, Any]:
    return {
        "month": inv.month,
        "plan": str(inv.plan.final_plan),
        "free_messages": inv.free_messages,
        "billable_messages": inv.billable_messages,
        "additional_messages": inv.additional_messages,
        "over_quota": inv.over_quota,
        "lines": [
            {
                "description": li.description,
                "quantity": li.quantity,
                "unit_price": yen(li.unit_price),
                "divisor": li.divisor,
                "amount": yen(li.amount.quantize(Decimal("0.01")) if li.divisor != 1 else li.amount),
            }
            for li in inv.lines
        ],
        "totals": {"subtotal": str(inv.subtotal), "tax": str(inv.tax), "total": str(inv.total)},
        "rounding": "sum exact, subtotal and 10% tax each rounded down to whole yen once (docs/billing.md)",
    }


def invoice_csv(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["month", "description", "quantity", "unit_price", "divisor", "amount"])
    for li in doc["lines"]:
        w.writerow([doc["month"], li["description"], li["quantity"], li["unit_price"], li["divisor"], li["amount"]])
    for k in ("subtotal", "tax", "total"):
        w.writerow([doc["month"], k, "", "", "", doc["totals"][k]])
    return "\ufeff" + out.getvalue()
