"""How ``contactcard serve`` runs uvicorn so that one client cannot take the server down, and stops gracefully.

- **Open files.** The soft ``RLIMIT_NOFILE`` is raised to the hard limit at start (a service manager often leaves
  it at 1,024), and connections are capped below it, so accepting never fails for lack of descriptors.
- **Connection cap.** At the cap a new connection takes the place of the oldest connection that is not being
  answered (still sending its request, or idle between keep-alive requests); only when every connection is busy
  is the newcomer closed. A flood of stalled connections therefore evicts itself, and a scan still gets in.
- **Incomplete requests.** Headers must arrive within ``HEADER_TIMEOUT`` of the first byte (or of the
  connection), and a body may not pause for longer than ``BODY_IDLE_TIMEOUT``; otherwise the connection is
  closed. uvicorn's h11 protocol has no such timeouts, so they are added in a subclass of it.
- **Quiet under attack.** Resource errors (``EMFILE``, evictions, time-outs) are logged once per interval with a
  count, never once per attempt with a traceback.
- **Graceful stop.** On SIGTERM uvicorn stops accepting, lets accepted requests finish (at most
  ``GRACEFUL_TIMEOUT``), then the app's shutdown commits every queued scan event; the process is gone in < 10 s.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Settings
from .logs import OncePerInterval, logging_config

log = logging.getLogger("contactcard.serving")

RESERVED_FDS = 128  # descriptors kept free for the database, its WAL, the listening socket, logs, temp files
MAX_CONNECTIONS = 4096  # a single worker answers ~7,000 scans/s; more open connections only cost memory
HEADER_TIMEOUT = 10.0
BODY_IDLE_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
GRACEFUL_TIMEOUT = 6
MAX_INCOMPLETE_EVENT = 16 * 1024  # request line plus headers, as h11's default, stated here on purpose
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


def guarded_protocol(limits: Limits, notices: OncePerInterval) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the connection cap and the incomplete-request time-outs (see the module doc)."""
    waiting: OrderedDict[GuardedH11, None] = OrderedDict()  # evictable connections, oldest first

    class GuardedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
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
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.DONE or state is h11.MUST_CLOSE or self.transport.is_closing():
                self.cancel_deadline()  # a whole request: the app is answering it
                waiting.pop(self, None)
            elif state is h11.SEND_BODY:
                self.cancel_deadline()
                self.arm_deadline(limits.body_idle_timeout)  # a body may trickle, but not stop
            elif self._deadline is None:
                self.arm_deadline(limits.header_timeout)  # the first bytes of a request after a keep-alive pause

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is not h11.DONE:
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
            if not self.transport.is_closing() and self.conn.their_state is not h11.DONE:
                notices.warning("timeout", "closed connections whose request did not arrive in time")
                waiting.pop(self, None)
                self.transport.close()

    return GuardedH11


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
        http=guarded_protocol(limits, notices), proxy_headers=False, server_header=False, access_log=False,
        log_config=logging_config(settings.log_format), log_level="info",
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT, timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
        h11_max_incomplete_event_size=MAX_INCOMPLETE_EVENT, backlog=2048,
    )
    server = uvicorn.Server(config)
    log.info("open files limit %d, at most %d connections", open_files, limits.max_connections)

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(resource_error_handler(notices))
        await server.serve()

    asyncio.run(serve())
