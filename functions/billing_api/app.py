"""The billing API: metered sends, live usage, forecasts, plans, budgets, options and calls,
invoices, point statements and the business-day calendar."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.billing.routes import router as billing

app = build_resolver(billing)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.billing_service)
lambda_handler = api_handler(app)
