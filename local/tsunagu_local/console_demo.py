"""A demo staff login for the operator console on a running local stack: invite an admin with
the account's API key and set the password from the invitation, as a new staff member would."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

from tsunagu_local.client import request

DEMO_EMAIL = "demo-admin@tsunagu.example"


def demo_staff(
    api: str,
    account_id: str,
    auth: dict[str, str],
    email: str = DEMO_EMAIL,
    scopes: tuple[str, ...] = ("admin",),
    name: str = "デモ管理者",
) -> tuple[str, str, str]:
    """(console login URL, e-mail, password) of a new staff member of ``account_id``."""
    body = {"email": email, "name": name, "scopes": list(scopes)}
    r = request("POST", f"{api}/accounts/{account_id}/staff", body, headers=auth)
    assert r.status == 201, r.text
    path = r.json["invite_path"]
    token = re.search(r"[?&]t=([^&]+)", path).group(1)  # type: ignore[union-attr]
    password = "demo-" + secrets.token_urlsafe(12)
    form = urlencode({"t": token, "password": password, "password2": password})
    r = request(
        "POST",
        f"{api}/console/{account_id}/invite",
        data=form.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 303, r.text
    return f"{api}/console/{account_id}/login", email, password
