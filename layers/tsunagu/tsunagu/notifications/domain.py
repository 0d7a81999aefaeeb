"""LINE notification messages by phone number (R-PNP-1 ... R-PNP-5; line-platform.md section 4).

Pure rules, no AWS and no pydantic (the sender imports this on its cold start):
- who may send (R-PNP-3: verified or premium accounts under a certified provider);
- templates: LINE's two products - *flexible* messages (1-5 message objects, no image / video /
  audio, needs LINE's prior UX review) and *template* messages (a premade ``templateKey`` with
  items) - with ``{{name}}`` placeholders filled per notification; advertising is refused
  (R-PNP-3 "important, non-advertising messages", R-PNP-1);
- per-item acceptance of a batch: E.164, the allowed countries (R-PNP-2), the business's own
  reference (deduplicated), the parameters;
- the delivery tag (``X-Line-Delivery-Tag``, 16-100 characters) derived from the reference, so
  the same reference is the same notification everywhere;
- the states a notification moves through and the batch report.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tsunagu.notifications.phone import MAX_PHONE_CHARS, region_of, to_e164

# ----------------------------------------------------------------------------- eligibility
SENDING_ACCOUNT_TYPES = frozenset({"verified", "premium"})


def eligibility_problem(account_type: str, certified_provider: bool) -> str | None:
    """Why an account may not send notification messages (R-PNP-3), or None when it may."""
    missing = []
    if account_type not in SENDING_ACCOUNT_TYPES:
        missing.append(f"the account is '{account_type}' (verified or premium required)")
    if not certified_provider:
        missing.append("the provider is not certified")
    return "; ".join(missing) or None


# ----------------------------------------------------------------------------- templates
FLEXIBLE = "flexible"
TEMPLATE = "template"
PENDING = "pending"
APPROVED = "approved"

# Message types LINE refuses in notification messages (no images, video or audio; an imagemap
# is an image).
REFUSED_MESSAGE_TYPES = frozenset({"image", "video", "audio", "imagemap"})
MESSAGE_TYPES = frozenset({"text", "flex", "sticker", "template", "location", *REFUSED_MESSAGE_TYPES})
PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]{0,31})\s*\}\}")
PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # what a placeholder can name
# Emphasised items are at most 15 characters, items 300, button URLs 1000 (line-platform.md 4.2).
EMPHASIZED_LIMIT, ITEM_LIMIT, BUTTON_URL_LIMIT = 15, 300, 1000
TEMPLATE_KEY = re.compile(r"^[a-z0-9_]{1,100}$")
ITEM_KEY = re.compile(r"^[a-z0-9_]{1,100}$")
MAX_JSON_BYTES = 30_000

# Words that mark a message as advertising or promotion. Notification messages may carry only
# important, non-advertising information (R-PNP-1, R-PNP-3); a template containing any of these
# is refused before anyone reviews it. Matched after NFKC folding and lower-casing.
ADVERTISING_TERMS: tuple[str, ...] = (
    "セール",
    "sale",
    "クーポン",
    "coupon",
    "キャンペーン",
    "campaign",
    "割引",
    "値引",
    "%off",
    "% off",
    "特価",
    "お得",
    "今だけ",
    "期間限定",
    "新商品",
    "新発売",
    "ポイント還元",
    "ポイント2倍",
    "プレゼント",
    "抽選",
    "友だち追加",
    "友だち登録",
    "キャッシュバック",
    "discount",
    "promotion",
    "limited time",
)


class TemplateInvalid(ValueError):
    """A template's content breaks LINE's or tsunagu's rules; ``code`` is stable."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def advertising_term(content: Any) -> str | None:
    """The first advertising term found in any text of ``content``."""
    for s in _strings(content):
        folded = unicodedata.normalize("NFKC", s).lower()
        for term in ADVERTISING_TERMS:
            if term in folded:
                return term
    return None


def placeholders(content: Any) -> frozenset[str]:
    return frozenset(name for s in _strings(content) for name in PLACEHOLDER.findall(s))


def check_template(kind: str, content: Mapping[str, Any]) -> None:
    """Raise ``TemplateInvalid`` unless ``content`` is a sendable template of ``kind``.

    flexible: ``{"messages": [message objects]}``; template: ``{"template_key": ...,
    "body": {"emphasizedItem"?, "items"?, "buttons"?}}`` (LINE's templated push body)."""
    if len(json.dumps(content, ensure_ascii=False).encode()) > MAX_JSON_BYTES:
        raise TemplateInvalid("template_too_large", f"a template is at most {MAX_JSON_BYTES} bytes of JSON")
    if kind == FLEXIBLE:
        _check_flexible(content)
    elif kind == TEMPLATE:
        _check_templated(content)
    else:
        raise TemplateInvalid("template_kind", "kind must be 'flexible' or 'template'")
    term = advertising_term(content)
    if term is not None:
        raise TemplateInvalid(
            "advertising_content",
            f"notification messages may not advertise (found '{term}'); send promotions as ordinary messages",
        )


def _check_flexible(content: Mapping[str, Any]) -> None:
    if set(content) - {"messages"}:
        raise TemplateInvalid("template_fields", "a flexible template has only 'messages'")
    messages = content.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        raise TemplateInvalid("message_count", "a flexible template holds 1 to 5 message objects")
    for i, m in enumerate(messages):
        kind = m.get("type") if isinstance(m, Mapping) else None
        if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
            raise TemplateInvalid("message_type", f"messages[{i}]: unknown message type")
        if kind in REFUSED_MESSAGE_TYPES:
            raise TemplateInvalid("message_type", f"messages[{i}]: {kind} is not allowed in notification messages")
        if kind == "text":
            text = m.get("text")
            if not isinstance(text, str) or not 1 <= len(text) <= 5000:
                raise TemplateInvalid("message_text", f"messages[{i}]: text must be 1 to 5000 characters")


def _check_templated(content: Mapping[str, Any]) -> None:
    if set(content) - {"template_key", "body"}:
        raise TemplateInvalid("template_fields", "a template has only 'template_key' and 'body'")
    if not isinstance(content.get("template_key"), str) or not TEMPLATE_KEY.fullmatch(content["template_key"]):
        raise TemplateInvalid("template_key", "template_key must be LINE's key, e.g. shipment_completed_ja")
    body = content.get("body") or {}
    if not isinstance(body, Mapping) or set(body) - {"emphasizedItem", "items", "buttons"}:
        raise TemplateInvalid("template_body", "body may hold emphasizedItem, items and buttons")
    keys: list[str] = []
    emphasized = body.get("emphasizedItem")
    if emphasized is not None:
        keys.append(_item(emphasized, "emphasizedItem", "itemKey", limit=EMPHASIZED_LIMIT))
    items = body.get("items") or []
    if not isinstance(items, list) or len(items) > 15:
        raise TemplateInvalid("template_items", "at most 15 items")
    keys += [_item(it, f"items[{i}]", "itemKey", limit=ITEM_LIMIT) for i, it in enumerate(items)]
    if len(keys) != len(set(keys)):
        raise TemplateInvalid("template_items", "an itemKey may appear only once")
    buttons = body.get("buttons") or []
    if not isinstance(buttons, list) or len(buttons) > 2:
        raise TemplateInvalid("template_buttons", "at most 2 buttons")
    for i, b in enumerate(buttons):
        _item(b, f"buttons[{i}]", "buttonKey", value="url", limit=BUTTON_URL_LIMIT)


def _item(it: Any, where: str, key_field: str, value: str = "content", limit: int = 0) -> str:
    if not isinstance(it, Mapping) or set(it) != {key_field, value}:
        raise TemplateInvalid("template_items", f"{where}: needs exactly {key_field} and {value}")
    key, text = it[key_field], it[value]
    if not isinstance(key, str) or not ITEM_KEY.fullmatch(key) or not isinstance(text, str) or not text:
        raise TemplateInvalid("template_items", f"{where}: {key_field} and {value} must be non-empty strings")
    if limit and len(PLACEHOLDER.sub("", text)) > limit:  # its fixed text alone; filled, it is checked again
        raise TemplateInvalid("template_items", f"{where}: {value} is at most {limit} characters")
    return key


def content_digest(kind: str, content: Mapping[str, Any]) -> str:
    """Identity of a template's content: any change sends it back to review (R-PNP-3)."""
    canonical = json.dumps({"kind": kind, "content": content}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def render(kind: str, content: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """The LINE request body of one notification: placeholders filled from ``params``.

    Raises ``ItemRefused`` for a missing parameter or a filled item past LINE's length limits."""

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: params[m.group(1)], node)
        if isinstance(node, Mapping):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    missing = sorted(placeholders(content) - set(params))
    if missing:
        raise ItemRefused("missing_parameter", f"parameters missing: {', '.join(missing)}")
    if kind == FLEXIBLE:
        messages = fill(content["messages"])
        for m in messages:
            if m.get("type") == "text" and len(m["text"]) > 5000:
                raise ItemRefused("parameter_too_long", "a text message is at most 5000 characters")
        return {"messages": messages}
    body = fill(content.get("body") or {})
    emphasized = body.get("emphasizedItem")
    if emphasized and len(emphasized["content"]) > EMPHASIZED_LIMIT:
        raise ItemRefused("parameter_too_long", f"the emphasized item is at most {EMPHASIZED_LIMIT} characters")
    if any(len(it["content"]) > ITEM_LIMIT for it in body.get("items", [])):
        raise ItemRefused("parameter_too_long", f"a template item is at most {ITEM_LIMIT} characters")
    if any(len(b["url"]) > BUTTON_URL_LIMIT for b in body.get("buttons", [])):
        raise ItemRefused("parameter_too_long", f"a button URL is at most {BUTTON_URL_LIMIT} characters")
    out: dict[str, Any] = {"templateKey": content["template_key"]}
    if body:
        out["body"] = body
    return out


# ----------------------------------------------------------------------------- batch items
# R-PNP-2 lists Japan, Thailand, Taiwan and Indonesia; LINE's current docs list only the first
# three (line-platform.md 4.1), so that is the default and Indonesia is an account setting.
KNOWN_COUNTRIES = ("JP", "TH", "TW", "ID")
DEFAULT_COUNTRIES = ("JP", "TH", "TW")
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$")
MAX_ITEMS_PER_BATCH = 1000
MAX_PARAM_CHARS = 300

REFUSALS = {
    "invalid_reference": "reference must be 1-100 characters: letters, digits and _ . : / -",
    "invalid_phone": "not a valid phone number",
    "country_not_allowed": "numbers from this country cannot receive LINE notification messages here",
    "invalid_parameters": "parameters must map names to strings of at most 300 characters",
    "missing_parameter": "a parameter the template needs is missing",
    "parameter_too_long": "a filled-in item is longer than LINE allows",
}


class ItemRefused(ValueError):
    def __init__(self, code: str, message: str | None = None):
        super().__init__(message or REFUSALS[code])
        self.code = code
        self.message = message or REFUSALS[code]


@dataclass(frozen=True, slots=True)
class AcceptedItem:
    index: int
    reference: str
    tag: str
    e164: str  # lives only in memory: hashed into ``line_to`` / the member key, never stored
    region: str
    params: dict[str, str]


def delivery_tag(account_id: str, reference: str) -> str:
    """``X-Line-Delivery-Tag`` (16-100 characters; LINE echoes it in the ``delivery`` event):
    32 hex characters derived from the business's reference, so a reference is one notification."""
    return hashlib.sha256(f"{account_id}\x1f{reference}".encode()).hexdigest()[:32]


def accept_item(
    account_id: str,
    index: int,
    item: Any,
    countries: Iterable[str],
    kind: str,
    content: Mapping[str, Any],
) -> AcceptedItem:
    """One batch item, checked; raises ``ItemRefused`` with a stable code. Numbers without a
    leading ``+`` are read as Japanese."""
    if not isinstance(item, Mapping):
        raise ItemRefused("invalid_reference", "each item is an object with phone, reference, parameters")
    reference = item.get("reference")
    if not isinstance(reference, str) or not REFERENCE.fullmatch(reference):
        raise ItemRefused("invalid_reference")
    params = item.get("parameters") or {}
    if (
        not isinstance(params, Mapping)
        or len(params) > 50
        or not all(
            isinstance(k, str) and PARAM_NAME.fullmatch(k) and isinstance(v, str) and len(v) <= MAX_PARAM_CHARS
            for k, v in params.items()
        )
    ):
        raise ItemRefused("invalid_parameters")
    phone = item.get("phone")
    e164 = to_e164(phone) if isinstance(phone, str) and 0 < len(phone) <= MAX_PHONE_CHARS else None
    if e164 is None:
        raise ItemRefused("invalid_phone")
    region = str(region_of(e164))
    if region not in set(countries):
        raise ItemRefused("country_not_allowed", f"numbers from {region} cannot receive notification messages here")
    render(kind, content, params)  # refuses a missing parameter or an over-long item now, not at send time
    return AcceptedItem(index, reference, delivery_tag(account_id, reference), e164, region, dict(params))


def domestic_jp(e164: str) -> str | None:
    """The domestic form the member register hashes (``+8190...`` -> ``090...``), JP only."""
    return "0" + e164[3:] if e164.startswith("+81") else None


# ----------------------------------------------------------------------------- states
ACCEPTED = "accepted"  # stored and queued, not yet sent
SENDING = "sending"  # a sender holds the claim and is calling LINE
# LINE accepted it (200 / 202). A notification message waits here for its delivery event; a
# push stays here for good (LINE sends no delivery event for pushes).
SENT = "sent"
DELIVERED = "delivered"  # the delivery event came: the user can see the message
UNDELIVERED = "undelivered"  # no delivery event within 24 hours of the send (line-platform.md 4.5)
FAILED = "failed"  # LINE refused it (4xx) - final, with the reason

STATES = (ACCEPTED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED)
FINAL_STATES = frozenset({DELIVERED, UNDELIVERED, FAILED})
UNDELIVERED_WINDOW_MS = 24 * 3600 * 1000

ROUTE_PUSH = "push"
ROUTE_PNP = "pnp"
ROUTING_PUSH_TO_FRIENDS = "push_to_friends"
ROUTING_ALWAYS_PNP = "always_notification"


def choose_route(routing: str, kind: str, reachable_friend: bool) -> str:
    """A linked member who is a non-blocked friend may get an ordinary push when the account
    says so; a premade LINE template exists only as a notification message."""
    if routing == ROUTING_PUSH_TO_FRIENDS and kind == FLEXIBLE and reachable_friend:
        return ROUTE_PUSH
    return ROUTE_PNP


def failure_reason(status: int, message: str) -> str:
    """A stable reason for LINE's final refusals (line-platform.md 4.2). A malformed ``to`` is
    400 "The value must be a valid SHA-256 digest." in LINE's reference; LINE's OpenAPI document
    lists only 422 for ``/bot/pnp/push``, so either status with that message is the same reason."""
    if status in (400, 422) and "sha-256" in message.lower():
        return "invalid_destination"
    if status == 422:
        return "no_reachable_user"  # no LINE user with that number, not a target country, no consent
    if status == 403:
        return "not_permitted"
    if status == 400:
        return "invalid_request"
    return f"line_{status}"


def report_counts(states: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    return counts
