"""Response headers every page carries, with a fresh CSP nonce per request."""

from __future__ import annotations

import base64
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = {"Cache-Control": "no-store"}  # for answers that must not be kept by a browser or a proxy

_random_pool = bytearray()


def new_nonce() -> str:
    """16 bytes from the OS CSPRNG, base64url; drawn from a pool refilled 4 KB at a time (one syscall per 256)."""
    global _random_pool
    if len(_random_pool) < 16:
        _random_pool = bytearray(secrets.token_bytes(4096))
    chunk = bytes(_random_pool[:16])
    del _random_pool[:16]
    return base64.urlsafe_b64encode(chunk).rstrip(b"=").decode("ascii")


_CSP_HEAD = b"default-src 'none'; img-src 'self' data:; style-src 'self' 'nonce-"


def csp_tail(form_origins: tuple[str, ...] = ()) -> bytes:
    """The Content-Security-Policy after the nonce; forms may lead to us and to ``form_origins``."""
    form_action = " ".join(("'self'", *form_origins))
    return (b"'; script-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
            b"form-action " + form_action.encode("ascii") + b"; frame-ancestors 'none'; base-uri 'none'")

_STATIC_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def security_headers(nonce: str, csp_tail: bytes) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (raw ASGI form); the CSP (``csp_tail`` after the nonce: the app's one
    policy, see ``app.page_policy``) allows only styles with this nonce."""
    return [(b"content-security-policy", _CSP_HEAD + nonce.encode("ascii") + csp_tail), *_STATIC_HEADERS]


class SecurityHeaders:
    """Pure ASGI middleware: no inline script anywhere, nothing may frame us, no referrer leaks a token.

    ``csp_tail``: the app's policy (``app.page_policy``): forms lead only to us, and to the identity provider's
    origin, where the sign-out page's form posts the ID token to sign out there too (``web/auth_routes``)."""

    def __init__(self, app: ASGIApp, *, csp_tail: bytes) -> None:
        self.app = app
        self.csp_tail = csp_tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = new_nonce()
        scope.setdefault("state", {})["csp_nonce"] = nonce
        added = security_headers(nonce, self.csp_tail)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in added if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class StrictTransport:
    """Pure ASGI middleware: ``Strict-Transport-Security`` on every response (installed with an https base URL).

    Outside the scan hot path (see ``app.App``), so the card page carries it too.
    """

    def __init__(self, app: ASGIApp, value: str) -> None:
        self.app = app
        self.header = (b"strict-transport-security", value.encode("ascii"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_hsts)
