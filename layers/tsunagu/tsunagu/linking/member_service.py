"""The member register seen by the business's staff: import (JSON rows or CSV, per-row
errors), look-up with link status (R-LINK-14), staff unlink with a reason (R-LINK-6), the audit
trail, and segments of linked members vs unlinked friends (R-LINK-7)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tsunagu.errors import NotFound, ValidationFailed
from tsunagu.linking.members import MAX_PASSWORDS_PER_REQUEST, MAX_ROWS_PER_REQUEST, csv_to_rows, decode_csv, parse_rows
from tsunagu.linking.service import target_of

if TYPE_CHECKING:
    from tsunagu.linking.ports import FactTagger, KeyRing, LinkStore, MemberRegister
    from tsunagu.messaging.ports import FriendDirectory


@dataclass
class MemberService:
    register: MemberRegister
    links: LinkStore
    factor_keys: KeyRing
    friends: FriendDirectory
    tagger: FactTagger | None = None  # automatic tags on unlink (campaigns room)

    def import_rows(
        self,
        account_id: str,
        rows: list[dict[str, Any]],
        row_numbers: list[int] | None = None,
        all_or_nothing: bool = False,
    ) -> dict[str, Any]:
        """Per-row errors; the valid rows are written, or with ``all_or_nothing`` none at all
        when any row is refused (the console's import: fix the file, import it again)."""
        if not 1 <= len(rows) <= MAX_ROWS_PER_REQUEST:
            raise ValidationFailed(
                f"send 1 to {MAX_ROWS_PER_REQUEST} members per request (split larger files)", code="batch_size"
            )
        if sum(1 for r in rows if isinstance(r, dict) and r.get("password")) > MAX_PASSWORDS_PER_REQUEST:
            raise ValidationFailed(
                f"send at most {MAX_PASSWORDS_PER_REQUEST} members with a password per request (each is hashed "
                "with scrypt); the CLI splits files this way",
                code="batch_size",
            )
        parsed = parse_rows(rows, self.factor_keys.key(account_id), row_numbers)
        if all_or_nothing and parsed.errors:
            return {"imported": 0, "rejected": len(parsed.errors), "errors": [asdict(e) for e in parsed.errors]}
        if parsed.records:
            self.register.put(account_id, parsed.records)
        return {
            "imported": len(parsed.records),
            "rejected": len(parsed.errors),
            "errors": [asdict(e) for e in parsed.errors],
        }

    def import_csv(self, account_id: str, data: bytes, all_or_nothing: bool = False) -> dict[str, Any]:
        rows, numbers = csv_to_rows(decode_csv(data))
        return self.import_rows(account_id, rows, numbers, all_or_nothing)

    def get(self, account_id: str, member_number: str) -> dict[str, Any]:
        rec = self.register.get(account_id, member_number)
        if rec is None:
            raise NotFound("no such member", code="member_not_found")
        targets = [target_of("member", member_number), target_of("contractor", member_number)]
        targets += [target_of("user", member_number, ln.line_id) for ln in rec.lines]
        links = []
        for t in targets:
            link = self.links.target(account_id, t)
            if link:
                links.append({"target": t, "user_id": link["user_id"], "linked_at": int(link["linked_at"])})
        return {
            "member_number": member_number,
            # Which factors are on file - never their values.
            "on_file": {
                "phone": bool(rec.phone_hash),
                "birth_date": bool(rec.birth_hash),
                "email": bool(rec.email_hash),
                "login_id": bool(rec.login_id_hash),
                "password": bool(rec.password_hash),
            },
            "lines": [
                {"line_id": ln.line_id, "monthly_base_fee": ln.monthly_base_fee, "usage_code": bool(ln.usage_code_hash)}
                for ln in rec.lines
            ],
            "links": links,
        }

    def page(self, account_id: str, limit: int | str | None, after: str | None) -> dict[str, Any]:
        try:
            n = max(1, min(int(limit or 100), 1000))
        except ValueError:
            raise ValidationFailed("limit must be a whole number", code="invalid_limit") from None
        numbers, nxt = self.register.page(account_id, n, after)
        return {"members": numbers, "next": nxt}

    def staff_unlink(
        self, account_id: str, member_number: str, kind: str, line_id: str | None, reason: str, actor: str = "staff"
    ) -> dict[str, Any]:
        if kind == "user" and not line_id:
            raise ValidationFailed("a user link needs line_id", code="line_id_required")
        target = target_of(kind, member_number, line_id)
        user = self.links.unlink(account_id, target, actor, reason)
        if user is None:
            raise NotFound("no such link", code="link_not_found")
        if self.tagger is not None:
            self.tagger.on_fact(account_id, user, "unlinked")
        return {"target": target, "unlinked_user_id": user}

    def segments(self, account_id: str) -> dict[str, list[str]]:
        """R-LINK-7: linked members get member offers; every friend gets general messages."""
        linked: list[str] = []
        cursor = None
        while True:
            users, cursor = self.links.linked_users(account_id, 500, cursor)
            linked += users
            if not cursor:
                break
        linked_set = set(linked)
        unlinked: list[str] = []
        after = None
        while True:
            rows, after = self.friends.list(account_id, 500, after)
            unlinked += [r["user_id"] for r in rows if r["state"] == "friend" and r["user_id"] not in linked_set]
            if not after:
                break
        return {"linked": sorted(linked_set), "unlinked_friends": unlinked}

    def audit(self, account_id: str) -> list[dict[str, Any]]:
        return self.links.audit_trail(account_id)
