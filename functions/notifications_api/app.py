"""The notifications API: notification-message templates with review status, batches by phone
number, batch reports and the CSV of the undelivered (R-PNP-*)."""

from tsunagu import wiring
from tsunagu.api import api_handler, build_resolver
from tsunagu.notifications.routes import router as notifications

app = build_resolver(notifications)
# A missing setting stops the function here, at cold start.
wiring.ready(wiring.account_service, wiring.notification_templates, wiring.notification_batches)
lambda_handler = api_handler(app)
