"""Cached factories: each warm function builds its services and clients once."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tsunagu.config import get_settings

if TYPE_CHECKING:
    from tsunagu.accounts.service import AccountService
    from tsunagu.accounts.store import DynamoAccountStore
    from tsunagu.billing.service import BillingService
    from tsunagu.billing.usage_store import DynamoUsageLedger
    from tsunagu.campaigns.service import Audiences, Campaigns
    from tsunagu.console.service import StaffService
    from tsunagu.console.web import ConsoleHttp
    from tsunagu.coupons.line_coupons import LineCouponApi
    from tsunagu.coupons.service import CouponCatalog, CouponGrants, CouponPage, Redemptions
    from tsunagu.coupons.store import DynamoCouponStore
    from tsunagu.coupons.web import CouponPageHttp
    from tsunagu.helpdesk.service import HelpDesk
    from tsunagu.helpdesk.store import DynamoHelpdeskStore
    from tsunagu.infrastructure.line_api import LineClient
    from tsunagu.infrastructure.secrets import (
        OperatorKey,
        SecretsManagerChannelSecrets,
        SecretsManagerFactorKeys,
        SecretsManagerLoginChannels,
    )
    from tsunagu.intake.event_store_service import EventStoreService
    from tsunagu.intake.forwarding_service import ForwardingService
    from tsunagu.intake.service import WebhookIntake
    from tsunagu.lines.service import LinesService
    from tsunagu.lines.store import DynamoLineStore
    from tsunagu.linking.member_service import MemberService
    from tsunagu.linking.service import LinkingService
    from tsunagu.linking.store import DynamoLinkStore, DynamoMemberRegister
    from tsunagu.linking.web import LinkPageHttp
    from tsunagu.messaging.chat_service import ChatExport
    from tsunagu.messaging.friendship_service import FriendQuery, FriendshipService
    from tsunagu.messaging.inbound_service import MessageService
    from tsunagu.messaging.reply_service import ReplyService
    from tsunagu.messaging.stats_service import FriendStatsService
    from tsunagu.messaging.store import DynamoChatArchive, DynamoFriendStore
    from tsunagu.notifications.service import (
        DeliveryReconciler,
        NotificationBatches,
        NotificationSender,
        NotificationSweep,
        NotificationTemplates,
    )
    from tsunagu.notifications.store import DynamoNotificationStore


def dynamodb_client() -> Any:
    from tsunagu.infrastructure.aws import client

    return client("dynamodb")


@lru_cache(maxsize=1)
def account_store() -> DynamoAccountStore:
    from tsunagu.accounts.store import DynamoAccountStore

    return DynamoAccountStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def friend_store() -> DynamoFriendStore:
    from tsunagu.messaging.store import DynamoFriendStore

    return DynamoFriendStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def channel_secrets() -> SecretsManagerChannelSecrets:
    from tsunagu.infrastructure.secrets import SecretsManagerChannelSecrets

    s = get_settings()
    return SecretsManagerChannelSecrets(s.secret_prefix, s.secret_cache_seconds)


@lru_cache(maxsize=1)
def operator_key() -> OperatorKey:
    from tsunagu.infrastructure.secrets import OperatorKey

    s = get_settings()
    if s.local_operator_key:  # the local stack
        return OperatorKey("", s.local_operator_key)
    return OperatorKey(s.required("operator_key_secret_id"), None)


@lru_cache(maxsize=1)
def account_service() -> AccountService:
    from tsunagu.accounts.service import AccountService

    return AccountService(account_store(), channel_secrets())


@lru_cache(maxsize=1)
def webhook_intake() -> WebhookIntake:
    from tsunagu.infrastructure.queues import SqsEventQueues
    from tsunagu.intake.service import WebhookIntake

    s = get_settings()
    queues = SqsEventQueues(
        {
            "friendship": s.required("friendship_queue_url"),
            "message": s.required("message_queue_url"),
            "account_link": s.required("account_link_queue_url"),
            "delivery": s.required("delivery_queue_url"),
            "other": s.required("other_events_queue_url"),
            "forward": s.required("forward_queue_url"),
        }
    )
    from tsunagu.intake.store import CachedForwardTargets

    return WebhookIntake(channel_secrets(), queues, CachedForwardTargets(account_store()), s.max_webhook_body_bytes)


@lru_cache(maxsize=1)
def friendship_service() -> FriendshipService:
    from tsunagu.messaging.friendship_service import FriendshipService

    def grant_on_follow(account_id: str, user_id: str) -> Any:
        return coupon_grants().on_follow(account_id, user_id)  # built on the first follow only

    return FriendshipService(friend_store(), reply_service(), grant_on_follow)


@lru_cache(maxsize=1)
def friend_query() -> FriendQuery:
    from tsunagu.messaging.friendship_service import FriendQuery

    return FriendQuery(friend_store())


@lru_cache(maxsize=1)
def chat_archive() -> DynamoChatArchive:
    from tsunagu.messaging.store import DynamoChatArchive

    return DynamoChatArchive(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def reply_service() -> ReplyService:
    from tsunagu.messaging.reply_service import ReplyService

    return ReplyService(account_store(), channel_secrets(), line_client(), chat_archive(), usage_ledger())


@lru_cache(maxsize=1)
def message_service() -> MessageService:
    from tsunagu.messaging.inbound_service import MessageService

    return MessageService(
        account_store(),
        chat_archive(),
        reply_service(),
        linking_service(),
        lines_service(),
        help_desk(),
        tagger=audiences(),
    )


@lru_cache(maxsize=1)
def line_client() -> LineClient:
    from tsunagu.infrastructure.line_api import LineClient

    return LineClient(get_settings().line_api_base_url)


@lru_cache(maxsize=1)
def member_register() -> DynamoMemberRegister:
    from tsunagu.linking.store import DynamoMemberRegister

    return DynamoMemberRegister(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def link_store() -> DynamoLinkStore:
    from tsunagu.linking.store import DynamoLinkStore

    return DynamoLinkStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def factor_keys() -> SecretsManagerFactorKeys:
    from tsunagu.infrastructure.secrets import SecretsManagerFactorKeys

    return SecretsManagerFactorKeys(get_settings().secret_prefix)


@lru_cache(maxsize=1)
def linking_service() -> LinkingService:
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
        DynamoOtpStore(s.required("table_name")),
        HttpOtpSender(s.otp_sender_url),
        FactTags(),
    )


@lru_cache(maxsize=1)
def link_page_http() -> LinkPageHttp:
    from tsunagu.linking.web import LinkPageHttp

    s = get_settings()
    return LinkPageHttp(linking_service(), s.public_base_url, s.line_access_base_url)


@lru_cache(maxsize=1)
def member_service() -> MemberService:
    from tsunagu.linking.member_service import MemberService

    return MemberService(member_register(), link_store(), factor_keys(), friend_store(), FactTags())


@lru_cache(maxsize=1)
def chat_export() -> ChatExport:
    from tsunagu.messaging.chat_service import ChatExport

    return ChatExport(chat_archive())


@lru_cache(maxsize=1)
def event_store_service() -> EventStoreService:
    from tsunagu.intake.event_store_service import EventStoreService
    from tsunagu.intake.store import DynamoEventStore

    return EventStoreService(DynamoEventStore(get_settings().required("table_name")))


@lru_cache(maxsize=1)
def forwarding_service() -> ForwardingService:
    from tsunagu.infrastructure.outbound import UrllibRelay, resolve
    from tsunagu.intake.forwarding_service import ForwardingService

    return ForwardingService(UrllibRelay(), resolve, get_settings().allow_private_forwarding)


@lru_cache(maxsize=1)
def friend_stats_service() -> FriendStatsService:
    from tsunagu.messaging.stats_service import FriendStatsService

    return FriendStatsService(account_store(), friend_store())


@lru_cache(maxsize=1)
def notification_store() -> DynamoNotificationStore:
    from tsunagu.notifications.store import DynamoNotificationStore

    return DynamoNotificationStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def notification_templates() -> NotificationTemplates:
    from tsunagu.notifications.service import NotificationTemplates

    return NotificationTemplates(notification_store())


@lru_cache(maxsize=1)
def notification_batches() -> NotificationBatches:
    from tsunagu.infrastructure.queues import SqsEventQueues
    from tsunagu.notifications.service import NotificationBatches

    queue = SqsEventQueues({"notify": get_settings().required("notification_queue_url")})
    return NotificationBatches(notification_store(), notification_templates(), factor_keys(), queue)


@lru_cache(maxsize=1)
def notification_sender() -> NotificationSender:
    from tsunagu.infrastructure.queues import SqsEventQueues
    from tsunagu.notifications.service import NotificationSender, SenderConfig

    config = SenderConfig(rate_per_second=get_settings().sender_rate_per_second)
    queue = SqsEventQueues({"notify": get_settings().required("notification_queue_url")})
    return NotificationSender(
        notification_store(),
        member_register(),
        link_store(),
        friend_store(),
        channel_secrets(),
        line_client(),
        config,
        accounts=account_store(),
        queue=queue,
    )


@lru_cache(maxsize=1)
def delivery_reconciler() -> DeliveryReconciler:
    from tsunagu.notifications.service import DeliveryReconciler

    return DeliveryReconciler(notification_store())


@lru_cache(maxsize=1)
def notification_sweep() -> NotificationSweep:
    from tsunagu.notifications.service import NotificationSweep

    return NotificationSweep(account_store(), notification_store())


@lru_cache(maxsize=1)
def usage_ledger() -> DynamoUsageLedger:
    from tsunagu.billing.usage_store import DynamoUsageLedger

    return DynamoUsageLedger(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def coupon_store() -> DynamoCouponStore:
    from tsunagu.coupons.store import DynamoCouponStore

    return DynamoCouponStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def line_coupons() -> LineCouponApi:
    from tsunagu.coupons.line_coupons import LineCouponApi

    return LineCouponApi(get_settings().line_api_base_url)


@lru_cache(maxsize=1)
def coupon_code_keys() -> SecretsManagerFactorKeys:
    from tsunagu.infrastructure.secrets import SecretsManagerFactorKeys

    return SecretsManagerFactorKeys(
        get_settings().secret_prefix, "coupon-code-key", "tsunagu: MAC key of rotating coupon redemption codes"
    )


@lru_cache(maxsize=1)
def login_channels() -> SecretsManagerLoginChannels:
    from tsunagu.infrastructure.secrets import SecretsManagerLoginChannels

    s = get_settings()
    return SecretsManagerLoginChannels(s.secret_prefix, s.secret_cache_seconds)


@lru_cache(maxsize=1)
def coupon_catalog() -> CouponCatalog:
    from tsunagu.coupons.service import CouponCatalog

    return CouponCatalog(coupon_store(), line_coupons(), channel_secrets())


@lru_cache(maxsize=1)
def coupon_grants() -> CouponGrants:
    from tsunagu.coupons.service import CouponGrants

    return CouponGrants(coupon_store(), coupon_catalog(), link_store(), tagger=FactTags())


@lru_cache(maxsize=1)
def coupon_page() -> CouponPage:
    from tsunagu.coupons.jwks import LineJwks
    from tsunagu.coupons.service import CouponPage

    s = get_settings()
    page = CouponPage(coupon_grants(), login_channels(), coupon_code_keys(), line_coupons(), s.line_access_base_url)
    page.jwks = LineJwks(line_coupons().login_certs).key  # LIFF's ES256 ID tokens (issue 16)
    return page


@lru_cache(maxsize=1)
def coupon_page_http() -> CouponPageHttp:
    from tsunagu.coupons.web import CouponPageHttp

    return CouponPageHttp(coupon_page(), get_settings().public_base_url)


@lru_cache(maxsize=1)
def redemptions() -> Redemptions:
    from tsunagu.coupons.service import Redemptions

    return Redemptions(coupon_store(), coupon_grants(), coupon_code_keys(), account_store())


@lru_cache(maxsize=1)
def billing_service() -> BillingService:
    from tsunagu.billing.service import BillingService
    from tsunagu.billing.store import DynamoBillingStore

    s = get_settings()
    return BillingService(
        DynamoBillingStore(s.required("table_name")),
        usage_ledger(),
        account_store(),
        friend_store(),
        channel_secrets(),
        line_client(),
        member_register(),
    )


@lru_cache(maxsize=1)
def audiences() -> Audiences:
    from tsunagu.campaigns.service import Audiences
    from tsunagu.campaigns.store import DynamoAudienceStore

    return Audiences(DynamoAudienceStore(get_settings().required("table_name")))


class FactTags:
    """Automatic tags for the linking and coupon rooms: the campaigns room is imported on the
    first fact, not at a function's cold start (the redemption function rarely has a rule)."""

    def on_fact(self, account_id: str, user_id: str, on: str, value: str = "") -> int:
        return audiences().on_fact(account_id, user_id, on, value)


@lru_cache(maxsize=1)
def campaigns() -> Campaigns:
    from tsunagu.campaigns.schedule_store import EventBridgeLaunchSchedules
    from tsunagu.campaigns.service import Campaigns
    from tsunagu.campaigns.store import DynamoCampaignStore
    from tsunagu.infrastructure.queues import SqsEventQueues

    s = get_settings()
    return Campaigns(
        DynamoCampaignStore(s.required("table_name")),
        audiences(),
        SqsEventQueues({"campaign": s.required("campaign_queue_url")}),
        EventBridgeLaunchSchedules(s.required("campaign_queue_arn"), s.required("campaign_scheduler_role_arn")),
        line_client(),
        billing_service(),
        channel_secrets(),
        coupon_store(),
        s.public_base_url,
        s.campaign_narrowcast_above,
    )


@lru_cache(maxsize=1)
def line_store() -> DynamoLineStore:
    from tsunagu.lines.store import DynamoLineStore

    return DynamoLineStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def lines_service() -> LinesService:
    from tsunagu.infrastructure.queues import SqsEventQueues
    from tsunagu.infrastructure.secrets import SecretsManagerFactorKeys
    from tsunagu.lines.carrier import QueuedCarrierWebhook
    from tsunagu.lines.service import LinesService

    s = get_settings()
    carrier = QueuedCarrierWebhook(
        SqsEventQueues({"forward": s.required("forward_queue_url")}),
        SecretsManagerFactorKeys(s.secret_prefix, "carrier-webhook-key", "tsunagu: signs the carrier webhook"),
    )
    mypage_keys = SecretsManagerFactorKeys(s.secret_prefix, "mypage-ticket-key", "tsunagu: signs My Page login tickets")
    return LinesService(
        line_store(), link_store(), channel_secrets(), line_client(), carrier, usage_ledger(), mypage_keys
    )


@lru_cache(maxsize=1)
def helpdesk_store() -> DynamoHelpdeskStore:
    from tsunagu.helpdesk.store import DynamoHelpdeskStore

    return DynamoHelpdeskStore(get_settings().required("table_name"))


@lru_cache(maxsize=1)
def help_desk() -> HelpDesk:
    from tsunagu.helpdesk.answerers import BedrockAnswerer, FaqAnswerer
    from tsunagu.helpdesk.ports import Answerer
    from tsunagu.helpdesk.service import HelpDesk

    s = get_settings()
    retrieval = FaqAnswerer(helpdesk_store())
    answerer: Answerer = (
        BedrockAnswerer(retrieval, s.helpdesk_bedrock_model_id) if s.helpdesk_bedrock_model_id else retrieval
    )

    def chat_plus(account_id: str) -> bool:
        # Billing is loaded only when an operator answers (the API), never on the worker's cold start.
        from tsunagu.billing.service import jst_today

        return billing_service().option_active(account_id, "chat_plus", jst_today())

    return HelpDesk(
        helpdesk_store(), answerer, channel_secrets(), line_client(), factor_keys(), usage_ledger(), chat_plus
    )


@lru_cache(maxsize=1)
def staff_service() -> StaffService:
    from tsunagu.console.service import StaffService
    from tsunagu.console.store import DynamoStaffStore

    return StaffService(DynamoStaffStore(get_settings().required("table_name")))


@lru_cache(maxsize=1)
def console_http() -> ConsoleHttp:
    from tsunagu.console.web import ConsoleHttp

    return ConsoleHttp(staff_service(), account_service(), get_settings().public_base_url)


def ready(*factories: Callable[[], object]) -> None:
    """Build a function's services at cold start: a missing setting stops the function there
    (``MissingSetting``) instead of failing its first request. Clients stay lazy."""
    for factory in factories:
        factory()


def reset() -> None:
    """Forget every cached object (tests change settings between cases)."""
    for obj in list(globals().values()):
        if callable(obj) and hasattr(obj, "cache_clear"):
            obj.cache_clear()
    from tsunagu.infrastructure import aws

    aws.client.cache_clear()
    aws.session.cache_clear()
