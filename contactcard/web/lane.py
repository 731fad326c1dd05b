"""The scan lane: a plain ``GET /c/{token}`` whose link is in the service's cache, answered by the HTTP protocol.

A QR scan is one such request, and most of what it cost was the machinery around it: an asyncio task, the ASGI
scope and messages, the middleware layers, a Starlette Response, a wait for a ``PRAGMA data_version`` check and
a future per request. The lane takes the request in ``serving``'s protocol once its head is parsed, with no
task: it resolves the link from the cache, queues the event with a callback, and writes the answer when the
batch carrying it has committed (``ScanWriter.submit``). The page, its headers, the access line and the metrics
are the ones the ASGI path gives (``customer.page_for``, ``security_headers``, ``AccessLog.finished``).

What it does not take goes to uvicorn as before (``customer.FastCardPage`` and the routes): another method or
path, a query string, a body, an oversized header, a link not in the cache, a departed employee's link (its
successor is read from the database), a request pipelined behind one still being answered, a full queue, a
connection whose client is not reading what was sent to it (uvicorn then waits before writing more).

**Freshness without a check per request.** The cache is good as of the ``PRAGMA data_version`` the service last
saw; the event carries that number, and the writer compares it under the write lock, in the transaction that
would store the event. If another connection (the CLI, another worker) has committed since, nothing is stored:
the cache is dropped and the request goes through the ordinary pipeline (``customer.track``), which reads the
link afresh. A change made through this process drops the cache before it is answered. So a revoke that has
returned before a scan is sent is always shown, as on the ASGI path.

While a lane request waits, a ``LaneCycle`` stands in for uvicorn's request cycle: a request pipelined behind it
queues, a hang-up marks it disconnected (the event is still committed, the answer goes nowhere), and a graceful
shutdown answers it and then closes the connection.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..scans import Stale
from ..service import Resolution
from ..tokens import TOKEN_PATTERN
from ..visitors import MAX_HEADER
from .accesslog import AccessLog
from .context import AppContext
from .customer import as_resolved, busy, hit_event, page_for, track
from .proxy import ProxyHeaders
from .routes_info import note_route
from .security import NO_STORE, new_nonce, security_headers

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger(__name__)

_CARD_URL = re.compile(("/c/" + TOKEN_PATTERN).encode("ascii"))
_NOT_TAKEN = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade"})  # a body, or more than GET
_CLOSE = b"connection: close\r\n"


class _NoEvent:
    """uvicorn sets its cycle's message event when the request's body ends or the client hangs up; nothing here
    waits for a body."""

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class ScanLane:
    """Built with the app's middleware stack (``app.App``), whose edge layers it applies itself."""

    def __init__(self, app: Starlette, access: AccessLog, proxies: ProxyHeaders | None,
                 extra_headers: list[tuple[bytes, bytes]], csp_tail: bytes) -> None:
        self.app = app
        self.access = access
        self.proxies = proxies
        self.extra_headers = extra_headers  # HSTS when configured (``StrictTransport``'s header)
        self.csp_tail = csp_tail  # the policy ``SecurityHeaders`` sends, after the nonce
        self.answers = PreparedAnswers(extra_headers, csp_tail)
        self._defaults: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")

    def default_lines(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """uvicorn's default headers (date, server) as header lines, joined once per list: uvicorn replaces the list
        when the date changes (once a second), it never edits one in place."""
        known, lines = self._defaults
        if headers is not known:
            lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            self._defaults = (headers, lines)
        return lines

    def take(self, protocol: HttpToolsProtocol) -> bool:
        """Called when a request's head has been parsed and no earlier request is being answered; True if the
        lane answers it (then uvicorn must not see it), False to leave it to uvicorn."""
        ctx: AppContext | None = getattr(self.app.state, "ctx", None)
        url = protocol.url
        parser = protocol.parser
        if (ctx is None or _CARD_URL.fullmatch(url) is None or parser.get_method() != b"GET"
                or protocol.flow.write_paused or not ctx.writer.can_take()):
            return False  # write_paused: a client not reading its answers is left to uvicorn, which waits for it
        accept_language = cookie = None  # the first of each, as the page's language is chosen from
        for name, value in protocol.headers:
            if name in _NOT_TAKEN or len(value) > MAX_HEADER:
                return False
            if name == b"accept-language" and accept_language is None:
                accept_language = value
            elif name == b"cookie" and cookie is None:
                cookie = value
        token = url[3:].decode("ascii")
        res = ctx.service.cached_resolution(token)
        if res is None:
            return False
        try:
            cycle = self._start(ctx, protocol, token, res, (token, res.outcome, accept_language, cookie))
        except Exception:  # nothing was queued: uvicorn hands it to the app, which records and answers it
            log.exception("scan lane: could not take a request")
            return False
        protocol.cycle = cycle  # type: ignore[assignment]  # uvicorn only reads the attributes LaneCycle has
        return True

    def _start(self, ctx: AppContext, protocol: HttpToolsProtocol, token: str, res: Resolution,
               answer_key: AnswerKey) -> LaneCycle:
        scope = protocol.scope
        version = protocol.parser.get_http_version()
        scope["method"] = "GET"
        scope["path"] = scope["root_path"] + "/c/" + token
        scope["raw_path"] = protocol.url
        scope["query_string"] = b""
        if version != "1.1":
            scope["http_version"] = version
        if self.proxies is not None:
            self.proxies.resolve(scope)  # type: ignore[arg-type]  # uvicorn's typed scope is a plain dict
        note_route(scope, "/c/{token}")  # type: ignore[arg-type]
        event, _ = hit_event(ctx, scope, res, res.outcome, None)  # type: ignore[arg-type]
        cycle = LaneCycle(self, ctx, protocol, token, res, answer_key,
                          keep_alive=version != "1.0" and protocol.parser.should_keep_alive())
        deadline = protocol.loop.time() + ctx.settings.scan_deadline
        ctx.writer.submit(event, cycle.committed, deadline=deadline, fresh_at=ctx.service.seen_version)
        return cycle


class LaneCycle:
    """One lane request from its head to its answer; what uvicorn's protocol reads of its request cycle."""

    def __init__(self, lane: ScanLane, ctx: AppContext, protocol: HttpToolsProtocol, token: str, res: Resolution,
                 answer_key: AnswerKey, *, keep_alive: bool) -> None:
        self.lane, self.ctx, self.protocol = lane, ctx, protocol
        self.scope = protocol.scope
        self.token, self.res, self.answer_key = token, res, answer_key
        self.started = time.perf_counter()
        # read and written by uvicorn's protocol
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.more_body = True
        self.body = bytearray()
        self.message_event = _NO_EVENT

    def committed(self, exc: BaseException | None) -> None:
        """The writer's answer: the event is stored (None), or it is not (why)."""
        if isinstance(exc, Stale):  # another program changed the database: the ordinary pipeline reads it afresh
            task = self.protocol.loop.create_task(self._again())
            self.protocol.tasks.add(task)
            task.add_done_callback(self.protocol.tasks.discard)
            return
        if exc is None and self.keep_alive:
            prepared = self.lane.answers.get(self.answer_key, self.res)
            if prepared is None:
                prepared = self.lane.answers.prepare(self.answer_key, self.res, self._page(self.res, _MARK))
            self._write(prepared.status, prepared.bytes_with(new_nonce()))
            return
        nonce = new_nonce()
        self._answer(self._page(self.res, nonce) if exc is None else self._busy(nonce), nonce)

    async def _again(self) -> None:
        nonce = new_nonce()
        try:
            hit = await track(self.ctx, self.scope, self.token, as_resolved)  # type: ignore[arg-type]
            response = self._busy(nonce) if hit is None else self._page(hit.res, nonce)
        except Exception:
            response = _failed()
        self._answer(response, nonce)

    def _page(self, res: Resolution, nonce: str) -> Response:
        self.scope["state"]["csp_nonce"] = nonce
        try:
            return page_for(Request(self.scope), self.ctx, res, self.token)  # type: ignore[arg-type]
        except Exception:
            return _failed()

    def _busy(self, nonce: str) -> Response:
        self.scope["state"]["csp_nonce"] = nonce
        return busy(Request(self.scope), self.ctx)  # type: ignore[arg-type]

    def _answer(self, response: Response, nonce: str) -> None:
        close = not self.keep_alive
        self._write(response.status_code,
                    serialised(response, nonce, self.lane.extra_headers, self.lane.csp_tail, close=close))

    def _write(self, status: int, headers_and_body: bytes) -> None:
        """Send the answer as uvicorn would (its default headers first), then let the connection go on."""
        if not self.disconnected:
            transport = self.protocol.transport
            defaults = self.lane.default_lines(self.protocol.server_state.default_headers)
            transport.write(b"".join((STATUS_LINE[status], defaults, headers_and_body)))
            if not self.keep_alive:
                transport.close()
        self.response_complete = True
        self.protocol.on_response_complete()
        self.lane.access.finished(self.scope, status, time.perf_counter() - self.started)  # type: ignore[arg-type]


AnswerKey = tuple[str, object, bytes | None, bytes | None]  # token, outcome, Accept-Language, Cookie
_MARK = new_nonce()  # stands for the CSP nonce in a prepared answer: as long as a nonce, so Content-Length holds


def serialised(response: Response, nonce: str, extra_headers: list[tuple[bytes, bytes]], csp_tail: bytes, *,
               close: bool) -> bytes:
    """The response's header lines (the security headers with ``nonce`` and ``csp_tail`` and ``extra_headers``
    added), the blank line and the body, as uvicorn writes them after the status line and its default headers."""
    lines = [name + b": " + value + b"\r\n"
             for name, value in (*response.raw_headers, *security_headers(nonce, csp_tail), *extra_headers)]
    if close:
        lines.append(_CLOSE)
    return b"".join((*lines, b"\r\n", bytes(response.body)))


@dataclass(frozen=True)
class Prepared:
    pins: tuple[object, ...]  # the cached objects the page shows, compared by identity (as ``Renderer`` does)
    status: int
    pieces: tuple[bytes, ...]  # the answer split where the nonce goes

    def bytes_with(self, nonce: str) -> bytes:
        return nonce.encode("ascii").join(self.pieces)


class PreparedAnswers:
    """Whole answers (headers and page) per link, outcome and language inputs, for as long as the service keeps
    the objects they show: a scan then costs a lookup and a join instead of a render, a Response and its
    headers. Not for pages that differ per response beyond the nonce (the contact form's signed token)."""

    def __init__(self, extra_headers: list[tuple[bytes, bytes]], csp_tail: bytes) -> None:
        self.extra_headers = extra_headers
        self.csp_tail = csp_tail
        self._answers: dict[AnswerKey, Prepared] = {}

    @staticmethod
    def _pins(res: Resolution) -> tuple[object, ...]:
        return res.company, res.card, res.employee, res.channels

    def get(self, key: AnswerKey, res: Resolution) -> Prepared | None:
        found = self._answers.get(key)
        if found is None or res.company.leads_enabled:
            return None
        company, card, employee, channels = found.pins  # the order of _pins; compared without a generator per scan
        same = company is res.company and card is res.card and employee is res.employee and channels is res.channels
        return found if same else None

    def prepare(self, key: AnswerKey, res: Resolution, response: Response) -> Prepared:
        """Keep ``response`` (rendered with the nonce ``_MARK``) for ``key``; what to send for it."""
        whole = serialised(response, _MARK, self.extra_headers, self.csp_tail, close=False)
        prepared = Prepared(self._pins(res), response.status_code, tuple(whole.split(_MARK.encode("ascii"))))
        if not res.company.leads_enabled and response.status_code < 500:
            if len(self._answers) >= ANSWER_CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = prepared
        return prepared


ANSWER_CACHE_SIZE = 4096


def _failed() -> Response:
    # Never handed to the app once queued (its event may be stored, and would be stored twice): a bare 500.
    log.exception("error rendering a card page")
    return Response(b"Internal Server Error", status_code=500, media_type="text/plain", headers=NO_STORE)

