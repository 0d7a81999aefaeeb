"""The accounts API: accounts (create, settings, channel credentials), friends and chats, the
member register and its links. Routes live in their capabilities; this function only includes them."""

from tsunagu.accounts.routes import router as accounts
from tsunagu.api import api_handler, build_resolver
from tsunagu.linking.routes import router as members
from tsunagu.messaging.routes import router as messaging

app = build_resolver(accounts, messaging, members)
lambda_handler = api_handler(app)
