"""Finding 3's defence in depth: whatever reaches a log record is printed without addresses or tokens."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from contactcard.logs import JsonFormatter, LoopBatchedStreamHandler, OncePerInterval, TextFormatter, redact
from contactcard.web.routes_info import card_digest

TOKEN = "_17EdYqLbrv6ZMWbLW-d"
INVITE = "EKf4p-thr70iD27abasKNUtRmpKUboySbeRpsrOsP6k"


@pytest.mark.parametrize(("text", "gone"), [
    (f'127.0.0.77:37861 - "GET /c/{TOKEN} HTTP/1.1" 200 OK', ["127.0.0.77", TOKEN]),
    (f"GET /invite/{INVITE}?x=1", [INVITE]),
    (f"GET /c/{TOKEN}/go/3 from [2001:db8::7]:5000 and ::ffff:10.0.0.1", [TOKEN, "2001:db8::7", "10.0.0.1"]),
    (f"Cookie: __Host-cc_session={INVITE}; cc_csrf=abc", [INVITE, "=abc"]),
    (f"form csrf={INVITE}&password=hunter2hunter2", [INVITE, "hunter2"]),
    (f"KeyError: '{INVITE}'", [INVITE]),
    (f"lookup of {TOKEN} failed", [TOKEN]),
])
def test_redaction_removes_addresses_and_tokens(text: str, gone: list[str]) -> None:
    redacted = redact(text)
    for secret in gone:
        assert secret not in redacted


@pytest.mark.parametrize("text", [
    "at 09:01:43 the server started", "ConnectionResetError in build_middleware_stack",
    "h11_max_incomplete_event_size", "starlette.requests.ClientDisconnect",
    'File "/usr/lib/python3.11/asyncio/selector_events.py", line 165, in _accept_connection',
])
def test_redaction_keeps_ordinary_text(text: str) -> None:
    assert redact(text) == text


def _record(msg: str, *args: object, exc: bool = False, name: str = "uvicorn.error",
            **extra: object) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_tracebacks_are_redacted_in_both_formats() -> None:
    try:
        raise KeyError(f"/c/{TOKEN} from 192.0.2.44")
    except KeyError:
        record = _record("Exception in ASGI application %s", f"/invite/{INVITE}", exc=True)
    for formatter in (TextFormatter(), JsonFormatter()):
        record.exc_text = None
        line = formatter.format(record)
        assert "Traceback" in line and "KeyError" in line
        for secret in (TOKEN, INVITE, "192.0.2.44"):
            assert secret not in line
    assert json.loads(JsonFormatter().format(record))["level"] == "ERROR"


def test_access_line_text_and_json() -> None:
    fields = {"method": "GET", "route": "/c/{token}", "status": 200, "ms": 1.5, "card": "1da3b2f7",
              "visitor": "8976d611"}
    text = TextFormatter().format(_record("access", name="contactcard.access", access=fields))
    assert text.endswith(" contactcard.access GET /c/{token} 200 1.5ms card=1da3b2f7 visitor=8976d611")
    entry = json.loads(JsonFormatter().format(_record("access", access=fields)))
    assert {k: entry[k] for k in fields} == fields


def test_card_digest_is_short_and_one_way() -> None:
    import hashlib

    digest = card_digest({"path": f"/c/{TOKEN}/vcard"}, "/c/{token}/vcard")
    assert digest == hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert card_digest({"path": f"/invite/{INVITE}"}, "/invite/{token}") is None


def test_a_flood_of_one_condition_is_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    notices = OncePerInterval(logging.getLogger("test.notices"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.notices"):
        logged = []
        for i in range(12_000):
            now[0] = i / 1000  # 12,000 attempts in 12 s
            logged.append(notices.warning("emfile", "cannot accept connections: Too many open files"))
    assert sum(logged) == 2
    assert len(caplog.records) == 2
    assert "9999 more in the last 10 s" in caplog.records[1].getMessage()


def test_route_template_is_matched_once_per_request() -> None:
    from starlette.routing import Route, Router

    from contactcard.web.routes_info import route_template

    class App:
        router = Router(routes=[Route("/c/{token}", lambda r: None), Route("/invite/{token}", lambda r: None)])

    scope = {"type": "http", "method": "GET", "path": f"/invite/{INVITE}", "root_path": "", "app": App()}
    assert route_template(scope) == "/invite/{token}"
    App.router.routes.clear()
    assert route_template(scope) == "/invite/{token}", "the second caller gets the remembered template"
    assert route_template({**scope, "path": "/elsewhere", "contactcard.route_template": None}) == "(no route)"


def test_lines_of_one_loop_turn_go_out_in_one_write_in_order() -> None:
    """The server's handler: lines logged during a turn of the event loop are written together on the next
    step, before the loop waits for anything; a line from another thread first writes what was buffered."""
    import asyncio
    import io
    import threading

    class Writes(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    out = Writes()
    handler = LoopBatchedStreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.batched")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("outside a loop: at once")
        assert out.writes == ["outside a loop: at once\n"]

        async def turn() -> list[str]:
            for i in range(3):
                logger.warning("request %d", i)
            written_during_turn = list(out.writes)
            thread = threading.Thread(target=logger.warning, args=("from a thread",))
            thread.start()
            thread.join()
            logger.warning("request 3")
            await asyncio.sleep(0)  # the loop's next step: the buffered line goes out
            assert out.getvalue().endswith("request 3\n")
            return written_during_turn

        assert asyncio.run(turn()) == ["outside a loop: at once\n"], "nothing written during the turn itself"
        assert out.getvalue().splitlines() == ["outside a loop: at once", "request 0", "request 1", "request 2",
                                               "from a thread", "request 3"]
        assert out.writes[1:] == ["request 0\nrequest 1\nrequest 2\nfrom a thread\n", "request 3\n"], "few writes"
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("formatter_class", [TextFormatter, JsonFormatter])
def test_access_lines_written_without_a_record_are_the_formatters_lines(
        formatter_class: type[TextFormatter | JsonFormatter], monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's access line skips the LogRecord when its one handler is ours (``direct_access_handler``):
    byte for byte the line the formatter prints for the record, whatever the millisecond; and any other handler
    (here a filter) sees the ordinary record."""
    import io
    import time

    from contactcard.logs import ACCESS_LOGGER, direct_access_handler
    from contactcard.web.accesslog import AccessLog, note_visitor
    from contactcard.web.routes_info import note_route

    scope: dict[str, object] = {"type": "http", "method": "GET", "path": f"/c/{TOKEN}", "state": {}}
    note_route(scope, "/c/{token}")
    note_visitor(scope, "8976d611aabbccdd")
    logger = logging.getLogger(ACCESS_LOGGER)
    out = io.StringIO()
    handler = LoopBatchedStreamHandler(out)
    handler.setFormatter(formatter_class())
    monkeypatch.setattr(logger, "propagate", False)  # pytest's capture handlers sit on the root logger
    logger.addHandler(handler)
    try:
        assert direct_access_handler(logger) is handler
        lines = []
        for created in (1764410400.0, 1764410400.0005, 1764410400.123456, 1764410400.9994, 1764410400.9999999):
            monkeypatch.setattr(time, "time", lambda created=created: created)
            monkeypatch.setattr(time, "time_ns", lambda created=created: int(created * 1e9))
            AccessLog._log(scope, 200, 0.00125)
            direct = out.getvalue()
            handler.addFilter(lambda record: True)  # another party sees records: the ordinary path
            assert direct_access_handler(logger) is None
            AccessLog._log(scope, 200, 0.00125)
            handler.filters.clear()
            direct_line, record_line = out.getvalue()[len(direct):].splitlines()[0], direct.splitlines()[-1]
            assert direct_line == record_line
            lines.append(direct_line)
            out.seek(0)
            out.truncate()
        monkeypatch.undo()
        assert TOKEN not in "".join(lines)
        stamps = [line.split(" ")[0] if formatter_class is TextFormatter else json.loads(line)["time"]
                  for line in lines]
        assert stamps == ["2025-11-29T10:00:00.000Z", "2025-11-29T10:00:00.000Z", "2025-11-29T10:00:00.123Z",
                          "2025-11-29T10:00:00.999Z", "2025-11-29T10:00:01.000Z"]  # the float rounds up
    finally:
        logger.removeHandler(handler)


def test_a_line_left_buffered_by_a_stopped_loop_goes_out_with_the_next_line() -> None:
    """A line logged in a loop's last step waits for a flush that loop will never run; the next line from the
    same thread, outside any loop, writes both at once, in order."""
    import asyncio
    import io

    out = io.StringIO()
    handler = LoopBatchedStreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.batched.stopped")
    logger.propagate = False
    logger.addHandler(handler)
    loop = asyncio.new_event_loop()
    try:
        def last_step() -> None:
            loop.stop()
            logger.warning("in the last step")

        loop.call_soon(last_step)
        loop.run_forever()
        assert out.getvalue() == "", "buffered for the loop's next step, which never comes"
        logger.warning("after the loop")
        assert out.getvalue() == "in the last step\nafter the loop\n"
    finally:
        loop.close()
        logger.removeHandler(handler)
