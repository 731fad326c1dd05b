"""One access-log line per request, replacing uvicorn's (which printed the client address and the raw path).

The line holds the method, the route template (``/invite/{token}``, never the path), the status, the duration,
for card routes the first 8 hex digits of the SHA-256 of the token, and the first 8 hex digits of the visitor's
daily pseudonym when the request was recorded (``note_visitor``). See ``contactcard.logs`` for the format.

The same layer hands each request's route, status and duration to an observer (the request metrics, see
``ops.request_timer``): one wrapper around the app instead of two, on the scan hot path too.

It also ends a request whose client hung up mid-body quietly: the client is gone, so a traceback would only
fill the log (one per hang-up, for anyone who can open a connection).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..logs import ACCESS_LOGGER, JsonFormatter, TextFormatter, direct_access_handler
from .routes_info import card_digest, route_template

log = logging.getLogger(ACCESS_LOGGER)
_VISITOR = "cc_visitor_key"
CLIENT_GONE = 499  # nginx's "client closed request"
Observer = Callable[[Scope, int, float], None]  # (scope, status, seconds), once the request is over


def note_visitor(scope: Scope, visitor_key: str) -> None:
    """Let the access line carry a prefix of this request's visitor pseudonym (never the address behind it)."""
    scope.setdefault("state", {})[_VISITOR] = visitor_key


class AccessLog:
    """Pure ASGI middleware; wraps the whole app, the scan hot path included (see ``app.App``)."""

    def __init__(self, app: ASGIApp, *, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except ClientDisconnect:  # whatever was "sent" after it went nowhere
            status = CLIENT_GONE
        except BaseException:
            status = status or 500
            raise
        finally:
            self.finished(scope, status, time.perf_counter() - start)

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        """Count and log one answered request (also called by the scan lane, which answers without ASGI)."""
        if self.observe is not None:
            self.observe(scope, status or 500, seconds)  # no answer started: counted as the 500 it becomes
        if log.isEnabledFor(logging.INFO):
            self._log(scope, status, seconds)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        template = route_template(scope)
        fields: dict[str, Any] = {"method": scope["method"][:16], "route": template, "status": status,
                                  "ms": round(seconds * 1000, 1)}
        digest = card_digest(scope, template)
        if digest:
            fields["card"] = digest
        visitor = scope.get("state", {}).get(_VISITOR)
        if visitor:
            fields["visitor"] = visitor[:8]
        handler = direct_access_handler(log)
        if handler is not None:  # the server's own handler alone: the line it would print, without a LogRecord
            formatter = cast(TextFormatter | JsonFormatter, handler.formatter)
            handler.acquire()
            try:
                handler.write_line(formatter.access_line(fields, time.time()))
                return
            except Exception:  # noqa: S110  # the ordinary path below reports it (Handler.handleError)
                pass
            finally:
                handler.release()
        # makeRecord + handle, not log.info: the same record without the caller lookup (a stack walk per request);
        # no path either (nothing prints it, and LogRecord would split it into file and module names each time)
        log.handle(log.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, "access", (), None,
                                  extra={"access": fields}))
