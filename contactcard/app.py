"""The ASGI application: ``create_app(settings)`` wires the store, the scan writer and the routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2 as httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from . import i18n, keycheck, stats, visitors
from .accounts import Accounts
from .apitokens import ApiTokens
from .config import Settings, read_token_file
from .delivery import Deliverer
from .metrics import Metrics
from .models import Busy, Clock
from .oidc import OidcClient, ProviderConfig, origin_of
from .scans import ScanWriter, cancel_quietly
from .service import Service, system_clock
from .sso import SingleSignOn
from .store import Store
from .tokens import DailyPseudonyms
from .web import admin, api, auth_routes, customer, forms, leadform, me, ops, pages, scim, sso_routes
from .web.accesslog import AccessLog
from .web.context import AppContext
from .web.lane import ScanLane
from .web.proxy import ProxyHeaders
from .web.render import Renderer
from .web.security import SecurityHeaders, StrictTransport, csp_tail
from .web.session import PreSessionCsrf
from .webhook_admin import WebhookAdmin

MAX_BODY = 8 * 1024 * 1024


class App(Starlette):
    """Starlette with the scan hot path (``customer.FastCardPage``) in front of the whole middleware stack, and the
    edge layers (trusted-proxy resolution, access log, request metrics, HSTS) in front of that, so they see every
    request."""

    settings: Settings
    metrics: Metrics
    scan_lane: ScanLane | None = None  # for ``serving``'s protocol; built with the stack, whose edges it applies

    def build_middleware_stack(self) -> ASGIApp:
        policy = page_policy(self.settings)  # what ``SecurityHeaders`` sends inside the stack
        stack: ASGIApp = customer.FastCardPage(super().build_middleware_stack(), policy)
        hsts = None
        if self.settings.secure_cookies and self.settings.hsts:
            stack = hsts = StrictTransport(stack, self.settings.hsts)
        stack = access = AccessLog(stack, observe=ops.request_timer(self.metrics))
        proxies = ProxyHeaders(stack, self.settings.trusted_proxies) if self.settings.trusted_proxies else None
        self.scan_lane = ScanLane(self, access, proxies, [] if hsts is None else [hsts.header], policy)
        return proxies or stack


def page_policy(settings: Settings) -> bytes:
    """The Content-Security-Policy after the nonce, one for every path (``SecurityHeaders``, the fast card page, the
    scan lane): forms may lead to us and, with single sign-on, to the provider (the sign-out page posts there)."""
    return csp_tail(() if settings.oidc is None else (origin_of(settings.oidc.issuer),))


def create_app(settings: Settings, *, clock: Clock | None = None,
               http_transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """The app; ``clock`` and ``http_transport`` (what carries requests to the identity provider) are for tests."""
    renderer = Renderer(settings.templates_dir, i18n.load_catalogues())
    metrics = Metrics()  # one registry per app

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        metrics_token = None if settings.metrics_token_file is None else read_token_file(settings.metrics_token_file)
        oidc_secret = None if settings.oidc is None else read_token_file(settings.oidc.client_secret_file,
                                                                           "OpenID client secret file")
        store = await Store.open(settings.db_path)
        try:
            secret = await keycheck.bind_secret(store, settings.secret_file, settings.db_path)
        except BaseException:
            await store.close()
            raise
        service = Service(store, secret=secret, base_url=settings.base_url, clock=clock or system_clock)
        accounts = Accounts(store, service.clock, base_url=settings.base_url, settled=service.settled)
        oidc = None
        if settings.oidc is not None and oidc_secret is not None:
            oidc = OidcClient(ProviderConfig(settings.oidc.issuer, settings.oidc.client_id, oidc_secret.decode(),
                                             settings.base_url + sso_routes.CALLBACK, settings.oidc.email_claim,
                                             settings.base_url + auth_routes.SIGNED_OUT_PAGE,
                                             settings.oidc.sign_out),
                              service.clock, transport=http_transport)
        sso = SingleSignOn(store, accounts, oidc, service.clock,
                           name=settings.oidc.display_name if settings.oidc else "")
        api_tokens = ApiTokens(store, service.clock, rate_per_minute=settings.api_rate_limit)
        writer = ScanWriter(store, max_queue=settings.scan_queue_size, max_batch=settings.scan_batch_size,
                            observer=metrics, freshness=service)
        metrics.watch_queue(lambda: writer.queue_depth, writer.queue_bound)
        writer.start()
        visitors.warm()
        deliverer = Deliverer(store, secret, clock=service.clock, allow_private=settings.webhook_allow_private)
        if settings.webhook_worker:
            deliverer.start()
        maintenance = asyncio.get_running_loop().create_task(stats.daily_job(service), name="scan-maintenance")
        app.state.ctx = AppContext(settings=settings, service=service, accounts=accounts, sso=sso, writer=writer,
                                   renderer=renderer, metrics=metrics, metrics_token=metrics_token,
                                   visitor_keys=DailyPseudonyms(), deliverer=deliverer,
                                   webhooks=WebhookAdmin(store, service.clock, secret=secret,
                                                         allow_private=settings.webhook_allow_private),
                                   api_tokens=api_tokens)
        try:
            yield
        finally:
            await cancel_quietly(maintenance)
            await deliverer.close()
            await writer.close()
            await sso.close()
            await store.close()

    routes = [
        *leadform.routes,  # before customer's, whose last routes take anything else under /c/
        *customer.routes,
        *pages.routes,
        *ops.routes,
        *auth_routes.routes,
        *sso_routes.routes,
        *me.routes,
        *admin.routes,
        *api.routes,
        *scim.routes,
        Mount("/static", StaticFiles(directory=settings.static_dir), name="static"),
    ]
    forms.check_routes(routes)  # no route takes a POST without the CSRF check: refuse to build the app
    app = App(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, csp_tail=page_policy(settings)),
                    Middleware(PreSessionCsrf, secure=settings.secure_cookies)],
        exception_handlers={HTTPException: pages.http_error, Busy: pages.http_error, Exception: pages.http_error},
        lifespan=lifespan,
        max_body_size=MAX_BODY,
    )
    app.settings = settings
    app.metrics = metrics
    return app
