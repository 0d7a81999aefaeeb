"""Audiences and campaigns (R-MSG-1, R-MSG-2, R-LINK-7, R-CPN-7).

- ``Audiences``: the account's tags and custom fields, tagging friends (one by one or in bulk),
  saved segments and their preview (count and a few ids from one pass over the friend records).
- ``Campaigns``: drafts with A/B variants and a hold-out; the forecast; scheduling (now: a message
  on the campaign queue; later: a one-off EventBridge Scheduler entry that puts the same message
  there); cancel before sending; the launch (snapshot, one reservation in the billing room, the
  chunk messages); one chunk per queue message (lease, one multicast with its retry key and the
  variant's ``customAggregationUnits``, the usage-ledger entry with the chunk's state); the finish
  (final state, the reservation settled); tracked links; LINE's statistics; the report.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tsunagu.billing.usage import JST
from tsunagu.campaigns import domain as d
from tsunagu.campaigns.segments import CompiledRule, compile_rule, evaluate, fields_of
from tsunagu.errors import Conflict, DomainError, LineApiError, LineRefused, NotFound, ValidationFailed
from tsunagu.observability import logger

if TYPE_CHECKING:
    from tsunagu.campaigns.ports import (
        AccessTokens,
        AudienceStore,
        CampaignQueue,
        CampaignStore,
        LaunchSchedules,
        LineCampaigns,
        Metering,
        Redemptions,
    )

MAX_BULK = 1000
LINK_FACTS = ("linked", "unlinked")
EVERY_FRIEND = {"blocked": False}  # the audience of a campaign targeted by LINE's demographic filter only
LEASE_MS = 60_000
CONVERSION_DAYS = 14


def _now_ms() -> int:
    return int(time.time() * 1000)


class ChunkBusy(DomainError):
    """Another worker holds the chunk's lease: the message comes back after its visibility timeout."""

    code = "chunk_busy"
    status = 409


@dataclass
class Audiences:
    store: AudienceStore
    now_ms: Callable[[], int] = field(default=_now_ms)

    def define_tag(self, account_id: str, tag: str) -> dict[str, Any]:
        self.store.define_tag(account_id, tag)
        return {"tag": tag}

    def define_field(self, account_id: str, name: str, kind: str) -> dict[str, Any]:
        if not self.store.define_field(account_id, name, kind):
            raise Conflict(f"field {name!r} exists with another type", code="field_type_conflict")
        return {"field": name, "type": kind}

    def vocabulary(self, account_id: str) -> dict[str, Any]:
        defs = self.store.definitions(account_id)
        return {"tags": sorted(defs.tags), "fields": dict(sorted(defs.fields.items()))}

    def tag(self, account_id: str, user_ids: list[str], add: list[str], remove: list[str]) -> dict[str, Any]:
        """Add and remove tags on up to 1,000 friends; every tag must be defined (nothing is
        written when one is not)."""
        if not add and not remove:
            raise ValidationFailed("name tags to add or remove", code="no_tags")
        if not 1 <= len(user_ids) <= MAX_BULK:
            raise ValidationFailed(f"tag 1-{MAX_BULK} friends per request", code="bulk_size")
        known = self.store.definitions(account_id).tags
        unknown = sorted((set(add) | set(remove)) - known)
        if unknown:
            raise ValidationFailed(f"unknown tag(s): {', '.join(unknown[:5])}", code="unknown_tag")
        for u in dict.fromkeys(user_ids):
            self.store.change_tags(account_id, u, set(add), set(remove))
        return {"friends": len(set(user_ids)), "added": sorted(set(add)), "removed": sorted(set(remove))}

    def tag_csv(self, account_id: str, text: str) -> dict[str, Any]:
        """CSV ``user_id,tag`` (one row per friend and tag; ``-tag`` removes it)."""
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
        if set(reader.fieldnames or ()) != {"user_id", "tag"}:
            raise ValidationFailed("CSV columns must be user_id,tag", code="csv_columns")
        rows = list(reader)
        if not 1 <= len(rows) <= MAX_BULK:
            raise ValidationFailed(f"1-{MAX_BULK} rows per request", code="bulk_size")
        known = self.store.definitions(account_id).tags
        changes: dict[str, tuple[set[str], set[str]]] = {}
        for n, r in enumerate(rows, start=2):
            user, tag = (r.get("user_id") or "").strip(), (r.get("tag") or "").strip()
            if not _is_user_id(user):
                raise ValidationFailed(f"line {n}: user_id is U + 32 hex digits", code="invalid_user_id")
            name = tag.removeprefix("-")
            if name not in known:
                raise ValidationFailed(f"line {n}: unknown tag {name[:64]!r}", code="unknown_tag")
            add, remove = changes.setdefault(user, (set(), set()))
            (remove if tag.startswith("-") else add).add(name)
        for user, (add, remove) in changes.items():
            self.store.change_tags(account_id, user, add, remove - add)
        return {"rows": len(rows), "friends": len(changes)}

    def set_fields(self, account_id: str, user_id: str, values: dict[str, Any]) -> dict[str, Any]:
        defs = self.store.definitions(account_id).fields
        for k, v in values.items():
            kind = defs.get(k)
            if kind is None:
                raise ValidationFailed(f"unknown field {k[:64]!r}", code="unknown_field")
            ok = v is None or (
                isinstance(v, int | float) and not isinstance(v, bool) if kind == "number" else isinstance(v, str)
            )
            if not ok:
                raise ValidationFailed(f"field {k!r} holds a {kind}", code="field_type")
        if not values:
            raise ValidationFailed("name at least one field", code="no_fields")
        self.store.set_fields(account_id, user_id, values)
        return self.facts(account_id, user_id)

    def facts(self, account_id: str, user_id: str) -> dict[str, Any]:
        item = self.store.facts_item(account_id, user_id)
        return {
            "user_id": user_id,
            "tags": sorted(item.get("tags", ())),
            "fields": fields_of(item),
            "last_inbound_at": _iso(int(item["last_inbound_ms"])) if item.get("last_inbound_ms") else None,
        }

    # ------------------------------------------------------------------ automatic tags
    def set_tag_rules(self, account_id: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        """Rules ``{on: keyword|postback, match, add, remove}``: a text message equal to ``match``
        (trimmed) or a postback whose data equals it changes the friend's tags. Every tag must be
        defined; the whole list is replaced (at most 100 rules)."""
        known = self.store.definitions(account_id).tags
        if len(rules) > 100:
            raise ValidationFailed("at most 100 tag rules", code="bulk_size")
        for r in rules:
            unknown = sorted((set(r["add"]) | set(r["remove"])) - known)
            if unknown:
                raise ValidationFailed(f"unknown tag(s): {', '.join(unknown[:5])}", code="unknown_tag")
            if not r["add"] and not r["remove"]:
                raise ValidationFailed("a rule adds or removes at least one tag", code="no_tags")
            if r["on"] in LINK_FACTS and r["match"] != "*":
                raise ValidationFailed(f"an '{r['on']}' rule matches '*' (every link)", code="rule_match")
        self.store.put_tag_rules(account_id, rules)
        return {"rules": rules}

    def tag_rules(self, account_id: str) -> dict[str, Any]:
        return {"rules": self.store.tag_rules(account_id)}

    def on_event(self, account_id: str, user_id: str, event: dict[str, Any]) -> int:
        """Apply the account's tag rules to one inbound event (the message worker calls this once
        per webhook event; adding or removing a tag twice changes nothing). Returns rules applied.
        A message also moves the friend's ``last_inbound_ms`` (a fact rules can read)."""
        if event.get("type") == "message" and isinstance(event.get("timestamp"), int):
            self.store.note_inbound(account_id, user_id, int(event["timestamp"]))
        if event.get("type") == "postback":
            on, value = "postback", str((event.get("postback") or {}).get("data", ""))
        elif event.get("type") == "message" and (event.get("message") or {}).get("type") == "text":
            on, value = "keyword", str(event["message"].get("text", "")).strip()
        else:
            return 0
        return self.on_fact(account_id, user_id, on, value)

    def on_fact(self, account_id: str, user_id: str, on: str, value: str = "") -> int:
        """Apply the rules for ``on`` (keyword, postback, linked, unlinked, coupon_granted,
        coupon_redeemed) whose ``match`` is ``value`` or ``*``. Returns rules applied."""
        rules = [r for r in self.store.tag_rules(account_id) if r.get("on") == on and r.get("match") in (value, "*")]
        for r in rules:
            self.store.change_tags(account_id, user_id, set(r["add"]), set(r["remove"]) - set(r["add"]))
        return len(rules)

    # ------------------------------------------------------------------ segments
    def compile(self, account_id: str, rule: Any) -> CompiledRule:
        return compile_rule(rule, self.store.definitions(account_id), self.now_ms())

    def recipients(self, account_id: str, rule: Any) -> list[str]:
        compiled = self.compile(account_id, rule)
        return evaluate(compiled, self.store.friend_facts(account_id, compiled.needs)).recipients

    def preview(self, account_id: str, rule: Any) -> dict[str, Any]:
        t = time.perf_counter()
        compiled = self.compile(account_id, rule)
        records = self.store.friend_facts(account_id, compiled.needs)
        result = evaluate(compiled, records)
        return {
            "count": len(result.recipients),
            "sample": result.sample,
            "friends_evaluated": len(records),
            "took_ms": round((time.perf_counter() - t) * 1000, 1),
        }

    def browse(self, account_id: str, rule: Any, after: str | None = None, limit: int = 100) -> dict[str, Any]:
        """The friends a rule selects, a page at a time in user-id order (the console's friend
        filter and ``POST …/segments/browse``): one pass over the facts, no read per friend."""
        compiled = self.compile(account_id, rule)
        records = self.store.friend_facts(account_id, compiled.needs)
        chosen = sorted((r for r in records if compiled.predicate(r)), key=lambda r: r["user_id"])
        rest = [r for r in chosen if after is None or r["user_id"] > after]
        page = rest[:limit]
        return {
            "count": len(chosen),
            "friends": [
                {
                    "user_id": r["user_id"],
                    "since_ms": r["since_ms"],
                    "linked": r["linked"],
                    "tags": sorted(r["tags"]),
                }
                for r in page
            ],
            "next": page[-1]["user_id"] if len(rest) > limit else None,
        }

    def save_segment(self, account_id: str, name: str, rule: Any) -> dict[str, Any]:
        self.compile(account_id, rule)  # refuse it now, not at send time
        sid = f"seg_{secrets.token_hex(6)}"
        doc = {"name": name, "rule": json.dumps(rule, ensure_ascii=False), "created_at": _iso(self.now_ms())}
        self.store.put_segment(account_id, sid, doc)
        return {"segment_id": sid, "name": name, "rule": rule}

    def segment_rule(self, account_id: str, segment_id: str) -> Any:
        seg = self.store.segment(account_id, segment_id)
        if seg is None:
            raise NotFound("no such segment", code="segment_not_found")
        return json.loads(seg["rule"])

    def segment(self, account_id: str, segment_id: str) -> dict[str, Any]:
        seg = self.store.segment(account_id, segment_id)
        if seg is None:
            raise NotFound("no such segment", code="segment_not_found")
        return {"segment_id": segment_id, "name": seg["name"], "rule": json.loads(seg["rule"])}

    def segments(self, account_id: str) -> list[dict[str, Any]]:
        return [{"segment_id": s["segment_id"], "name": s.get("name")} for s in self.store.segments(account_id)]


def _is_user_id(u: str) -> bool:
    return len(u) == 33 and u[0] == "U" and all(c in "0123456789abcdef" for c in u[1:])


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def schedule_name(account_id: str, campaign_id: str) -> str:
    """A Scheduler name (<= 64 of [0-9A-Za-z-_.]) that any account id fits into."""
    return "campaign-" + hashlib.sha256(f"{account_id}/{campaign_id}".encode()).hexdigest()[:40]


def launch_message(account_id: str, campaign_id: str) -> str:
    return json.dumps({"k": "launch", "a": account_id, "c": campaign_id}, separators=(",", ":"))


def chunk_message(account_id: str, campaign_id: str, index: int) -> str:
    return json.dumps({"k": "chunk", "a": account_id, "c": campaign_id, "i": index}, separators=(",", ":"))


def _variants(c: dict[str, Any]) -> list[d.Variant]:
    return [d.Variant(v["name"], int(v["ratio"]), tuple(v["messages"])) for v in json.loads(c["variants"])]


def _snapshot_of(
    account_id: str, campaign_id: str, c: dict[str, Any], audience: list[str], narrowcast_above: int
) -> d.Snapshot:
    cap = int(c["cap"]) if c.get("cap") is not None else None
    hold = int(c.get("holdout_percent", 0))
    return d.snapshot(account_id, campaign_id, audience, _variants(c), hold, cap, narrowcast_above)


def _walk_links(node: Any, replace: Callable[[str], str]) -> Any:
    """Every ``uri`` / ``linkUri`` of an http(s) target in a message object, rewritten."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("uri", "linkUri") and isinstance(v, str) and v.startswith(("https://", "http://")):
                out[k] = replace(v)
            else:
                out[k] = _walk_links(v, replace)
        return out
    if isinstance(node, list):
        return [_walk_links(v, replace) for v in node]
    return node


@dataclass
class Campaigns:
    store: CampaignStore
    audiences: Audiences
    queue: CampaignQueue
    schedules: LaunchSchedules
    line: LineCampaigns
    metering: Metering
    tokens: AccessTokens
    redemptions: Redemptions | None = None
    public_base_url: str = ""
    # A variant of more users than this goes out as one narrowcast to an uploaded audience.
    narrowcast_above: int = 5_000
    now_ms: Callable[[], int] = field(default=_now_ms)

    # ------------------------------------------------------------------ drafts
    def create(self, account_id: str, spec: dict[str, Any], base_url: str) -> dict[str, Any]:
        """A draft: the audience (a saved segment or a rule) is checked now, evaluated at launch."""
        variants = [d.Variant(v["name"], v["ratio"], tuple(v["messages"])) for v in spec["variants"]]
        d.check_variants(variants, spec.get("holdout_percent", 0))
        if spec.get("segment_id") is None and spec.get("rule") is None and spec.get("demographic"):
            # LINE's demographic filter alone: every friend who has not blocked the account is
            # uploaded (so the hold-out and the variants stay tsunagu's) and LINE narrows it.
            spec = {**spec, "rule": dict(EVERY_FRIEND)}
        if (spec.get("segment_id") is None) == (spec.get("rule") is None):
            raise ValidationFailed(
                "give the audience as segment_id or as rule (one of them), or a demographic filter alone",
                code="audience",
            )
        rule = spec.get("rule")
        if spec.get("segment_id"):
            rule = self.audiences.segment_rule(account_id, spec["segment_id"])
        self.audiences.compile(account_id, rule)
        demographic = d.demographic_filter(spec["demographic"]) if spec.get("demographic") else None
        cid = f"cmp_{secrets.token_hex(8)}"
        links: list[dict[str, Any]] = []
        if spec.get("track_links"):
            variants = [self._tracked(account_id, cid, v, base_url, links) for v in variants]
        doc = {
            "name": spec["name"],
            "state": d.State.DRAFT.value,
            "segment_id": spec.get("segment_id"),
            "rule": json.dumps(spec["rule"], ensure_ascii=False) if spec.get("rule") is not None else None,
            "variants": json.dumps(
                [{"name": v.name, "ratio": v.ratio, "messages": list(v.messages)} for v in variants],
                ensure_ascii=False,
            ),
            "holdout_percent": spec.get("holdout_percent", 0),
            "cap": spec.get("cap"),
            "coupon_id": spec.get("coupon_id"),
            "links": json.dumps(links),
            # LINE filters by age / gender / area itself: such a campaign goes out as narrowcasts.
            "demographic": json.dumps(demographic) if demographic else None,
        }
        self.store.create(account_id, cid, self.now_ms(), doc)
        return self.view(account_id, cid)

    def _tracked(
        self, account_id: str, cid: str, v: d.Variant, base_url: str, links: list[dict[str, Any]]
    ) -> d.Variant:
        base = (self.public_base_url or base_url).rstrip("/")

        def replace(target: str) -> str:
            token = secrets.token_urlsafe(12)  # random: it names the link, never a person
            self.store.put_link(token, {"account_id": account_id, "campaign_id": cid, "variant": v.name, "url": target})
            links.append({"token": token, "variant": v.name, "url": target})
            return f"{base}/r/{token}"

        return d.Variant(v.name, v.ratio, tuple(_walk_links(list(v.messages), replace)))

    def _get(self, account_id: str, campaign_id: str) -> dict[str, Any]:
        c = self.store.get(account_id, campaign_id)
        if c is None:
            raise NotFound("no such campaign", code="campaign_not_found")
        return c

    def view(self, account_id: str, campaign_id: str) -> dict[str, Any]:
        c = self._get(account_id, campaign_id)
        out = {
            "campaign_id": campaign_id,
            "name": c["name"],
            "state": c["state"],
            "segment_id": c.get("segment_id"),
            "rule": json.loads(c["rule"]) if c.get("rule") else None,
            "variants": json.loads(c["variants"]),
            "holdout_percent": int(c.get("holdout_percent", 0)),
            "cap": int(c["cap"]) if c.get("cap") is not None else None,
            "coupon_id": c.get("coupon_id"),
            "demographic": json.loads(c["demographic"]) if c.get("demographic") else None,
            "schedule_at": c.get("schedule_at"),
            "failure": c.get("failure"),
            "tracked_links": json.loads(c.get("links") or "[]"),
        }
        if c.get("snapshot_ready"):
            out["snapshot"] = {
                "recipients": int(c.get("recipients_total", 0)),
                "groups": json.loads(c["groups"]),
                "capped_out": int(c.get("capped_out", 0)),
                "chunks": int(c.get("chunks_total", 0)),
            }
            out["progress"] = {
                "chunks_sent": int(c.get("chunks_sent", 0)),
                "chunks_failed": int(c.get("chunks_failed", 0)),
                "recipients_sent": int(c.get("recipients_sent", 0)),
                "recipients_failed": int(c.get("recipients_failed", 0)),
            }
        return out

    def recent(self, account_id: str) -> list[dict[str, Any]]:
        return [
            {"campaign_id": c["campaign_id"], "name": c["name"], "state": c["state"]}
            for c in self.store.recent(account_id)
        ]

    def _rule(self, account_id: str, c: dict[str, Any]) -> Any:
        if c.get("segment_id"):
            return self.audiences.segment_rule(account_id, c["segment_id"])
        return json.loads(c["rule"])

    def forecast(self, account_id: str, campaign_id: str, day: Any = None) -> dict[str, Any]:
        """Who would receive it now (the snapshot is taken at send time) and what it costs with
        the plan in force on ``day``."""
        c = self._get(account_id, campaign_id)
        audience = self.audiences.recipients(account_id, self._rule(account_id, c))
        snap = _snapshot_of(account_id, campaign_id, c, audience, 0 if c.get("demographic") else self.narrowcast_above)
        left = self.metering.left_this_month(account_id)
        return {
            "audience": len(audience),
            "recipients": snap.recipients,
            "groups": snap.groups,
            "capped_out": snap.capped_out,
            "chunks": len(snap.chunks),
            "left_this_month": left,
            "fits": left is None or snap.recipients <= left,
            "billing": self.metering.forecast(account_id, snap.recipients, day),
        }

    # ------------------------------------------------------------------ schedule and cancel
    def schedule(self, account_id: str, campaign_id: str, at: datetime | None) -> dict[str, Any]:
        c = self._get(account_id, campaign_id)
        d.check_transition(d.State(c["state"]), d.State.SCHEDULED)
        now = datetime.fromtimestamp(self.now_ms() / 1000, UTC)
        if at is not None:
            d.check_schedule(at, now)
        left = self.metering.left_this_month(account_id)
        if left is not None and left <= 0:
            raise Conflict(
                "this month's messages are used up: nothing was scheduled",
                code="quota_exceeded",
                details=[{"left": 0}],
            )
        when = (at or now).astimezone(UTC).isoformat(timespec="seconds")
        if not self.store.transition(
            account_id, campaign_id, [d.State.DRAFT], d.State.SCHEDULED, {"schedule_at": when}
        ):
            raise Conflict("the campaign changed meanwhile", code="campaign_state")
        try:
            if at is None:
                self.queue.send("campaign", [launch_message(account_id, campaign_id)])
            else:
                self.schedules.create(
                    schedule_name(account_id, campaign_id), at, launch_message(account_id, campaign_id)
                )
        except Exception:
            self.store.transition(account_id, campaign_id, [d.State.SCHEDULED], d.State.DRAFT, {"schedule_at": None})
            raise
        return self.view(account_id, campaign_id)

    def cancel(self, account_id: str, campaign_id: str) -> dict[str, Any]:
        c = self._get(account_id, campaign_id)
        d.check_transition(d.State(c["state"]), d.State.CANCELLED)
        if not self.store.transition(
            account_id,
            campaign_id,
            [d.State.DRAFT, d.State.SCHEDULED],
            d.State.CANCELLED,
            {"cancelled_ms": self.now_ms()},
        ):
            now = self._get(account_id, campaign_id)
            d.check_transition(d.State(now["state"]), d.State.CANCELLED)
        if c["state"] == d.State.SCHEDULED and c.get("schedule_at"):
            try:
                self.schedules.delete(schedule_name(account_id, campaign_id))
            except Exception:  # the launch checks the state and sends nothing for a cancelled campaign
                logger.warning("launch schedule not deleted", extra={"campaign_id": campaign_id})
        return self.view(account_id, campaign_id)

    # ------------------------------------------------------------------ launch (worker)
    def launch(self, account_id: str, campaign_id: str) -> str:
        """Snapshot, reserve once, queue the chunks. A redelivered launch resumes: the snapshot
        is rebuilt identically (deterministic assignment and retry keys) until it is marked
        ready, and the chunk messages are queued again (their senders skip finished chunks)."""
        c = self.store.get(account_id, campaign_id)
        if c is None:
            return "unknown_campaign"
        if c["state"] == d.State.SCHEDULED:
            if not self.store.transition(
                account_id, campaign_id, [d.State.SCHEDULED], d.State.SENDING, {"launched_ms": self.now_ms()}
            ):
                return self.launch(account_id, campaign_id)
            c = self._get(account_id, campaign_id)
        elif c["state"] != d.State.SENDING:
            return f"not_launched_{c['state']}"
        if not c.get("snapshot_ready"):
            outcome = self._snapshot(account_id, campaign_id, c)
            if outcome != "ready":
                return outcome
            c = self._get(account_id, campaign_id)
        total = int(c["chunks_total"])
        self.queue.send("campaign", [chunk_message(account_id, campaign_id, i) for i in range(total)])
        return "launched"

    def _fail(self, account_id: str, campaign_id: str, code: str) -> str:
        self.store.transition(account_id, campaign_id, [d.State.SENDING], d.State.FAILED, {"failure": code})
        return code

    def _snapshot(self, account_id: str, campaign_id: str, c: dict[str, Any]) -> str:
        try:
            audience = self.audiences.recipients(account_id, self._rule(account_id, c))
        except DomainError as e:  # the segment or a tag it names was removed since the draft
            return self._fail(account_id, campaign_id, e.code)
        snap = _snapshot_of(account_id, campaign_id, c, audience, 0 if c.get("demographic") else self.narrowcast_above)
        if snap.recipients == 0:
            return self._fail(account_id, campaign_id, "empty_audience")
        self.store.put_chunks(account_id, campaign_id, snap.chunks + snap.parts)
        try:
            self.metering.reserve_many(
                account_id, d.reservation_id(account_id, campaign_id), snap.recipients, campaign_id
            )
        except DomainError as e:  # QuotaRefused: nothing is sent
            return self._fail(account_id, campaign_id, e.code)
        self.store.transition(
            account_id,
            campaign_id,
            [d.State.SENDING],
            d.State.SENDING,
            {
                "snapshot_ready": True,
                "chunks_total": len(snap.chunks),
                "recipients_total": snap.recipients,
                "groups": json.dumps(snap.groups),
                "capped_out": snap.capped_out,
            },
        )
        return "ready"

    # ------------------------------------------------------------------ one chunk (worker)
    def send_chunk(self, account_id: str, campaign_id: str, index: int) -> str:
        chunk = self.store.chunk(account_id, campaign_id, index)
        if chunk is None:
            return "unknown_chunk"
        if chunk["state"] in ("sent", "failed"):
            self._maybe_finish(account_id, campaign_id)
            return "already_done"
        c = self._get(account_id, campaign_id)
        if c["state"] != d.State.SENDING or not c.get("snapshot_ready"):
            return f"not_sending_{c['state']}"
        if not self.store.claim_chunk(account_id, campaign_id, index, self.now_ms(), LEASE_MS):
            again = self.store.chunk(account_id, campaign_id, index) or {}
            if again.get("state") in ("sent", "failed"):
                self._maybe_finish(account_id, campaign_id)
                return "already_done"
            raise ChunkBusy("another worker is sending this chunk")
        token = self.tokens.access_token(account_id)
        variant = next(v for v in _variants(c) if v.name == chunk["variant"])
        outcome = "sent"
        request_id = None
        try:
            if not token:
                raise LineRefused(401, "no channel access token stored")
            if chunk.get("mode") == d.NARROWCAST:
                request_id = self._narrowcast(account_id, campaign_id, chunk, variant, token)
            else:
                ch = d.Chunk(index, chunk["variant"], tuple(chunk["user_ids"]), chunk["retry_key"])
                self.line.send(token, "multicast", d.multicast_body(ch, variant), chunk["retry_key"])
        except LineRefused as e:
            logger.warning("LINE refused a campaign chunk", extra={"campaign_id": campaign_id, "status": e.http_status})
            outcome = "failed"
        except LineApiError:
            self.store.drop_lease(account_id, campaign_id, index)
            raise  # SQS delivers it again; the same retry key keeps LINE from sending twice
        self.store.finish_chunk(account_id, campaign_id, chunk, outcome, self.now_ms(), request_id)
        self._maybe_finish(account_id, campaign_id)
        return outcome

    def _narrowcast(
        self, account_id: str, campaign_id: str, chunk: dict[str, Any], variant: d.Variant, token: str
    ) -> str | None:
        """Upload the variant's users as an audience (part by part, remembered, so a redelivery
        resumes; adding an id twice changes nothing), then one narrowcast with the retry key."""
        index = int(chunk["index"])
        parts = [int(p) for p in chunk.get("parts") or []]
        group = chunk.get("audience_group_id")
        done = int(chunk.get("parts_uploaded", 0))
        for k in range(done, len(parts)):
            ids = list((self.store.chunk(account_id, campaign_id, parts[k]) or {}).get("user_ids", []))
            if group is None:
                group = self.line.create_audience(token, f"tsunagu {campaign_id} {variant.name}", ids)
            else:
                self.line.add_to_audience(token, int(group), ids)
            self.store.note_chunk(
                account_id, campaign_id, index, {"audience_group_id": int(group), "parts_uploaded": k + 1}
            )
        if group is None:
            raise LineRefused(400, "the narrowcast has no audience")
        ch = d.Chunk(index, variant.name, (), chunk["retry_key"], d.NARROWCAST, tuple(parts), int(chunk["recipients"]))
        c = self._get(account_id, campaign_id)
        demographic = json.loads(c["demographic"]) if c.get("demographic") else None
        body = d.narrowcast_body(ch, variant, int(group), demographic)
        return self.line.narrowcast(token, body, chunk["retry_key"])

    def _maybe_finish(self, account_id: str, campaign_id: str) -> None:
        c = self._get(account_id, campaign_id)
        if c["state"] != d.State.SENDING or not c.get("snapshot_ready"):
            return
        sent, failed = int(c.get("chunks_sent", 0)), int(c.get("chunks_failed", 0))
        if sent + failed < int(c["chunks_total"]):
            return
        final = d.final_state(sent, failed)
        if self.store.transition(account_id, campaign_id, [d.State.SENDING], final, {"finished_ms": self.now_ms()}):
            self.metering.settle(
                account_id, d.reservation_id(account_id, campaign_id), int(c.get("recipients_sent", 0))
            )

    # ------------------------------------------------------------------ clicks, statistics, report
    def click(self, token: str) -> str | None:
        """The target of a tracked link, counted for its campaign and variant (None: unknown)."""
        link = self.store.link(token)
        if link is None:
            return None
        self.store.add_click(link["account_id"], link["campaign_id"], link["variant"])
        return str(link["url"])

    def fetch_insight(self, account_id: str, campaign_id: str) -> dict[str, Any]:
        """LINE's per-unit statistics of each variant, kept as LINE answered (null stays null)."""
        c = self._get(account_id, campaign_id)
        if not c.get("launched_ms"):
            raise Conflict("the campaign has not been sent", code="campaign_not_sent")
        token = self.tokens.access_token(account_id)
        if not token:
            raise Conflict("store the channel's access token first", code="channel_not_configured")
        first = datetime.fromtimestamp(int(c["launched_ms"]) / 1000, UTC).astimezone(JST).date()
        last = min(first + timedelta(days=29), datetime.now(UTC).astimezone(JST).date())
        units = {v.name: self.line.unit_insight(token, v.unit, first, max(first, last)) for v in _variants(c)}
        progress = {
            n["variant"]: self.line.narrowcast_progress(token, n["request_id"])
            for n in self.store.sent_narrowcasts(account_id, campaign_id)
        }
        doc = {"fetched_ms": self.now_ms(), "units": json.dumps(units), "narrowcasts": json.dumps(progress)}
        self.store.put_insight(account_id, campaign_id, doc)
        return {"campaign_id": campaign_id, "units": units, "narrowcasts": progress}

    def fetch_recent_insights(self, account_ids: Iterable[str], days: int = 30) -> dict[str, Any]:
        """The daily schedule: statistics of each campaign launched in the last ``days`` days (LINE
        keeps per-unit figures for 30 days from a start date). One account's failure does not
        stop the others."""
        cut = self.now_ms() - days * 86_400_000
        fetched, failed = 0, 0
        for aid in account_ids:
            for c in self.store.recent(aid, 100):
                if c.get("state") not in (d.State.SENT, d.State.PARTIALLY_SENT) or int(c.get("launched_ms", 0)) < cut:
                    continue
                try:
                    self.fetch_insight(aid, c["campaign_id"])
                    fetched += 1
                except DomainError:
                    failed += 1
                    logger.warning("campaign statistics not fetched", extra={"campaign_id": c["campaign_id"]})
        return {"fetched": fetched, "failed": failed}

    def report(self, account_id: str, campaign_id: str) -> dict[str, Any]:
        c = self._get(account_id, campaign_id)
        view = self.view(account_id, campaign_id)
        groups: dict[str, int] = view.get("snapshot", {}).get("groups", {})
        clicks = self.store.clicks(account_id, campaign_id)
        insight = self.store.insight(account_id, campaign_id)
        units = json.loads(insight["units"]) if insight else {}
        conversions = self._conversions(account_id, campaign_id, c)
        rows: list[dict[str, Any]] = []
        for v in _variants(c):
            sent = int(c.get(f"sent_{v.name}", 0))
            overview = (units.get(v.name) or {}).get("overview") or {}
            rows.append(
                {
                    "group": v.name,
                    "ratio": v.ratio,
                    "recipients": groups.get(v.name, 0),
                    "sent": sent,
                    "tracked_clicks": int(clicks.get(v.name, 0)),
                    "click_rate": round(clicks.get(v.name, 0) / sent, 6) if sent else None,
                    "line_unique_impressions": overview.get("uniqueImpression"),
                    "line_unique_clicks": overview.get("uniqueClick"),
                    "line_unique_media_played": overview.get("uniqueMediaPlayed"),
                    "conversions": conversions.get(v.name) if conversions is not None else None,
                }
            )
        holdout = groups.get(d.HOLDOUT, 0)
        hold_conv = conversions.get(d.HOLDOUT) if conversions is not None else None
        out_rows = [
            *rows,
            {
                "group": d.HOLDOUT,
                "ratio": None,
                "recipients": holdout,
                "sent": 0,
                "tracked_clicks": 0,
                "click_rate": None,
                "line_unique_impressions": None,
                "line_unique_clicks": None,
                "line_unique_media_played": None,
                "conversions": hold_conv,
            },
        ]
        comparisons = []
        if conversions is not None:
            for r in rows:
                cmp = d.two_proportion_z(int(r["conversions"] or 0), int(r["recipients"]), hold_conv or 0, holdout)
                comparisons.append({"metric": "conversion", "group": r["group"], "against": d.HOLDOUT, **_cmp(cmp)})
        if len(rows) >= 2:
            a, b = rows[0], rows[1]
            cmp = d.two_proportion_z(a["tracked_clicks"], a["sent"], b["tracked_clicks"], b["sent"])
            comparisons.append({"metric": "tracked_click", "group": a["group"], "against": b["group"], **_cmp(cmp)})
        winner = None
        significant = [x for x in comparisons if x["p_value"] is not None and x["p_value"] < 0.05]
        if significant:
            best = min(significant, key=lambda x: x["p_value"])
            winner = best["group"] if (best["difference"] or 0) > 0 else best["against"]
        return {
            "campaign_id": campaign_id,
            "state": c["state"],
            "groups": out_rows,
            "comparisons": comparisons,
            "test": "two-proportion z-test, two-sided, pooled standard error; a winner needs p < 0.05",
            "winner": winner,
            "line_statistics_note": "LINE answers null for fewer than 20 users; nulls are shown as null",
            "narrowcasts": json.loads(insight.get("narrowcasts") or "{}") if insight else {},
            "conversion": {"coupon_id": c.get("coupon_id"), "window_days": CONVERSION_DAYS}
            if c.get("coupon_id")
            else None,
        }

    def _conversions(self, account_id: str, campaign_id: str, c: dict[str, Any]) -> dict[str, int] | None:
        """Redemptions of the campaign's coupon within the window after launch, per group (the
        hold-out included: that is the baseline)."""
        if not c.get("coupon_id") or not c.get("launched_ms") or self.redemptions is None:
            return None
        start = datetime.fromtimestamp(int(c["launched_ms"]) / 1000, UTC).astimezone(JST).date()
        end = start + timedelta(days=CONVERSION_DAYS)
        rows = self.redemptions.redemptions(account_id, start.isoformat(), end.isoformat())
        variants = _variants(c)
        hold = int(c.get("holdout_percent", 0))
        out: dict[str, int] = {v.name: 0 for v in variants} | {d.HOLDOUT: 0}
        seen: set[str] = set()
        for r in rows:
            u = r.get("user_id")
            if r.get("coupon_id") != c["coupon_id"] or r.get("status") == "voided" or not u or u in seen:
                continue
            seen.add(u)
            out[d.assign(campaign_id, u, variants, hold)] += 1
        return out


def _cmp(c: d.Comparison) -> dict[str, Any]:
    return {"test": c.test, "difference": c.difference, "z": c.z, "p_value": c.p_value}


REPORT_COLUMNS = (
    "group",
    "ratio",
    "recipients",
    "sent",
    "tracked_clicks",
    "click_rate",
    "line_unique_impressions",
    "line_unique_clicks",
    "line_unique_media_played",
    "conversions",
)


def report_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(REPORT_COLUMNS)
    for g in report["groups"]:
        w.writerow(["" if g[k] is None else g[k] for k in REPORT_COLUMNS])
    w.writerow([])
    w.writerow(["metric", "group", "against", "difference", "z", "p_value", "test"])
    for x in report["comparisons"]:
        w.writerow([x["metric"], x["group"], x["against"], x["difference"], x["z"], x["p_value"], x["test"]])
    w.writerow(["winner", report["winner"] or ""])
    return "\ufeff" + out.getvalue()
