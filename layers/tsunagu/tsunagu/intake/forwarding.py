"""Webhook forwarding: one channel can feed several systems (other LINE tools the business
also uses). The raw body and LINE's signature are relayed unchanged, so each downstream can
verify them with the same channel secret.

SSRF guard: a forward URL must not reach the deployment's own network (loopback, private,
link-local - the instance metadata address - or reserved ranges) unless allowed by setting."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from tsunagu.errors import ValidationFailed


def forbidden_address(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_multicast
        or addr.is_unspecified
    )


def check_target(url: str, resolved_ips: list[str], allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationFailed("forward URL must be http(s) with a host", code="forward_url_invalid")
    if parts.scheme == "http" and not allow_private:
        raise ValidationFailed("forward URL must use https", code="forward_url_invalid")
    if not resolved_ips:
        raise ValidationFailed("forward URL host does not resolve", code="forward_url_unresolved")
    if not allow_private and any(forbidden_address(ip) for ip in resolved_ips):
        raise ValidationFailed("forward URL resolves to a non-public address", code="forward_url_forbidden")
