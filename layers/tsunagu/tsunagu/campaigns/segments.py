"""Segments: saved rule trees over a friend's facts, validated against the account's tag and
field definitions, compiled once into one Python predicate and evaluated in one pass over the
account's friend records (R-LINK-7, R-CPN-7: linked members and their register attributes are
first-class conditions; R-MSG-1: targeting by audience).

A rule is JSON:

- ``{"all": [rule, ...]}``, ``{"any": [rule, ...]}``, ``{"not": rule}``
- ``{"tag": "vip"}`` - the friend carries the tag
- ``{"linked": true}`` - linked to a member of the register (false: not linked)
- ``{"blocked": false}`` - not blocked (a blocked friend never matches: LINE would drop them)
- ``{"attribute": "store", "in": ["S01", "S02"]}`` - a register attribute of the linked member:
  ``store``, ``plan``, ``prefecture``, ``age_band`` (a band such as ``"30s"``, never a date);
  ops ``eq``, ``ne``, ``in``
- ``{"field": "points", "gte": 100}`` - a custom field defined for the account (``string`` fields:
  ``eq``, ``ne``, ``in``; ``number`` fields also ``gt``, ``gte``, ``lt``, ``lte``)
- ``{"friend_days": {"gte": 30}}`` - days in the current friend state (``gte`` and/or ``lt``)
- ``{"last_message_days": {"lt": 7}}`` - days since the friend's last message to the account
  (``gte`` and/or ``lt``; a friend who never wrote counts as longest ago: ``gte`` matches,
  ``lt`` does not)
- ``{"clicked": "<campaign id>"}`` - clicked a tracked link of that campaign
- ``{"redeemed": "<coupon id>"}`` - redeemed that coupon at least once

Compiling to one expression (constants bound by name, never spliced into the source) keeps the
per-friend cost near a hand-written ``if`` (bench/segments.py measures it). The records the
predicate reads are ``FriendFacts`` dicts; the store builds them from a few whole-partition
queries, never one read per friend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

from tsunagu.errors import ValidationFailed

MAX_DEPTH = 6
MAX_NODES = 64
MAX_LIST = 100
DAY_MS = 86_400_000
ATTRIBUTES = ("store", "plan", "prefecture", "age_band")
STRING_OPS = ("eq", "ne", "in")
NUMBER_OPS = (*STRING_OPS, "gt", "gte", "lt", "lte")
_PY_OPS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
SAMPLE_SIZE = 5


class FriendFacts(TypedDict):
    """What a rule can see of one friend (no raw personal data: age as a band only)."""

    user_id: str
    blocked: bool
    since_ms: int
    last_inbound_ms: int  # 0: never wrote
    linked: bool
    store: str | None
    plan: str | None
    prefecture: str | None
    age_band: str | None
    tags: frozenset[str]
    fields: dict[str, Any]
    clicked: frozenset[str]
    redeemed: frozenset[str]


@dataclass(frozen=True, slots=True)
class Definitions:
    """The account's vocabulary: its tags and its custom fields (name -> ``string``/``number``)."""

    tags: frozenset[str]
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Needs:
    """Which fact sources a rule reads (the store skips the queries nobody needs)."""

    members: bool
    links: bool
    coupons: frozenset[str]


class RuleInvalid(ValidationFailed):
    code = "rule_invalid"


def _refuse(code: str, message: str) -> RuleInvalid:
    return RuleInvalid(message, code=code)


class _Compiler:
    def __init__(self, defs: Definitions, now_ms: int):
        self.defs = defs
        self.now_ms = now_ms
        self.consts: dict[str, Any] = {}
        self.nodes = 0
        self.walrus = 0
        self.members = self.links = False
        self.coupons: set[str] = set()

    def const(self, value: Any) -> str:
        name = f"k{len(self.consts)}"
        self.consts[name] = value
        return name

    def expr(self, rule: Any, depth: int) -> str:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _refuse("rule_too_large", f"a rule may hold at most {MAX_NODES} conditions and groups")
        if depth > MAX_DEPTH:
            raise _refuse("rule_too_deep", f"a rule may nest at most {MAX_DEPTH} levels")
        if not isinstance(rule, dict) or not rule:
            raise _refuse("rule_invalid", "each rule is a JSON object")
        if "all" in rule or "any" in rule:
            kind = "all" if "all" in rule else "any"
            self._only(rule, {kind})
            parts = rule[kind]
            if not isinstance(parts, list) or not parts:
                raise _refuse("rule_invalid", f"'{kind}' holds a non-empty list of rules")
            joined = (" and " if kind == "all" else " or ").join(self.expr(p, depth + 1) for p in parts)
            return f"({joined})"
        if "not" in rule:
            self._only(rule, {"not"})
            return f"(not {self.expr(rule['not'], depth + 1)})"
        return self._leaf(rule)

    def _leaf(self, rule: dict[str, Any]) -> str:
        if "tag" in rule:
            self._only(rule, {"tag"})
            tag = rule["tag"]
            if not isinstance(tag, str) or tag not in self.defs.tags:
                raise _refuse("unknown_tag", f"unknown tag {str(tag)[:64]!r}: define it first (PUT /tags/{{tag}})")
            return f"({self.const(tag)} in r['tags'])"
        if "linked" in rule or "blocked" in rule:
            which = "linked" if "linked" in rule else "blocked"
            self._only(rule, {which})
            if not isinstance(rule[which], bool):
                raise _refuse("rule_invalid", f"'{which}' is true or false")
            self.links = self.links or which == "linked"
            return f"(r['{which}'])" if rule[which] else f"(not r['{which}'])"
        if "attribute" in rule:
            name = rule["attribute"]
            if name not in ATTRIBUTES:
                raise _refuse("unknown_attribute", f"attribute must be one of {', '.join(ATTRIBUTES)}")
            self.members = self.links = True
            return self._compare(rule, "attribute", f"r['{name}']", STRING_OPS, "string")
        if "field" in rule:
            name = rule["field"]
            field_kind = self.defs.fields.get(name) if isinstance(name, str) else None
            if field_kind is None:
                raise _refuse(
                    "unknown_field", f"unknown field {str(name)[:64]!r}: define it first (PUT /fields/{{name}})"
                )
            ops = NUMBER_OPS if field_kind == "number" else STRING_OPS
            return self._compare(rule, "field", f"r['fields'].get({self.const(name)})", ops, field_kind)
        for name, attr in (("friend_days", "since_ms"), ("last_message_days", "last_inbound_ms")):
            if name in rule:
                return self._days(rule, name, attr)
        if "clicked" in rule or "redeemed" in rule:
            which = "clicked" if "clicked" in rule else "redeemed"
            self._only(rule, {which})
            ref = rule[which]
            if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
                raise _refuse("rule_invalid", f"'{which}' names a {'campaign' if which == 'clicked' else 'coupon'} id")
            if which == "redeemed":
                self.coupons.add(ref)
            return f"({self.const(ref)} in r['{which}'])"
        raise _refuse("rule_invalid", f"unknown rule keys: {', '.join(sorted(map(str, rule)))[:120]}")

    def _days(self, rule: dict[str, Any], name: str, attr: str) -> str:
        """``{name: {gte: n, lt: m}}`` over a moment in ms: ``gte n`` <=> at or before now - n days."""
        self._only(rule, {name})
        bounds = rule[name]
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"gte", "lt"}:
            raise _refuse("rule_invalid", f"'{name}' takes {{'gte': n}} and/or {{'lt': n}}")
        parts = []
        for op, days in bounds.items():
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 36_500:
                raise _refuse("rule_invalid", f"{name} bounds are whole days, 0-36500")
            cut = self.now_ms - days * DAY_MS
            parts.append(f"r['{attr}'] {'<=' if op == 'gte' else '>'} {self.const(cut)}")
        return "(" + " and ".join(parts) + ")"

    def _only(self, rule: dict[str, Any], allowed: set[str]) -> None:
        extra = set(rule) - allowed
        if extra:
            raise _refuse("rule_invalid", f"unexpected keys beside {'/'.join(sorted(allowed))}: {sorted(extra)[:5]}")

    def _compare(self, rule: dict[str, Any], head: str, target: str, ops: tuple[str, ...], kind: str) -> str:
        given = [k for k in rule if k != head]
        if len(given) != 1 or given[0] not in ops:
            raise _refuse("rule_invalid", f"'{head}' takes exactly one of: {', '.join(ops)}")
        op = given[0]
        value = rule[op]
        if op == "in":
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
                raise _refuse("rule_invalid", f"'in' takes a list of 1-{MAX_LIST} values")
            for v in value:
                self._check_value(v, kind)
            return f"({target} in {self.const(frozenset(value))})"
        self._check_value(value, kind)
        if op in ("eq", "ne"):
            return f"({target} {_PY_OPS[op]} {self.const(value)})"
        # Ordering needs a number: a missing field never matches.
        self.walrus += 1
        v = f"v{self.walrus}"
        return f"(({v} := {target}) is not None and {v} {_PY_OPS[op]} {self.const(value)})"

    @staticmethod
    def _check_value(value: Any, kind: str) -> None:
        if kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str) and len(value) <= 200
        if not ok:
            raise _refuse("rule_invalid", f"values compared with a {kind} must be {kind}s")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    predicate: Callable[[FriendFacts], bool]
    select: Callable[[Iterable[FriendFacts]], list[str]]
    source: str
    needs: Needs


def compile_rule(rule: Any, defs: Definitions, now_ms: int) -> CompiledRule:
    """Validate ``rule`` (limits, known tags and fields) and build its predicate."""
    c = _Compiler(defs, now_ms)
    expr = c.expr(rule, 1)
    # Blocked friends never receive: the test is part of the one predicate, not a second pass.
    # Constants are bound as defaults (fast locals), never spliced into the text: only names we
    # generated reach eval, and it sees no builtins.
    params = "".join(f", {k}={k}" for k in c.consts)
    test = f"{expr} and not r['blocked']"
    namespace = {"__builtins__": {}, **c.consts}
    predicate = eval(f"lambda r{params}: {test}", namespace)  # noqa: S307 - generated from a validated tree
    # The one pass as one comprehension: no function call per friend.
    source = f"lambda rs{params}: [r['user_id'] for r in rs if {test}]"
    select = eval(source, namespace)  # noqa: S307 - generated from a validated tree
    return CompiledRule(predicate, select, source, Needs(c.members, c.links, frozenset(c.coupons)))


@dataclass(frozen=True, slots=True)
class Evaluation:
    recipients: list[str]  # matched and not blocked: who a campaign would send to, in record order
    sample: list[str]


def evaluate(rule: CompiledRule, records: Iterable[FriendFacts], sample_size: int = SAMPLE_SIZE) -> Evaluation:
    """One pass: every record is tested once."""
    recipients = rule.select(records)
    return Evaluation(recipients, recipients[:sample_size])


def facts(
    user_id: str,
    *,
    blocked: bool = False,
    since_ms: int = 0,
    last_inbound_ms: int = 0,
    linked: bool = False,
    member: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
    fields: dict[str, Any] | None = None,
    clicked: Iterable[str] = (),
    redeemed: Iterable[str] = (),
) -> FriendFacts:
    """One friend's facts in the shape the predicate reads."""
    m = member or {}
    return {
        "user_id": user_id,
        "blocked": blocked,
        "since_ms": since_ms,
        "last_inbound_ms": last_inbound_ms,
        "linked": linked,
        "store": m.get("store"),
        "plan": m.get("plan"),
        "prefecture": m.get("prefecture"),
        "age_band": m.get("age_band"),
        "tags": frozenset(tags),
        "fields": fields or {},
        "clicked": frozenset(clicked),
        "redeemed": frozenset(redeemed),
    }


FIELD_PREFIX = "f_"  # a custom field is stored as a top-level attribute of the friend's facts item


def fields_of(item: dict[str, Any]) -> dict[str, Any]:
    """The custom fields of a stored facts item (numbers as int or float, not Decimal)."""
    out: dict[str, Any] = {}
    for k, v in item.items():
        if k.startswith(FIELD_PREFIX):
            number = isinstance(v, Decimal)
            out[k[len(FIELD_PREFIX) :]] = (int(v) if v == v.to_integral_value() else float(v)) if number else v
    return out
