"""The coupons API: definitions, grants and lotteries, the LINE Login channel of the coupon page,
voids and the redemption report (the register's redemptions have a lean function of their own)."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.coupons.routes import router as coupons

app = build_resolver(coupons)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.coupon_catalog, wiring.coupon_grants, wiring.redemptions)
lambda_handler = api_handler(app)
