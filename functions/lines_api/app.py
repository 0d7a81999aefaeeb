"""The lines API: mobile lines, the carrier's usage feed, data gifts (R-GIFT-1)."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.lines.routes import router as lines

app = build_resolver(lines)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.lines_service)
lambda_handler = api_handler(app)
