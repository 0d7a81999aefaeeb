"""The coupons API: definitions, grants and lotteries, the LINE Login channel of the coupon page,
voids and the redemption report (the register's redemptions have a lean function of their own)."""

from tsunagu.api import api_handler, build_resolver
from tsunagu.coupons.routes import router as coupons

app = build_resolver(coupons)
lambda_handler = api_handler(app)
