"""How ``contactcard serve`` runs uvicorn so that one client cannot take the server down, and stops gracefully.

- **Open files.** The soft ``RLIMIT_NOFILE`` is raised to the hard limit at start (a service manager often leaves
  it at 1,024), and connections are capped below it, so accepting never fails for lack of descriptors.
- **Connection cap.** At the cap a new connection takes the place of the oldest connection that is not being
  answered (still sending its request, or idle between keep-alive requests); only when every connection is busy
  is the newcomer closed. A flood of stalled connections therefore evicts itself, and a scan still gets in.
- **Incomplete requests.** Headers must arrive within ``HEADER_TIMEOUT`` of the first byte (or of the
  connection), and a body may not pause for longer than ``BODY_IDLE_TIMEOUT``; otherwise the connection is
  closed, and the request line plus headers may not exceed ``MAX_INCOMPLETE_EVENT`` bytes (400). uvicorn's
  httptools protocol has none of these, so they are added in a subclass of it (httptools rather than h11: h11
  validates every response header with regular expressions, about half of uvicorn's cost per scan).
- **Quiet under attack.** Resource errors (``EMFILE``, evictions, time-outs) are logged once per interval with a
  count, never once per attempt with a traceback.
- **Graceful stop.** On SIGTERM uvicorn stops accepting, lets accepted requests finish (at most
  ``GRACEFUL_TIMEOUT``), then the app's shutdown commits every queued scan event; the process is gone in < 10 s.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import Settings
from .logs import OncePerInterval, logging_config

log = logging.getLogger("contactcard.serving")

RESERVED_FDS = 128  # descriptors kept free for the database, its WAL, the listening socket, logs, temp files
MAX_CONNECTIONS = 4096  # a single worker answers ~7,000 scans/s; more open connections only cost memory
HEADER_TIMEOUT = 10.0
BODY_IDLE_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
GRACEFUL_TIMEOUT = 6
MAX_INCOMPLETE_EVENT = 16 * 1024  # request line plus headers (h11's default; httptools has no limit of its own)
HTTP_PROTOCOL = "httptools"  # uvicorn's name for the protocol the guards extend (the benchmark's bare app uses it)
RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # e.g. a hard limit above the kernel's nr_open
        return soft
    return target


def connection_cap(open_files: int) -> int:
    return max(16, min(MAX_CONNECTIONS, open_files - RESERVED_FDS))


@dataclass(frozen=True)
class Limits:
    max_connections: int
    header_timeout: float = HEADER_TIMEOUT
    body_idle_timeout: float = BODY_IDLE_TIMEOUT


class Phase(enum.Enum):
    """Where a connection's current request is, as far as the guards care."""

    IDLE = enum.auto()  # no request yet, or between keep-alive requests
    HEAD = enum.auto()  # the request line and headers are arriving
    BODY = enum.auto()  # the headers are in, the body is arriving
    ANSWERING = enum.auto()  # the whole request is in: the app is answering it


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools turns it into a parse error, and uvicorn answers 400 and closes."""


class NoticeLogger(logging.Logger):
    """The protocol's logger: uvicorn warns once per malformed request ("Invalid HTTP request received."), so a
    flood of them would flood the log; each warning is given once per interval with a count instead. Other
    levels go to uvicorn's error logger as before."""

    def __init__(self, notices: OncePerInterval) -> None:
        super().__init__("uvicorn.error.protocol")
        self.parent = logging.getLogger("uvicorn.error")
        self._notices = notices

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)
        self._notices.warning(f"protocol: {msg}", text)


def guarded_protocol(limits: Limits, notices: OncePerInterval, app: Any = None) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the connection cap, the incomplete-request time-outs and a cap on the size
    of the request line plus headers (see the module doc); a plain scan goes to ``app.scan_lane`` when it has one
    (``web.lane``)."""
    waiting: OrderedDict[GuardedHttpTools, None] = OrderedDict()  # evictable connections, oldest first
    protocol_log = NoticeLogger(notices)

    def note_head_refused() -> None:
        notices.warning("head", f"refused requests whose line and headers exceeded {MAX_INCOMPLETE_EVENT} bytes")

    class GuardedHttpTools(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase = Phase.IDLE
        _head_parsed = 0  # bytes of the request line and headers the parser has handed over
        _head_buffered = 0  # bytes received while the head stayed incomplete

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.logger = protocol_log
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections and not self._evict_one():
                notices.warning("refused", f"connection refused: all {limits.max_connections} connections busy")
                transport.abort()
                return
            waiting[self] = None
            self.arm_deadline(limits.header_timeout)

        def _evict_one(self) -> bool:
            if not waiting:
                return False
            victim, _ = waiting.popitem(last=False)
            victim.cancel_deadline()
            victim.transport.abort()
            notices.warning("evicted", f"connection cap of {limits.max_connections} reached: closed the oldest "
                                       "connection that was not being answered")
            return True

        def data_received(self, data: bytes) -> None:
            head_open = self._phase in (Phase.IDLE, Phase.HEAD)
            super().data_received(data)
            phase = self._phase
            if self.transport.is_closing():
                self.cancel_deadline()
                waiting.pop(self, None)
            elif phase is Phase.ANSWERING:
                self.cancel_deadline()  # a whole request: the app is answering it
                waiting.pop(self, None)
            elif phase is Phase.BODY:
                self.cancel_deadline()
                self.arm_deadline(limits.body_idle_timeout)  # a body may trickle, but not stop
            else:
                if head_open:  # still no complete head: what the parser holds may not grow without bound
                    self._head_buffered += len(data)
                    if self._head_buffered > MAX_INCOMPLETE_EVENT:
                        self._refuse_head()
                        return
                self.arm_deadline(limits.header_timeout)  # no-op if armed; else the first bytes after a pause

        def _refuse_head(self) -> None:
            note_head_refused()
            self.cancel_deadline()
            waiting.pop(self, None)
            self.send_400_response("Request header fields too large.")

        # parser callbacks (httptools calls them from inside feed_data, so they run before data_received's checks)
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = Phase.HEAD
            self._head_parsed = 0

        def on_url(self, url: bytes) -> None:
            self._count_head(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_head(len(name) + len(value) + 4)
            super().on_header(name, value)

        def _count_head(self, size: int) -> None:
            self._head_parsed += size
            if self._head_parsed > MAX_INCOMPLETE_EVENT:
                note_head_refused()
                raise HeadTooLarge

        def on_headers_complete(self) -> None:
            self._phase = Phase.BODY
            self._head_buffered = 0
            lane = getattr(app, "scan_lane", None)  # built with the app's stack, on its first request
            if lane is not None and (self.cycle is None or self.cycle.response_complete) and lane.take(self):
                return
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._phase = Phase.ANSWERING
            super().on_message_complete()

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)  # a queued request starts now: the phase already describes it
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self._phase is Phase.ANSWERING and not pipelined:
                self._phase = Phase.IDLE
            if self._phase is not Phase.ANSWERING:
                waiting[self] = None  # idle (keep-alive) or still sending: may make room for a newcomer

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_deadline()
            waiting.pop(self, None)
            super().connection_lost(exc)

        def arm_deadline(self, seconds: float) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(seconds, self._incomplete)

        def cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _incomplete(self) -> None:
            self._deadline = None
            if not self.transport.is_closing() and self._phase is not Phase.ANSWERING:
                notices.warning("timeout", "closed connections whose request did not arrive in time")
                waiting.pop(self, None)
                self.transport.close()

    return GuardedHttpTools


def resource_error_handler(notices: OncePerInterval) -> Any:
    """An event-loop exception handler: running out of descriptors is one line per interval, no traceback."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            notices.warning(f"errno-{exc.errno}", f"cannot accept connections: {exc.strerror} (retrying)")
            return
        loop.default_exception_handler(context)

    return handle


def run(app: Any, settings: Settings) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (uvicorn re-raises the signal after the graceful stop)."""
    # no log line shows the thread or process: skip looking them up for every record
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    open_files = raise_open_files_limit()
    notices = OncePerInterval(log)
    limits = Limits(max_connections=connection_cap(open_files))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, workers=1, loop="asyncio",
        http=guarded_protocol(limits, notices, app), proxy_headers=False, server_header=False, access_log=False,
        log_config=logging_config(settings.log_format), log_level="info",
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT, timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    log.info("open files limit %d, at most %d connections", open_files, limits.max_connections)

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(resource_error_handler(notices))
        await server.serve()

    asyncio.run(serve())
