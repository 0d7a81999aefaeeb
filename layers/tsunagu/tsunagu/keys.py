"""Every DynamoDB key string tsunagu writes is built here, and nowhere else.

The access patterns these keys serve are listed in ``docs/data-model.md``.
"""

from __future__ import annotations

import zlib

ACCOUNTS_INDEX_PK = "ACCOUNTS"


def account(account_id: str) -> dict[str, str]:
    """The account (one LINE OA) and its settings."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "ACCOUNT"}


def account_index(account_id: str, created_at: str) -> dict[str, str]:
    """GSI1 entry that lists every account (for schedules that walk all accounts)."""
    return {"GSI1PK": ACCOUNTS_INDEX_PK, "GSI1SK": f"{created_at}#{account_id}"}


def account_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def friend(account_id: str, user_id: str) -> dict[str, str]:
    """One LINE user's friendship with one account."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"FRIEND#{user_id}"}


FRIEND_SK_PREFIX = "FRIEND#"


def friend_counts(account_id: str) -> dict[str, str]:
    """Running friend / blocked counters of one account (updated with ADD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "COUNTS#FRIENDS"}


def friend_stats_day(account_id: str, day: str) -> dict[str, str]:
    """Daily snapshot of the friend counters (``day`` is a JST date, YYYY-MM-DD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"STATS#FRIENDS#{day}"}


def webhook_event(account_id: str, webhook_event_id: str) -> dict[str, str]:
    """Marker that an event's state change has been applied (exactly-once on webhookEventId)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"EVENT#{webhook_event_id}"}


def chat_partition(account_id: str, user_id: str) -> str:
    return f"ACCOUNT#{account_id}#CHAT#{user_id}"


CHAT_SK_PREFIX = "MSG#"


def chat_message(account_id: str, user_id: str, timestamp_ms: int, message_id: str) -> dict[str, str]:
    """One archived 1:1 chat message: by time inside the user's history (table), and by time
    across all of the account's chats (GSI1)."""
    return {
        "PK": chat_partition(account_id, user_id),
        "SK": f"{CHAT_SK_PREFIX}{timestamp_ms:013d}#{message_id}",
        "GSI1PK": chats_index(account_id),
        "GSI1SK": f"{timestamp_ms:013d}#{user_id}#{message_id}",
    }


def chats_index(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#CHATS"


def chat_message_pointer(account_id: str, user_id: str, message_id: str) -> dict[str, str]:
    """message id -> the message's sort key (an ``unsend`` event names only the id)."""
    return {"PK": chat_partition(account_id, user_id), "SK": f"MSGID#{message_id}"}


def stored_event(account_id: str, event_type: str, timestamp_ms: int, event_id: str) -> dict[str, str]:
    """A webhook event kept as received (kinds no worker acts on yet, unknown kinds)."""
    return {"PK": f"ACCOUNT#{account_id}#EVENTS", "SK": f"{event_type}#{timestamp_ms:013d}#{event_id}"}


def event_counts(account_id: str) -> dict[str, str]:
    """Per-type counters of stored events (ADD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "COUNTS#EVENTS"}


# ---------------------------------------------------------------- member register and links
def member(account_id: str, member_number: str) -> dict[str, str]:
    """A member record of the business's register (factors as keyed hashes only)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"MEMBER#{member_number}"}


MEMBER_SK_PREFIX = "MEMBER#"


def factor_index(account_id: str, kind: str, factor_hash: str) -> dict[str, str]:
    """Lookup of a member by a unique factor (login id, usage code, e-mail), by its keyed hash."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"FACTOR#{kind}#{factor_hash}"}


def link_session(account_id: str, session_id: str) -> dict[str, str]:
    """A link page session (10 minutes, R-LINK-4) for one LINE user."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"LINKSESSION#{session_id}"}


def link_nonce(account_id: str, nonce: str) -> dict[str, str]:
    """An account-link nonce, bound to one member target and one LINE user; single use."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"NONCE#{nonce}"}


def link_target(account_id: str, target: str) -> dict[str, str]:
    """Uniqueness of a link target (``MEMBER#123``, ``CONTRACTOR#N0123456789``,
    ``LINE#N0123456789#L1``): at most one LINE account each (R-LINK-3)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"LINK#{target}"}


def user_link(account_id: str, user_id: str, target: str) -> dict[str, str]:
    """One LINE user's view of a link; GSI1 lists every linked user (segments, R-LINK-7)."""
    return {
        "PK": f"ACCOUNT#{account_id}#USER#{user_id}",
        "SK": f"LINK#{target}",
        "GSI1PK": f"ACCOUNT#{account_id}#LINKED",
        "GSI1SK": f"{user_id}#{target}",
    }


def user_partition(account_id: str, user_id: str) -> str:
    return f"ACCOUNT#{account_id}#USER#{user_id}"


def linked_index(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#LINKED"


def user_line_slot(account_id: str, user_id: str) -> dict[str, str]:
    """R-LINK-11: one LINE account holds at most one usage code (one user link)."""
    return {"PK": f"ACCOUNT#{account_id}#USER#{user_id}", "SK": "SLOT#USERLINK"}


def link_attempts(account_id: str, subject: str, window: int) -> dict[str, str]:
    """Failed link attempts of one LINE user or one member in one time window (ADD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"ATTEMPTS#{subject}#{window}"}


def link_limiter(account_id: str, subject: str) -> dict[str, str]:
    """The sliding-window log of one link-attempt subject (a LINE user, or a member number and
    a LINE user): the timestamps of its counted attempts in the window (conditional writes)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"LIMIT#{subject}"}


def link_generation(account_id: str, target: str) -> dict[str, str]:
    """How many times a link target was linked or released: a nonce carries the generation it
    was issued in and links only while it is unchanged (a link or a release kills the rest)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"LINKGEN#{target}"}


def guess_alert(account_id: str, member_number: str, bucket: int) -> dict[str, str]:
    """The one distributed-guessing alert of a member per hour bucket (a conditional put)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"GUESSALERT#{member_number}#{bucket}"}


def audit(account_id: str, at_ms: int, entry_id: str) -> dict[str, str]:
    """The link / unlink audit trail, in time order."""
    return {"PK": f"ACCOUNT#{account_id}#AUDIT", "SK": f"{at_ms:013d}#{entry_id}"}


def link_otp(account_id: str, session_id: str, channel: str) -> dict[str, str]:
    """A one-time code sent for one link session over one channel (email / phone); hash only."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"OTP#{session_id}#{channel}"}


def member_phone(account_id: str, phone_hash: str, member_number: str) -> dict[str, str]:
    """Members by the keyed hash of their phone (not unique: a family may share one number);
    notification messages find linked members this way."""
    return {"PK": f"ACCOUNT#{account_id}#PHONE#{phone_hash}", "SK": f"MEMBER#{member_number}"}


def member_phone_partition(account_id: str, phone_hash: str) -> str:
    return f"ACCOUNT#{account_id}#PHONE#{phone_hash}"


# ---------------------------------------------------------------- notification messages
def notification_template(account_id: str, template_id: str) -> dict[str, str]:
    """A notification template with its review status (pending / approved)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"NTEMPLATE#{template_id}"}


NTEMPLATE_SK_PREFIX = "NTEMPLATE#"


def notification_batch(account_id: str, batch_id: str) -> dict[str, str]:
    """One accepted batch: the template content it was accepted with, refusals, duplicates."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"NBATCH#{batch_id}"}


NBATCH_SK_PREFIX = "NBATCH#"


def notification(account_id: str, tag: str, batch_id: str, seq: int) -> dict[str, str]:
    """One notification, keyed by its delivery tag (derived from the business's reference, so a
    reference is accepted once); its own partition spreads a 100,000-item send. GSI1 lists a
    batch's notifications in order."""
    return {
        "PK": notification_partition(account_id, tag),
        "SK": "NOTIFICATION",
        "GSI1PK": notification_batch_index(account_id, batch_id),
        "GSI1SK": f"{seq:06d}",
    }


def notification_key(account_id: str, tag: str) -> dict[str, str]:
    return {"PK": notification_partition(account_id, tag), "SK": "NOTIFICATION"}


def notification_partition(account_id: str, tag: str) -> str:
    return f"ACCOUNT#{account_id}#NOTIF#{tag}"


def notification_batch_index(account_id: str, batch_id: str) -> str:
    return f"ACCOUNT#{account_id}#NBATCH#{batch_id}"


def notification_await(account_id: str, hour: str, tag: str) -> dict[str, str]:
    """A sent notification message waiting for its delivery event, filed under the UTC hour it
    was sent (``YYYYMMDDHH``); the 24-hour sweep reads whole past hours."""
    return {"PK": notification_await_partition(account_id, hour), "SK": tag}


def notification_await_partition(account_id: str, hour: str) -> str:
    return f"ACCOUNT#{account_id}#NAWAIT#{hour}"


# ---------------------------------------------------------------- usage ledger
def usage_entry(account_id: str, send_id: str) -> dict[str, str]:
    """One send in the usage ledger (idempotent on its send id)."""
    return {"PK": f"ACCOUNT#{account_id}#SEND#{send_id}", "SK": "USAGE"}


def usage_counter(account_id: str, month: str, shard: int) -> dict[str, str]:
    """One shard of an account-month's usage counters (ADD only); a rollup sums the shards."""
    return {"PK": f"ACCOUNT#{account_id}#USAGE#{month}", "SK": f"SHARD#{shard:02d}"}


def usage_month_partition(account_id: str, month: str) -> str:
    return f"ACCOUNT#{account_id}#USAGE#{month}"


# ---------------------------------------------------------------- plans, quota and billing
def plan_history(account_id: str) -> dict[str, str]:
    """The account's whole plan history in one item (read with one GetItem on every billed send)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "PLANS"}


def option_subscription(account_id: str, option: str, start: str) -> dict[str, str]:
    """A Chat Plus / Call Plus / premium ID subscription from ``start`` (JST date)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"OPTION#{option}#{start}"}


OPTION_SK_PREFIX = "OPTION#"


def quota_month(account_id: str, month: str) -> dict[str, str]:
    """The month's reserved billable recipients (one item: the cap check must be atomic)."""
    return {"PK": f"ACCOUNT#{account_id}#QUOTA#{month}", "SK": "QUOTA"}


def campaign_cap(account_id: str, campaign: str) -> dict[str, str]:
    """Recipients reserved by one campaign against its own cap (R-MSG-1)."""
    return {"PK": f"ACCOUNT#{account_id}#CAMPAIGN#{campaign}", "SK": "CAP"}


def reservation(account_id: str, send_id: str) -> dict[str, str]:
    """A send's quota reservation (released if the send fails)."""
    return {"PK": f"ACCOUNT#{account_id}#SEND#{send_id}", "SK": "RESERVATION"}


def open_reservation_index(account_id: str, at_ms: int, send_id: str) -> dict[str, str]:
    """GSI1 entry of a reservation neither committed nor released yet (sparse: commit removes it,
    release deletes the item), so the stale ones can be found without reading every send."""
    return {"GSI1PK": f"ACCOUNT#{account_id}#OPENSENDS", "GSI1SK": f"{at_ms:013d}#{send_id}"}


def usage_day(account_id: str, day: str) -> dict[str, str]:
    """The daily rollup: the month's counters as of ``day`` (JST)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"USAGEDAY#{day}"}


def invoice(account_id: str, month: str) -> dict[str, str]:
    """A closed month's invoice; written once, never changed."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"INVOICE#{month}"}


def quota_check(account_id: str, day: str) -> dict[str, str]:
    """Reconciliation of tsunagu's count with LINE's quota consumption on ``day``."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"QUOTACHECK#{day}"}


def points_grant(account_id: str, month: str, member_number: str, line_id: str) -> dict[str, str]:
    """R-PTS-1: one month's points for one contract line, granted once."""
    return {"PK": f"ACCOUNT#{account_id}#POINTS#{month}", "SK": f"{member_number}#{line_id}"}


def points_partition(account_id: str, month: str) -> str:
    return f"ACCOUNT#{account_id}#POINTS#{month}"


def billing_settings(account_id: str) -> dict[str, str]:
    """Budget (Standard plan: monthly yen / messages) and the LINE quota check's last result."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "BILLING"}


# ---------------------------------------------------------------- coupons
def coupon(account_id: str, coupon_id: str) -> dict[str, str]:
    """A coupon definition (R-CPN-1) with its grant settings and LINE mirror id."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"COUPON#{coupon_id}"}


COUPON_SK_PREFIX = "COUPON#"


def coupon_partition(account_id: str, coupon_id: str) -> str:
    return f"ACCOUNT#{account_id}#COUPON#{coupon_id}"


def coupon_counts(account_id: str, coupon_id: str) -> dict[str, str]:
    """A coupon's counters (ADD): grants, lottery winners (capped) and redemptions (capped)."""
    return {"PK": coupon_partition(account_id, coupon_id), "SK": "COUNTS"}


def coupon_grant(account_id: str, coupon_id: str, user_id: str) -> dict[str, str]:
    """One LINE user's grant of one coupon: the lottery outcome, drawn once, and the uses left.
    The uniqueness item for one use per person (R-CPN-5)."""
    return {"PK": coupon_partition(account_id, coupon_id), "SK": f"GRANT#{user_id}"}


GRANT_SK_PREFIX = "GRANT#"


def grant_serials(account_id: str) -> dict[str, str]:
    """The account's grant serial counter (ADD): the 8-digit reference a redemption code carries."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "SEQ#COUPONGRANT"}


def grant_ref(account_id: str, ref: str) -> dict[str, str]:
    """A redemption code's grant reference -> coupon and LINE user (the POS sends only the code)."""
    return {"PK": f"ACCOUNT#{account_id}#GRANTREF#{ref}", "SK": "GRANTREF"}


def redemption(account_id: str, redemption_id: str, day: str) -> dict[str, str]:
    """One redemption at a register; GSI1 lists the account's redemptions by JST day (reports)."""
    return {
        **redemption_key(account_id, redemption_id),
        "GSI1PK": redemptions_index(account_id),
        "GSI1SK": f"{day}#{redemption_id}",
    }


def redemption_key(account_id: str, redemption_id: str) -> dict[str, str]:
    return {"PK": f"ACCOUNT#{account_id}#REDEMPTION#{redemption_id}", "SK": "REDEMPTION"}


def redemptions_index(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#REDEMPTIONS"


def redemption_request(account_id: str, idempotency_key_hash: str) -> dict[str, str]:
    """The POS's idempotency key (hashed) -> the result it got; written with the redemption."""
    return {"PK": f"ACCOUNT#{account_id}#IDEM#{idempotency_key_hash}", "SK": "REDEMPTION"}


# ---------------------------------------------------------------- audiences and campaigns
def audience_definitions(account_id: str) -> dict[str, str]:
    """The account's tag names and custom field definitions (what rules may name)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "AUDIENCE#DEFS"}


def tag_rules(account_id: str) -> dict[str, str]:
    """The account's automatic tagging rules (a keyword typed or a postback adds / removes tags)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "AUDIENCE#TAGRULES"}


def audience_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#AUDIENCE"


def audience_facts(account_id: str, user_id: str) -> dict[str, str]:
    """One friend's tags, custom fields and tracked clicks (changed with ADD / DELETE / SET of one
    path, never replaced whole); the whole partition is one Query when a segment is evaluated."""
    return {"PK": audience_partition(account_id), "SK": user_id}


def segment(account_id: str, segment_id: str) -> dict[str, str]:
    """A saved segment: a rule tree over friend facts."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"SEGMENT#{segment_id}"}


SEGMENT_SK_PREFIX = "SEGMENT#"


def campaign_partition(account_id: str, campaign_id: str) -> str:
    return f"ACCOUNT#{account_id}#CAMPAIGN#{campaign_id}"


def campaign(account_id: str, campaign_id: str, created_ms: int | None = None) -> dict[str, str]:
    """A campaign (its content, state and counters); GSI1 lists the account's campaigns. It shares
    its partition with its chunks and with billing's per-campaign cap item."""
    key = {"PK": campaign_partition(account_id, campaign_id), "SK": "CAMPAIGN"}
    if created_ms is not None:
        key |= {"GSI1PK": campaigns_index(account_id), "GSI1SK": f"{created_ms:013d}#{campaign_id}"}
    return key


def campaigns_index(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#CAMPAIGNS"


def campaign_chunk(account_id: str, campaign_id: str, index: int) -> dict[str, str]:
    """One chunk of a campaign's snapshot: <= 500 user ids, one variant, one retry key, its state."""
    return {"PK": campaign_partition(account_id, campaign_id), "SK": f"CHUNK#{index:05d}"}


CHUNK_SK_PREFIX = "CHUNK#"


def tracked_link(token: str) -> dict[str, str]:
    """A tracked link's token -> account, campaign, variant and target URL (no personal data)."""
    return {"PK": f"TRACK#{token}", "SK": "LINK"}


def campaign_clicks(account_id: str, campaign_id: str) -> dict[str, str]:
    """Click counters of a campaign's tracked links, per variant (ADD)."""
    return {"PK": campaign_partition(account_id, campaign_id), "SK": "CLICKS"}


def campaign_insight(account_id: str, campaign_id: str) -> dict[str, str]:
    """LINE's statistics per aggregation unit (variant), as last fetched (nulls kept as null)."""
    return {"PK": campaign_partition(account_id, campaign_id), "SK": "INSIGHT"}


# ---------------------------------------------------------------- lines (mobile carrier)
def mobile_line(account_id: str, line_id: str) -> dict[str, str]:
    """One mobile line (回線): allowance, this month's remaining MB (R-GIFT-1)."""
    return {"PK": f"ACCOUNT#{account_id}#MLINE#{line_id}", "SK": "MLINE"}


def mobile_line_index(account_id: str, member_number: str, line_id: str) -> dict[str, str]:
    """GSI1 entry: the account's lines by contract (a contractor sees every line, R-LINK-12)."""
    return {"GSI1PK": mobile_lines_index(account_id), "GSI1SK": f"{member_number}#{line_id}"}


def mobile_lines_index(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#MLINES"


def mobile_line_history(account_id: str, line_id: str, at_ms: int, gift_id: str) -> dict[str, str]:
    """One entry of a line's data history (a gift given or received)."""
    return {"PK": f"ACCOUNT#{account_id}#MLINE#{line_id}", "SK": f"HIST#{at_ms:013d}#{gift_id}"}


def data_gift(account_id: str, gift_id: str) -> dict[str, str]:
    """A data gift, written once (its id is the exactly-once key, R-GIFT-1)."""
    return {"PK": f"ACCOUNT#{account_id}#GIFT#{gift_id}", "SK": "GIFT"}


GIFT_OUTBOX_SHARDS = 8


def gift_outbox_index(account_id: str, gift_id: str, at_ms: int) -> dict[str, str]:
    """Sparse GSI1 entry on a data gift whose carrier announcement is not yet queued (the
    outbox): written by the gift's own transaction, removed once the announcement is on the
    forward queue; a sweep re-announces what is left. Sharded so no one partition is hot."""
    shard = zlib.crc32(gift_id.encode()) % GIFT_OUTBOX_SHARDS
    return {"GSI1PK": f"GIFTOUTBOX#{shard}", "GSI1SK": f"{at_ms:013d}#{account_id}#{gift_id}"}


def gift_request(account_id: str, request_id: str) -> dict[str, str]:
    """A gift asked for in the chat and waiting for the member's confirmation (TTL)."""
    return {"PK": f"ACCOUNT#{account_id}#GIFTREQ#{request_id}", "SK": "GIFTREQ"}


def mypage_ticket(account_id: str, ticket_hash: str) -> dict[str, str]:
    """An unredeemed My Page login ticket (SHA-256 of its id); deleted when redeemed, TTL."""
    return {"PK": f"ACCOUNT#{account_id}#MYPAGE#{ticket_hash}", "SK": "TICKET"}


def lines_settings(account_id: str) -> dict[str, str]:
    """The carrier's webhook URL (where data gifts are announced)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "LINES"}


# ---------------------------------------------------------------- help desk
def faq_entry(account_id: str, faq_id: str) -> dict[str, str]:
    """One question/answer pair of the account's FAQ (R-HELP-1)."""
    return {"PK": faq_partition(account_id), "SK": f"FAQ#{faq_id}"}


def faq_revision(account_id: str) -> dict[str, str]:
    """A counter (ADD) bumped on every FAQ load: warm answerers rebuild their index when it moves."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "FAQREV"}


def faq_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#FAQ"


def helpdesk_settings(account_id: str) -> dict[str, str]:
    """Operator hours, calendar, timeouts of the help desk."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "HELPDESK"}


def conversation(account_id: str, user_id: str) -> dict[str, str]:
    """One LINE user's help-desk conversation state (bot / waiting / operator)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"HDCONV#{user_id}"}


def operator_queue_entry(account_id: str, queued_at_ms: int, user_id: str) -> dict[str, str]:
    """GSI1 entry of a conversation waiting for an operator (oldest first)."""
    return {"GSI1PK": operator_queue(account_id), "GSI1SK": f"{queued_at_ms:013d}#{user_id}"}


def operator_queue(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#HDQUEUE"


def helpdesk_day(account_id: str, day: str) -> dict[str, str]:
    """The day's help-desk counters (ADD): answered by AI / operator, escalations, wait time."""
    return {"PK": f"ACCOUNT#{account_id}#HDSTATS", "SK": day}


def helpdesk_stats_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#HDSTATS"


# ---------------------------------------------------------------- operator console
def staff(account_id: str, staff_id: str) -> dict[str, str]:
    """A staff member of the console (``staff_id``: a hash of the e-mail address)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"STAFF#{staff_id}"}


STAFF_SK_PREFIX = "STAFF#"


def staff_invite(account_id: str, token_hash: str) -> dict[str, str]:
    """An invitation to set a password (the token only as its hash; TTL)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"STAFFINVITE#{token_hash}"}


def console_session(account_id: str, token_hash: str) -> dict[str, str]:
    """A console session (the cookie's token only as its hash; TTL at the absolute timeout)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"CSESSION#{token_hash}"}


def console_login_attempts(account_id: str, staff_id: str, window: int) -> dict[str, str]:
    """Failed logins for one e-mail address in one 15-minute window (TTL)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"CLOGIN#{staff_id}#{window}"}


def staff_audit(account_id: str, at_ms: int, entry_id: str) -> dict[str, str]:
    """One staff action in the console (who did what, when), newest last."""
    return {"PK": staff_audit_partition(account_id), "SK": f"{at_ms:013d}#{entry_id}"}


def staff_audit_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#STAFFAUDIT"
