"""The billing API: metered sends, live usage, forecasts, plans, budgets, options and calls,
invoices, point statements and the business-day calendar."""

from tsunagu.api import api_handler, build_resolver
from tsunagu.billing.routes import router as billing

app = build_resolver(billing)
lambda_handler = api_handler(app)
