"""Cached factories: each warm function builds its services and clients once."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tsunagu.config import get_settings


def dynamodb_client():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.aws import client

    return client("dynamodb")


@lru_cache(maxsize=1)
def account_store():  # type: ignore[no-untyped-def]
    from tsunagu.accounts.store import DynamoAccountStore

    return DynamoAccountStore(get_settings().table_name)


@lru_cache(maxsize=1)
def friend_store():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.store import DynamoFriendStore

    return DynamoFriendStore(get_settings().table_name)


@lru_cache(maxsize=1)
def channel_secrets():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.secrets import SecretsManagerChannelSecrets

    s = get_settings()
    return SecretsManagerChannelSecrets(s.secret_prefix, s.secret_cache_seconds)


@lru_cache(maxsize=1)
def operator_key():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.secrets import OperatorKey

    s = get_settings()
    return OperatorKey(s.operator_key_secret_id, s.local_operator_key)


@lru_cache(maxsize=1)
def account_service():  # type: ignore[no-untyped-def]
    from tsunagu.accounts.service import AccountService

    return AccountService(account_store(), channel_secrets())


@lru_cache(maxsize=1)
def webhook_intake():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.queues import SqsEventQueues
    from tsunagu.intake.service import WebhookIntake

    s = get_settings()
    queues = SqsEventQueues(
        {
            "friendship": s.friendship_queue_url,
            "message": s.message_queue_url,
            "account_link": s.account_link_queue_url,
            "delivery": s.delivery_queue_url,
            "other": s.other_events_queue_url,
            "forward": s.forward_queue_url,
        }
    )
    from tsunagu.intake.store import CachedForwardTargets

    return WebhookIntake(channel_secrets(), queues, CachedForwardTargets(account_store()), s.max_webhook_body_bytes)


@lru_cache(maxsize=1)
def friendship_service():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.friendship_service import FriendshipService

    def grant_on_follow(account_id: str, user_id: str) -> Any:
        return coupon_grants().on_follow(account_id, user_id)  # built on the first follow only

    return FriendshipService(friend_store(), reply_service(), grant_on_follow)


@lru_cache(maxsize=1)
def friend_query():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.friendship_service import FriendQuery

    return FriendQuery(friend_store())


@lru_cache(maxsize=1)
def chat_archive():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.store import DynamoChatArchive

    return DynamoChatArchive(get_settings().table_name)


@lru_cache(maxsize=1)
def reply_service():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.reply_service import ReplyService

    return ReplyService(account_store(), channel_secrets(), line_client(), chat_archive(), usage_ledger())


@lru_cache(maxsize=1)
def message_service():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.inbound_service import MessageService

    return MessageService(account_store(), chat_archive(), reply_service(), linking_service())


@lru_cache(maxsize=1)
def line_client():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.line_api import LineClient

    return LineClient(get_settings().line_api_base_url)


@lru_cache(maxsize=1)
def member_register():  # type: ignore[no-untyped-def]
    from tsunagu.linking.store import DynamoMemberRegister

    return DynamoMemberRegister(get_settings().table_name)


@lru_cache(maxsize=1)
def link_store():  # type: ignore[no-untyped-def]
    from tsunagu.linking.store import DynamoLinkStore

    return DynamoLinkStore(get_settings().table_name)


@lru_cache(maxsize=1)
def factor_keys():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.secrets import SecretsManagerFactorKeys

    return SecretsManagerFactorKeys(get_settings().secret_prefix)


@lru_cache(maxsize=1)
def linking_service():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.outbound import HttpOtpSender
    from tsunagu.linking.service import LinkingService, LinkLimits
    from tsunagu.linking.store import DynamoOtpStore

    s = get_settings()
    limits = LinkLimits(per_member=s.link_max_failures_per_member, per_user=s.link_max_failures_per_user)
    return LinkingService(
        account_store(),
        member_register(),
        link_store(),
        factor_keys(),
        channel_secrets(),
        line_client(),
        s.line_access_base_url,
        limits,
        DynamoOtpStore(s.table_name),
        HttpOtpSender(s.otp_sender_url),
    )


@lru_cache(maxsize=1)
def member_service():  # type: ignore[no-untyped-def]
    from tsunagu.linking.member_service import MemberService

    return MemberService(member_register(), link_store(), factor_keys(), friend_store())


@lru_cache(maxsize=1)
def chat_export():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.chat_service import ChatExport

    return ChatExport(chat_archive())


@lru_cache(maxsize=1)
def event_store_service():  # type: ignore[no-untyped-def]
    from tsunagu.intake.event_store_service import EventStoreService
    from tsunagu.intake.store import DynamoEventStore

    return EventStoreService(DynamoEventStore(get_settings().table_name))


@lru_cache(maxsize=1)
def forwarding_service():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.outbound import UrllibRelay, resolve
    from tsunagu.intake.forwarding_service import ForwardingService

    return ForwardingService(UrllibRelay(), resolve, get_settings().allow_private_forwarding)


@lru_cache(maxsize=1)
def friend_stats_service():  # type: ignore[no-untyped-def]
    from tsunagu.messaging.stats_service import FriendStatsService

    return FriendStatsService(account_store(), friend_store())


@lru_cache(maxsize=1)
def notification_store():  # type: ignore[no-untyped-def]
    from tsunagu.notifications.store import DynamoNotificationStore

    return DynamoNotificationStore(get_settings().table_name)


@lru_cache(maxsize=1)
def notification_templates():  # type: ignore[no-untyped-def]
    from tsunagu.notifications.service import NotificationTemplates

    return NotificationTemplates(notification_store())


@lru_cache(maxsize=1)
def notification_batches():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.queues import SqsEventQueues
    from tsunagu.notifications.service import NotificationBatches

    queue = SqsEventQueues({"notify": get_settings().notification_queue_url})
    return NotificationBatches(notification_store(), notification_templates(), factor_keys(), queue)


@lru_cache(maxsize=1)
def notification_sender():  # type: ignore[no-untyped-def]
    from tsunagu.notifications.service import NotificationSender, SenderConfig

    config = SenderConfig(rate_per_second=get_settings().sender_rate_per_second)
    return NotificationSender(
        notification_store(),
        member_register(),
        link_store(),
        friend_store(),
        channel_secrets(),
        line_client(),
        config,
        accounts=account_store(),
    )


@lru_cache(maxsize=1)
def delivery_reconciler():  # type: ignore[no-untyped-def]
    from tsunagu.notifications.service import DeliveryReconciler

    return DeliveryReconciler(notification_store())


@lru_cache(maxsize=1)
def notification_sweep():  # type: ignore[no-untyped-def]
    from tsunagu.notifications.service import NotificationSweep

    return NotificationSweep(account_store(), notification_store())


@lru_cache(maxsize=1)
def usage_ledger():  # type: ignore[no-untyped-def]
    from tsunagu.billing.usage_store import DynamoUsageLedger

    return DynamoUsageLedger(get_settings().table_name)


@lru_cache(maxsize=1)
def coupon_store():  # type: ignore[no-untyped-def]
    from tsunagu.coupons.store import DynamoCouponStore

    return DynamoCouponStore(get_settings().table_name)


@lru_cache(maxsize=1)
def line_coupons():  # type: ignore[no-untyped-def]
    from tsunagu.coupons.line_coupons import LineCouponApi

    return LineCouponApi(get_settings().line_api_base_url)


@lru_cache(maxsize=1)
def coupon_code_keys():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.secrets import SecretsManagerFactorKeys

    return SecretsManagerFactorKeys(
        get_settings().secret_prefix, "coupon-code-key", "tsunagu: MAC key of rotating coupon redemption codes"
    )


@lru_cache(maxsize=1)
def login_channels():  # type: ignore[no-untyped-def]
    from tsunagu.infrastructure.secrets import SecretsManagerLoginChannels

    s = get_settings()
    return SecretsManagerLoginChannels(s.secret_prefix, s.secret_cache_seconds)


@lru_cache(maxsize=1)
def coupon_catalog():  # type: ignore[no-untyped-def]
    from tsunagu.coupons.service import CouponCatalog

    return CouponCatalog(coupon_store(), line_coupons(), channel_secrets())


@lru_cache(maxsize=1)
def coupon_grants():  # type: ignore[no-untyped-def]
    from tsunagu.coupons.service import CouponGrants

    return CouponGrants(coupon_store(), coupon_catalog(), link_store())


@lru_cache(maxsize=1)
def coupon_page():  # type: ignore[no-untyped-def]
    from tsunagu.coupons.service import CouponPage

    s = get_settings()
    return CouponPage(coupon_grants(), login_channels(), coupon_code_keys(), line_coupons(), s.line_access_base_url)


@lru_cache(maxsize=1)
def redemptions():  # type: ignore[no-untyped-def]
    from tsunagu.coupons.service import Redemptions

    return Redemptions(coupon_store(), coupon_grants(), coupon_code_keys())


@lru_cache(maxsize=1)
def billing_service():  # type: ignore[no-untyped-def]
    from tsunagu.billing.service import BillingService
    from tsunagu.billing.store import DynamoBillingStore

    s = get_settings()
    return BillingService(
        DynamoBillingStore(s.table_name),
        usage_ledger(),
        account_store(),
        friend_store(),
        channel_secrets(),
        line_client(),
        member_register(),
    )


def reset() -> None:
    """Forget every cached object (tests change settings between cases)."""
    for obj in list(globals().values()):
        if callable(obj) and hasattr(obj, "cache_clear"):
            obj.cache_clear()
    from tsunagu.infrastructure import aws

    aws.client.cache_clear()
    aws.session.cache_clear()
