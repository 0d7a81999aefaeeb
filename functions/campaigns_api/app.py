"""The campaigns API: tags and custom fields, segments and their preview, campaigns (A/B variants,
hold-out, forecast, schedule, cancel), statistics, reports and the tracked-link redirect."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.campaigns.routes import router as campaigns

app = build_resolver(campaigns)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.audiences, wiring.campaigns)
lambda_handler = api_handler(app)
