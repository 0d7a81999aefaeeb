"""Channel credentials and the operator key in Secrets Manager, with a short in-memory cache
so a warm webhook intake does not call Secrets Manager per request."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from tsunagu.infrastructure.aws import client


class SecretsManagerChannelSecrets:
    def __init__(self, prefix: str, cache_seconds: int = 300):
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, str] | None]] = {}

    @property
    def sm(self) -> Any:
        return client("secretsmanager")

    def _name(self, account_id: str) -> str:
        return f"{self.prefix}/accounts/{account_id}/channel"

    def put(self, account_id: str, channel_secret: str, access_token: str) -> None:
        self._put(
            account_id,
            {"channelSecret": channel_secret, "accessToken": access_token},
            "LINE channel secret and access token of one tsunagu account",
        )

    def _put(self, account_id: str, doc: dict[str, str], description: str) -> None:
        value = json.dumps(doc)
        name = self._name(account_id)
        try:
            self.sm.put_secret_value(SecretId=name, SecretString=value)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self.sm.create_secret(
                Name=name,
                SecretString=value,
                Description=description,
                Tags=[{"Key": "tsunagu:account", "Value": account_id}],
            )
        self._cache.pop(account_id, None)

    def _load(self, account_id: str) -> dict[str, str] | None:
        hit = self._cache.get(account_id)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        try:
            raw = self.sm.get_secret_value(SecretId=self._name(account_id))["SecretString"]
            value: dict[str, str] | None = json.loads(raw)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            value = None
        # A missing secret is cached briefly too, so an unknown account cannot hammer Secrets Manager.
        self._cache[account_id] = (now + (self.cache_seconds if value else 10), value)
        return value

    def channel_secret(self, account_id: str) -> str | None:
        v = self._load(account_id)
        return v["channelSecret"] if v else None

    def access_token(self, account_id: str) -> str | None:
        v = self._load(account_id)
        return v["accessToken"] if v else None


class SecretsManagerLoginChannels(SecretsManagerChannelSecrets):
    """The LINE Login channel of an account's coupon page (R-CPN-6): its id and secret, which
    signs the ID tokens of web login. Same storage and cache as the Messaging API channel."""

    def _name(self, account_id: str) -> str:
        return f"{self.prefix}/accounts/{account_id}/login-channel"

    def put_login(self, account_id: str, channel_id: str, channel_secret: str) -> None:
        self._put(
            account_id,
            {"channelId": channel_id, "channelSecret": channel_secret},
            "LINE Login channel id and secret of one tsunagu account (coupon page)",
        )

    def login(self, account_id: str) -> tuple[str, str] | None:
        """(channel id, channel secret), or None when no login channel is set."""
        v = self._load(account_id)
        return (v["channelId"], v["channelSecret"]) if v else None


class OperatorKey:
    """The platform operator key: from Secrets Manager on AWS, from TSUNAGU_OPERATOR_KEY locally."""

    def __init__(self, secret_id: str, local_value: str | None):
        self.secret_id = secret_id
        self._value = local_value

    def value(self) -> str | None:
        if self._value is None and self.secret_id:
            self._value = client("secretsmanager").get_secret_value(SecretId=self.secret_id)["SecretString"]
        return self._value


class SecretsManagerFactorKeys:
    """A per-account key, by default the one for keyed hashes of verification factors (phone,
    birth date, ...); the coupon codes' MAC key is another instance with its own name.
    Created on first use; cached per warm container. Losing it makes every stored factor
    unverifiable, so it is never rotated silently."""

    def __init__(
        self,
        prefix: str,
        name: str = "factor-key",
        description: str = "tsunagu: key for hashes of member verification factors",
    ):
        self.prefix = prefix
        self.secret_name = name
        self.description = description
        self._cache: dict[str, bytes] = {}

    @property
    def sm(self) -> Any:
        return client("secretsmanager")

    def key(self, account_id: str) -> bytes:
        if account_id in self._cache:
            return self._cache[account_id]
        name = f"{self.prefix}/accounts/{account_id}/{self.secret_name}"
        try:
            value = self.sm.get_secret_value(SecretId=name)["SecretString"]
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            value = secrets.token_hex(32)
            try:
                self.sm.create_secret(
                    Name=name,
                    SecretString=value,
                    Description=self.description,
                    Tags=[{"Key": "tsunagu:account", "Value": account_id}],
                )
            except ClientError as e2:
                if e2.response["Error"]["Code"] != "ResourceExistsException":
                    raise
                value = self.sm.get_secret_value(SecretId=name)["SecretString"]  # another worker won the race
        self._cache[account_id] = bytes.fromhex(value)
        return self._cache[account_id]
