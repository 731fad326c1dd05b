"""What the lifespan opens and every handler needs, typed."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ..accounts import Accounts
from ..apitokens import ApiTokens
from ..config import Settings
from ..delivery import Deliverer
from ..metrics import Metrics
from ..scans import ScanWriter
from ..service import Service
from ..sso import SingleSignOn
from ..tokens import DailyPseudonyms
from ..webhook_admin import WebhookAdmin
from .render import Renderer


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    service: Service
    accounts: Accounts
    sso: SingleSignOn  # sign-in with the company's OpenID provider (``sso.configured`` False without one)
    writer: ScanWriter
    renderer: Renderer
    metrics: Metrics
    visitor_keys: DailyPseudonyms  # in memory only: see tokens.DailyPseudonyms
    webhooks: WebhookAdmin
    deliverer: Deliverer  # the background webhook sender; ``wake()`` after a console action
    api_tokens: ApiTokens
    metrics_token: bytes | None = None  # required by /metrics when set


def app_context(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx
