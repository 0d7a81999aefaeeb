"""Typed settings, read once from the environment the template gives every function."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class MissingSetting(RuntimeError):
    """A setting a function needs is not in its environment: raised while the function
    initialises (its services are built at cold start), so it never answers half-configured."""

    def __init__(self, env_name: str):
        super().__init__(
            f"tsunagu: the environment variable {env_name} is not set; template.yaml gives it to every "
            "function (Globals), so set it when running a handler outside the stack"
        )
        self.env_name = env_name


@dataclass(frozen=True, slots=True)
class Settings:
    stage: str
    table_name: str
    idempotency_table_name: str
    line_api_base_url: str
    secret_prefix: str
    tracing_enabled: bool
    friendship_queue_url: str
    message_queue_url: str
    account_link_queue_url: str
    delivery_queue_url: str
    other_events_queue_url: str
    forward_queue_url: str
    operator_key_secret_id: str
    # Local mode only: the operator key comes straight from the environment.
    local_operator_key: str | None
    # tsunagu's public base URL for links it sends (link page); empty: the API's own domain.
    public_base_url: str = ""
    # LINE's account-link dialog host (the local stack points it at the LINE sandbox).
    line_access_base_url: str = "https://access.line.me"
    # Where one-time link codes are handed to the business's mail / SMS / voice system.
    otp_sender_url: str = ""
    # Local stack only: forwarding to loopback/private addresses (the SSRF guard's exception).
    allow_private_forwarding: bool = False
    # Failed link attempts allowed per 15-minute window before a lockout (R-LINK: brute force).
    link_max_failures_per_member: int = 5
    link_max_failures_per_user: int = 10
    # How long a channel secret stays cached in a warm function (seconds).
    secret_cache_seconds: int = 300
    # Largest webhook body accepted (LINE's own request limit is far below this).
    max_webhook_body_bytes: int = 1_048_576
    # Notification messages: their send queue, and this sender instance's share of the
    # channel's rate limit (LINE: 2,000 requests/s; divided by the sender's maximum concurrency).
    notification_queue_url: str = ""
    sender_rate_per_second: float = 200.0
    # Campaigns: their queue (launch and chunk messages), and what a one-off launch schedule
    # needs to put a message there (the queue's ARN and the role EventBridge Scheduler assumes).
    campaign_queue_url: str = ""
    campaign_queue_arn: str = ""
    campaign_scheduler_role_arn: str = ""
    # A campaign variant of more recipients than this is sent as one narrowcast to an uploaded
    # audience instead of multicasts of 500.
    campaign_narrowcast_above: int = 5_000
    # Help desk: the Amazon Bedrock model the answerer uses; empty: the embedded FAQ retrieval.
    helpdesk_bedrock_model_id: str = ""

    def required(self, field: str) -> str:
        """The value of a setting without a usable default (a table, a queue, a secret id)."""
        value = getattr(self, field)
        if not value:
            raise MissingSetting(field.upper())
        return str(value)

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            stage=e.get("STAGE", "dev"),
            table_name=e.get("TABLE_NAME", ""),
            idempotency_table_name=e.get("IDEMPOTENCY_TABLE_NAME", ""),
            line_api_base_url=e.get("LINE_API_BASE_URL", "https://api.line.me").rstrip("/"),
            secret_prefix=e.get("SECRET_PREFIX", "tsunagu/dev"),
            tracing_enabled=e.get("TRACING_ENABLED", "false").lower() == "true",
            friendship_queue_url=e.get("FRIENDSHIP_QUEUE_URL", ""),
            message_queue_url=e.get("MESSAGE_QUEUE_URL", ""),
            account_link_queue_url=e.get("ACCOUNT_LINK_QUEUE_URL", ""),
            delivery_queue_url=e.get("DELIVERY_QUEUE_URL", ""),
            other_events_queue_url=e.get("OTHER_EVENTS_QUEUE_URL", ""),
            forward_queue_url=e.get("FORWARD_QUEUE_URL", ""),
            public_base_url=e.get("PUBLIC_BASE_URL", "").rstrip("/"),
            otp_sender_url=e.get("OTP_SENDER_URL", ""),
            line_access_base_url=e.get("LINE_ACCESS_BASE_URL", "https://access.line.me").rstrip("/"),
            allow_private_forwarding=e.get("TSUNAGU_ALLOW_PRIVATE_FORWARD", "false").lower() == "true",
            operator_key_secret_id=e.get("OPERATOR_KEY_SECRET_ID", ""),
            local_operator_key=e.get("TSUNAGU_OPERATOR_KEY") or None,
            secret_cache_seconds=int(e.get("SECRET_CACHE_SECONDS", "300")),
            link_max_failures_per_member=int(e.get("LINK_MAX_FAILURES_PER_MEMBER", "5")),
            link_max_failures_per_user=int(e.get("LINK_MAX_FAILURES_PER_USER", "10")),
            notification_queue_url=e.get("NOTIFICATION_QUEUE_URL", ""),
            sender_rate_per_second=float(e.get("SENDER_RATE_PER_SECOND", "200")),
            campaign_queue_url=e.get("CAMPAIGN_QUEUE_URL", ""),
            campaign_queue_arn=e.get("CAMPAIGN_QUEUE_ARN", ""),
            campaign_scheduler_role_arn=e.get("CAMPAIGN_SCHEDULER_ROLE_ARN", ""),
            campaign_narrowcast_above=int(e.get("CAMPAIGN_NARROWCAST_ABOVE", "5000")),
            helpdesk_bedrock_model_id=e.get("HELPDESK_BEDROCK_MODEL_ID", ""),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
