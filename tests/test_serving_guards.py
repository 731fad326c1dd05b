"""The connection guards of ``contactcard.serving`` on uvicorn's httptools protocol, one connection at a time.

The slow tests (test_serving_limits, test_crash) prove the guards against a real server under a flood; these
drive the protocol class directly with an in-memory transport, so each rule is checked on its own and a deadline
is fired by calling its timer handle, not by waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from contactcard.logs import OncePerInterval
from contactcard.serving import MAX_INCOMPLETE_EVENT, Limits, guarded_protocol

HEADER_TIMEOUT, BODY_IDLE_TIMEOUT = 7.0, 3.0


class MemoryTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Notes(OncePerInterval):
    """Every notice the guards give, as well as logging it once per interval."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self.seen: list[str] = []

    def warning(self, key: str, message: str) -> bool:
        self.seen.append(message)
        return super().warning(key, message)


class Guarded:
    """A protocol factory as uvicorn's server would use it, with an app whose answers the test releases."""

    def __init__(self, max_connections: int = 8) -> None:
        self.release = asyncio.Event()
        notices = Notes(logging.getLogger("test.serving.guards"))
        self.notices = notices.seen
        self.cls = guarded_protocol(Limits(max_connections, HEADER_TIMEOUT, BODY_IDLE_TIMEOUT), notices)
        self.config = uvicorn.Config(self.app, http=self.cls, interface="asgi3", proxy_headers=False,
                                     log_level="warning")
        self.config.load()
        self.state = ServerState()

    async def app(self, scope: Any, receive: Callable[[], Awaitable[Any]],
                  send: Callable[[Any], Awaitable[None]]) -> None:
        while (await receive()).get("more_body"):
            pass
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def connect(self) -> tuple[Any, MemoryTransport]:
        protocol = self.cls(config=self.config, server_state=self.state, app_state={})
        transport = MemoryTransport()
        protocol.connection_made(transport)
        return protocol, transport


def deadline_in(protocol: Any) -> float:
    handle: asyncio.TimerHandle = protocol._deadline
    assert handle is not None, "a deadline is armed"
    return round(handle.when() - asyncio.get_running_loop().time(), 1)


def fire_deadline(protocol: Any) -> None:
    handle: asyncio.TimerHandle = protocol._deadline
    callback, args = handle._callback, handle._args  # type: ignore[attr-defined]
    handle.cancel()  # fired here, as the loop would at its time
    callback(*args)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


GET = b"GET /c/x HTTP/1.1\r\nHost: a\r\n\r\n"


def test_headers_that_do_not_arrive_in_time_close_the_connection() -> None:
    async def scenario() -> None:
        guarded = Guarded()
        protocol, transport = guarded.connect()
        assert deadline_in(protocol) == HEADER_TIMEOUT  # from the connection, before any byte
        protocol.data_received(b"GET /c/x HTTP/1.1\r\nHost: a\r\n")
        fire_deadline(protocol)
        assert transport.closed
        assert guarded.notices == ["closed connections whose request did not arrive in time"]

    asyncio.run(scenario())


def test_a_body_may_trickle_but_not_stop() -> None:
    async def scenario() -> None:
        guarded = Guarded()
        protocol, transport = guarded.connect()
        protocol.data_received(b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        assert deadline_in(protocol) == BODY_IDLE_TIMEOUT
        first = protocol._deadline
        protocol.data_received(b"cd")
        assert protocol._deadline is not first, "each piece of body restarts the idle time-out"
        fire_deadline(protocol)
        assert transport.closed

    asyncio.run(scenario())


def test_a_request_being_answered_has_no_deadline_and_is_never_evicted() -> None:
    async def scenario() -> None:
        guarded = Guarded(max_connections=1)
        answering, answering_transport = guarded.connect()
        answering.data_received(GET)
        assert answering._deadline is None
        await settle()
        newcomer, newcomer_transport = guarded.connect()
        assert newcomer_transport.aborted, "every connection is busy: the newcomer is refused"
        assert not answering_transport.closed
        newcomer.connection_lost(None)

        guarded.release.set()
        await settle()
        assert answering_transport.written.startswith(b"HTTP/1.1 200 OK")
        assert not answering_transport.closed, "kept alive"
        _, third_transport = guarded.connect()
        assert answering_transport.aborted, "idle between requests: it makes room for the newcomer"
        assert not third_transport.closed
        assert any("connection cap of 1 reached" in n for n in guarded.notices)

    asyncio.run(scenario())


def test_a_stalled_connection_is_evicted_oldest_first() -> None:
    async def scenario() -> None:
        guarded = Guarded(max_connections=2)
        (_, oldest), (_, newer) = guarded.connect(), guarded.connect()
        _, newcomer = guarded.connect()
        assert oldest.aborted and not newer.closed and not newcomer.closed

    asyncio.run(scenario())


@pytest.mark.parametrize("pieces", [1, 40], ids=["in one piece", "trickled"])
def test_request_line_and_headers_over_the_cap_are_refused(pieces: int) -> None:
    async def scenario() -> None:
        guarded = Guarded()
        protocol, transport = guarded.connect()
        head = b"GET /c/x HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 500)
                                                             for i in range(40)) + b"\r\n"
        assert len(head) > MAX_INCOMPLETE_EVENT
        size = len(head) // pieces + 1
        for start in range(0, len(head), size):
            if transport.closed:
                break
            protocol.data_received(head[start:start + size])
        assert transport.written.startswith(b"HTTP/1.1 400 ")
        assert transport.closed
        await settle()
        assert not guarded.release.is_set() and protocol.cycle is None, "the app never saw the request"

    asyncio.run(scenario())


def test_a_head_just_under_the_cap_is_answered() -> None:
    async def scenario() -> None:
        guarded = Guarded()
        protocol, transport = guarded.connect()
        guarded.release.set()
        protocol.data_received(b"GET /c/x HTTP/1.1\r\nHost: a\r\nUser-Agent: " + b"u" * 15_000 + b"\r\n\r\n")
        await settle()
        assert transport.written.startswith(b"HTTP/1.1 200 OK")

    asyncio.run(scenario())


def test_a_flood_of_malformed_requests_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        guarded = Guarded(max_connections=200)
        for _ in range(100):
            protocol, transport = guarded.connect()
            protocol.data_received(b"NOT HTTP AT ALL\r\n\r\n")
            assert transport.written.startswith(b"HTTP/1.1 400 "), "each is still answered"
            protocol.connection_lost(None)

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    invalid = [r for r in caplog.records if "Invalid HTTP request" in r.getMessage()]
    assert len(invalid) == 1, [r.getMessage() for r in invalid]
    assert invalid[0].name == "test.serving.guards", "given by the notices, not by uvicorn per request"
