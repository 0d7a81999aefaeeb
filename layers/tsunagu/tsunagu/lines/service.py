"""Lines use cases: load lines and keep them current (the carrier's usage feed), show remaining
data in the chat (R-LINK-12), and data gifts (R-GIFT-1) from the API or from the chat with a
confirm step. Every gift is applied once per gift id by the store's transaction; the carrier is
told afterwards through a signed, retried webhook (at least once; it deduplicates on gift_id).
The transaction also puts the gift in an outbox, which the announcement empties; a scheduled
sweep announces what a crash or an SQS failure left there."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from tsunagu.accounts.ports import ChannelSecrets
from tsunagu.errors import BadRequest, Conflict
from tsunagu.lines import domain as d
from tsunagu.lines import mypage
from tsunagu.lines.domain import LineCommand, LineNotFound, LinesRefused, MobileLine
from tsunagu.lines.ports import Carrier, ChatReplies, Keys, LineStore
from tsunagu.linking.ports import LinkedMembers
from tsunagu.observability import logger

GIFT_MESSAGES = {
    "gift_already_applied": "このプレゼントはすでに完了しています。",
    "gift_insufficient_data": "データ残量が足りません。",
    "gift_receiver_changed": "プレゼント先の回線が見つかりません。",
    "gift_request_used": "この確認はすでに使われたか、期限が切れています。もう一度お試しください。",
    "gift_conflict": "混み合っています。しばらくしてからもう一度お試しください。",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Holder:
    """Which lines a LINE user may see and give from (R-LINK-12)."""

    user_line: str | None  # the one user-linked line (R-LINK-11)
    contracts: tuple[str, ...]  # contractor-linked contracts (member numbers)


@dataclass
class LinesService:
    store: LineStore
    links: LinkedMembers
    secrets: ChannelSecrets | None = None
    line: ChatReplies | None = None
    carrier: Carrier | None = None
    ledger: Any = None  # DynamoUsageLedger: replies are metered (free) like every reply
    mypage_keys: Keys | None = None  # signs My Page login tickets

    # -- lines ---------------------------------------------------------------------------
    def load(self, account_id: str, rows: Any) -> dict[str, Any]:
        lines = d.parse_lines(rows, d.current_month(now_ms()))
        self.store.put_lines(account_id, lines)
        return {"loaded": len(lines)}

    def load_csv(self, account_id: str, data: bytes) -> dict[str, Any]:
        return self.load(account_id, d.csv_rows(data))

    def current(self, account_id: str, line_id: str) -> MobileLine:
        """The line in this JST month (rolled over first if its balance is from an earlier one)."""
        month = d.current_month(now_ms())
        for _ in range(5):
            ln = self.store.get(account_id, line_id)
            if ln is None:
                raise LineNotFound("回線が見つかりません。", code="line_not_found")
            if ln.month >= month:
                return ln
            self.store.replace_balance(account_id, ln, ln.rolled_over(month))
        raise Conflict("the line changed while it was rolled over; retry", code="line_busy")

    def view(self, account_id: str, line_id: str) -> dict[str, Any]:
        return {**self.current(account_id, line_id).view(), "history": self.store.history(account_id, line_id)}

    def report_usage(self, account_id: str, line_id: str, month: str, used_mb: int) -> dict[str, Any]:
        """The carrier's usage feed: cumulative MB used this month. Older reports change nothing."""
        for _ in range(8):
            ln = self.current(account_id, line_id)
            if month != ln.month:
                raise LinesRefused("usage is accepted for the current month only", code="usage_month")
            after = d.usage_update(ln, used_mb)
            if after is None:
                return {**ln.view(), "applied": False}
            if after == ln or self.store.replace_balance(account_id, ln, after):
                return {**after.view(), "applied": True}
        raise Conflict("the line changed while usage was applied; retry", code="line_busy")

    def rollover(self, account_id: str, month: str | None = None) -> dict[str, int]:
        """The monthly reset (scheduled on the 1st, JST): remaining = allowance; idempotent."""
        month = month or d.current_month(now_ms())
        rolled = seen = 0
        after: Any = None
        while True:
            page, after = self.store.page(account_id, 100, after)
            for ln in page:
                seen += 1
                if ln.month < month and self.store.replace_balance(account_id, ln, ln.rolled_over(month)):
                    rolled += 1
            if not after:
                return {"lines": seen, "rolled_over": rolled}

    # -- who may see what (R-LINK-12) ----------------------------------------------------
    def holder(self, account_id: str, user_id: str) -> Holder:
        user_line, contracts = None, []
        for lk in self.links.user_links(account_id, user_id):
            target = str(lk["target"])
            if target.startswith("LINE#"):
                user_line = target.rsplit("#", 1)[1]
            elif target.startswith("CONTRACTOR#"):
                contracts.append(target.split("#", 1)[1])
        return Holder(user_line, tuple(contracts))

    def visible_lines(self, account_id: str, h: Holder) -> list[MobileLine]:
        out: dict[str, MobileLine] = {}
        if h.user_line:
            try:
                out[h.user_line] = self.current(account_id, h.user_line)
            except LineNotFound:
                pass
        for contract in h.contracts:
            for ln in self.store.contract_lines(account_id, contract):
                out.setdefault(ln.line_id, self.current(account_id, ln.line_id))
        return list(out.values())

    # -- gifts ---------------------------------------------------------------------------
    def gift(
        self, account_id: str, gift_id: str, from_line: str, to_line: str, mb: int, actor: str = "api"
    ) -> dict[str, Any]:
        """One gift, exactly once per ``gift_id`` (a repeat with the same content answers the
        first result; with other content it is refused)."""
        d.check_gift_size(mb)
        done = self.store.gift_record(account_id, gift_id)
        if done is not None:
            return self._replayed(account_id, done, from_line, to_line, mb)
        giver = self.current(account_id, from_line)
        try:
            receiver = self.current(account_id, to_line)
        except LineNotFound:
            raise LinesRefused("プレゼント先の回線が見つかりません。", code="gift_unknown_line") from None
        d.check_gift(giver, receiver, mb)
        record = {
            "gift_id": gift_id,
            "from_line": from_line,
            "to_line": to_line,
            "mb": mb,
            "month": giver.month,
            "at_ms": now_ms(),
            "actor": actor,
        }
        return self._apply(account_id, record, None)

    def _apply(self, account_id: str, record: dict[str, Any], request: tuple[str, str] | None) -> dict[str, Any]:
        url = self.store.carrier_webhook(account_id) if self.carrier is not None else None
        outcome = self.store.gift(account_id, record, request, outbox=url is not None)
        if outcome.code == "gift_already_applied" and request is None:
            done = self.store.gift_record(account_id, record["gift_id"])
            assert done is not None
            return self._replayed(account_id, done, record["from_line"], record["to_line"], record["mb"])
        if outcome.code != "applied":
            message = GIFT_MESSAGES.get(outcome.code, "プレゼントできませんでした。")
            raise (Conflict if outcome.code in ("gift_conflict", "gift_request_used") else LinesRefused)(
                message, code=outcome.code
            )
        if url is not None:
            self._announce_or_leave(account_id, record, url)
        return {**record, "status": "applied", "lines": self._pair(account_id, record)}

    def _pair(self, account_id: str, g: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.current(account_id, g["from_line"]).view(), self.current(account_id, g["to_line"]).view()]

    def _replayed(self, account_id: str, done: dict[str, Any], from_line: str, to_line: str, mb: int) -> dict[str, Any]:
        if (done["from_line"], done["to_line"], int(done["mb"])) != (from_line, to_line, mb):
            raise Conflict("this gift_id was used for another gift", code="gift_id_reused")
        self._announce(account_id, done)  # at least once: the carrier deduplicates on gift_id
        return {**done, "status": "already_applied", "lines": self._pair(account_id, done)}

    def _announce_or_leave(self, account_id: str, g: dict[str, Any], url: str) -> None:
        """The gift is applied whatever happens here: if the announcement cannot be queued, it
        stays in the outbox and the sweep (``announce_pending``) sends it later."""
        try:
            self._send_announcement(account_id, g, url)
            self.store.clear_outbox(account_id, g["gift_id"])
        except Exception:  # the gift stands; the outbox sweep retries
            logger.exception("carrier announcement left in the outbox", extra={"gift_id": g["gift_id"]})

    def announce_pending(self, older_than_ms: int = 120_000, now: int | None = None) -> dict[str, int]:
        """The outbox sweep (scheduled): announce every gift applied more than ``older_than_ms``
        ago whose announcement never reached the forward queue. At least once, like the rest:
        the carrier deduplicates on gift_id; balances are the lines' balances at this moment."""
        due = self.store.outbox_due((now if now is not None else now_ms()) - older_than_ms)
        sent = 0
        for account_id, gift_id in due:
            g = self.store.gift_record(account_id, gift_id)
            url = self.store.carrier_webhook(account_id)
            if g is not None and url is not None and self.carrier is not None:
                self._send_announcement(account_id, g, url)
                sent += 1
            self.store.clear_outbox(account_id, gift_id)  # no URL any more: nothing to tell
        return {"due": len(due), "announced": sent}

    def _announce(self, account_id: str, g: dict[str, Any]) -> None:
        url = self.store.carrier_webhook(account_id)
        if self.carrier is None or url is None:
            return
        self._send_announcement(account_id, g, url)

    def _send_announcement(self, account_id: str, g: dict[str, Any], url: str) -> None:
        assert self.carrier is not None
        lines = self._pair(account_id, g)
        body = {
            "type": "data_gift",
            "account_id": account_id,
            "gift_id": g["gift_id"],
            "from_line": g["from_line"],
            "to_line": g["to_line"],
            "mb": int(g["mb"]),
            "month": g["month"],
            "at_ms": int(g["at_ms"]),
            "lines": [{k: ln[k] for k in ("line_id", "remaining_mb", "speed")} for ln in lines],
        }
        self.carrier.announce(account_id, url, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())

    # -- the chat (message worker) -------------------------------------------------------
    def handle_chat(self, account_id: str, user_id: str, cmd: LineCommand, reply_token: str) -> str:
        h = self.holder(account_id, user_id)
        try:
            if cmd.action == "data":
                messages, outcome = self._data_view(account_id, h)
            elif cmd.action == "mypage":
                messages, outcome = self._mypage(account_id, h)
            elif cmd.action == "gift_cancel":
                if cmd.request_id:
                    self.store.drop_request(account_id, cmd.request_id, user_id)
                messages, outcome = [d.text("プレゼントを取りやめました。")], "gift_cancelled"
            elif h.user_line is None:
                # R-LINK-12: gifts need the user link; a contractor link alone is not enough.
                messages, outcome = [d.text(d.LINK_HINT)], "link_required"
            elif cmd.action == "gift_confirm":
                messages, outcome = self._confirm(account_id, user_id, h.user_line, cmd.request_id or "")
            else:
                messages, outcome = self._gift_step(account_id, user_id, h, cmd)
        except (LinesRefused, Conflict) as e:
            messages, outcome = [d.text(e.message)], e.code
        self._reply(account_id, reply_token, messages)
        return outcome

    # -- My Page auto-login (R-LINK-12) ---------------------------------------------------
    def _mypage(self, account_id: str, h: Holder) -> tuple[list[dict[str, Any]], str]:
        url = self.store.settings(account_id).get("mypage_url")
        if not h.contracts:
            return [d.text(d.CONTRACTOR_HINT)], "contractor_link_required"
        if not url or self.mypage_keys is None:
            return [d.text("マイページへのかんたんログインは準備中です。")], "mypage_not_configured"
        ticket, t = mypage.issue(self.mypage_keys.key(account_id), account_id, h.contracts[0], now_ms() // 1000)
        self.store.put_ticket(account_id, mypage.ticket_hash(t.ticket_id), t.member_number, t.expires_at)
        return [mypage.login_button(str(url), ticket)], "mypage_ticket_issued"

    def redeem_ticket(self, account_id: str, ticket: str) -> dict[str, Any]:
        """The company's site, server to server: the member number, once per ticket."""
        if self.mypage_keys is None:
            raise LinesRefused("My Page tickets are not configured", code="mypage_not_configured")
        now = now_ms() // 1000
        t = mypage.read(self.mypage_keys.key(account_id), account_id, ticket, now)
        if not self.store.take_ticket(account_id, mypage.ticket_hash(t.ticket_id), now):
            raise Conflict("this ticket was redeemed before", code="ticket_used")
        return {"member_number": t.member_number, "expires_at": t.expires_at}

    def _data_view(self, account_id: str, h: Holder) -> tuple[list[dict[str, Any]], str]:
        if h.user_line is None and not h.contracts:
            return [d.text(d.LINK_HINT)], "link_required"
        lines = self.visible_lines(account_id, h)
        if not lines:
            return [d.text("連携中の回線のデータが見つかりません。")], "no_lines"
        title = "データ残量(ご契約の全回線)" if h.contracts else "データ残量"
        return [d.remaining_bubble(lines, title)], "data_shown"

    def _gift_step(self, account_id: str, user_id: str, h: Holder, cmd: LineCommand) -> tuple[list[Any], str]:
        assert h.user_line is not None
        giver = self.current(account_id, h.user_line)
        if cmd.to is None:
            others = [
                ln for ln in self.store.contract_lines(account_id, giver.member_number) if ln.line_id != giver.line_id
            ]
            choices = [(f"回線 {ln.line_id}", f"action=gift&to={ln.line_id}") for ln in others]
            hint = "どの回線にプレゼントしますか?ほかの回線へは「プレゼント 回線ID」と送ってください。"
            return [d.quick_reply_text(hint, choices) if choices else d.text(hint)], "gift_choose_line"
        if cmd.mb is None:
            choices = [(f"{mb:,}MB", f"action=gift&to={cmd.to}&mb={mb}") for mb in d.GIFT_SIZES_MB]
            return [d.quick_reply_text(f"回線 {cmd.to} に何MBプレゼントしますか?", choices)], "gift_choose_size"
        try:
            receiver = self.current(account_id, cmd.to)
        except LineNotFound:
            raise LinesRefused("プレゼント先の回線が見つかりません。", code="gift_unknown_line") from None
        d.check_gift(giver, receiver, cmd.mb)
        request_id = "gft_" + secrets.token_hex(10)
        self.store.put_request(account_id, request_id, user_id, giver.line_id, receiver.line_id, cmd.mb)
        return [d.confirm_gift(request_id, giver.line_id, receiver.line_id, cmd.mb)], "gift_confirm_asked"

    def _confirm(self, account_id: str, user_id: str, user_line: str, request_id: str) -> tuple[list[Any], str]:
        req = self.store.get_request(account_id, request_id) if request_id.startswith("gft_") else None
        if req is None or req.get("user_id") != user_id or req.get("from_line") != user_line:
            done = self.store.gift_record(account_id, request_id) if request_id.startswith("gft_") else None
            code = "gift_already_applied" if done is not None else "gift_request_used"
            return [d.text(GIFT_MESSAGES[code])], code
        giver = self.current(account_id, str(req["from_line"]))
        receiver = self.current(account_id, str(req["to_line"]))
        d.check_gift(giver, receiver, int(req["mb"]))
        record = {
            "gift_id": request_id,
            "from_line": giver.line_id,
            "to_line": receiver.line_id,
            "mb": int(req["mb"]),
            "month": giver.month,
            "at_ms": now_ms(),
            "actor": "member",
        }
        result = self._apply(account_id, record, (request_id, user_id))
        after = {ln["line_id"]: ln for ln in result["lines"]}
        text = (
            f"{record['mb']:,}MB をプレゼントしました。回線 {giver.line_id} の残り "
            f"{after[giver.line_id]['remaining_mb']:,}MB。"
        )
        return [d.text(text)], "gift_applied"

    def _reply(self, account_id: str, reply_token: str, messages: list[dict[str, Any]]) -> None:
        if self.line is None or self.secrets is None:
            return
        token = self.secrets.access_token(account_id)
        if token is None:
            return
        try:
            self.line.reply_messages(token, reply_token, messages)
        except BadRequest:
            return  # 4xx (e.g. an expired reply token) is final
        if self.ledger is not None:
            import hashlib

            digest = hashlib.sha256(reply_token.encode()).hexdigest()[:32]
            self.ledger.record(account_id, f"reply-{digest}", "reply", 1, now_ms())
