"""What the server writes to its log, and what it never writes: no client address, no token of any kind.

Every record goes through one formatter (text or JSON lines). Our own access line (``web.accesslog``) is built
from safe fields only: method, route template, status, duration, a short card digest, a visitor key prefix.
Anything else (uvicorn's and asyncio's messages, exception tracebacks) is redacted as defence in depth: IP
addresses, the path segment after ``/c/``, ``/invite/``, ``/me/qr/``, cookie and form values named like
sessions or tokens, and any long random-looking string.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

ACCESS_LOGGER = "contactcard.access"
REDACTED = "<redacted>"
IP_REDACTED = "<ip>"

_SECRET_PATH = re.compile(r"(/(?:c|invite|reset|me/qr)/)[^\s/?#\"'<>]+")
_SECRET_VALUE = re.compile(r"((?:__Host-)?(?:cc_session|cc_csrf|csrf|csrf_token|session|token|password)[\"']?\s*[=:]\s*"
                           r"[\"']?)[^\s;&,\"'<>)]+", re.IGNORECASE)
_IPV6_CANDIDATE = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}"
                             r"(?:%[\w.]+)?(?![\w:])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w])")
_TOKENISH = re.compile(r"[A-Za-z0-9_-]{16,}")


def _char_class(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3


def _looks_random(word: str) -> bool:
    """Random base64url changes character class (lower, upper, digit, -/_) at ~2 of 3 positions; words rarely.

    ``ConnectionResetError`` has 5 changes in 20 characters, ``build_middleware_stack`` 4; a 20-character token
    has about 12 (fewer than 7 with a probability of about 0.3%, and the path rules above catch those in URLs).
    """
    changes = sum(1 for a, b in itertools.pairwise(word) if _char_class(a) != _char_class(b))
    return changes * 3 >= len(word)


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text  # a clock time (09:01:43) or other colon-separated text
    return IP_REDACTED


def redact(text: str) -> str:
    """``text`` with IP addresses, tokens in paths, secret-named values and random-looking strings removed."""
    text = _SECRET_PATH.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SECRET_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _IPV6_CANDIDATE.sub(_ipv6, text)
    text = _IPV4.sub(IP_REDACTED, text)
    return _TOKENISH.sub(lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text)


# The last whole second formatted and its text (one tuple, so a reader on another thread never mixes two):
# strftime once a second, not once per line.
_last_second: list[tuple[int, str]] = [(-1, "")]


def _timestamp(record: logging.LogRecord) -> str:
    return _timestamp_at(record.created)


def _timestamp_at(created: float) -> str:
    """``created`` (``time.time()``) as a record created then shows it (its ``msecs`` are computed the same way)."""
    second = int(created)
    cached = _last_second[0]
    if cached[0] != second:
        cached = _last_second[0] = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((created - second) * 1000):03d}Z"


def _access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    fields = getattr(record, "access", None)
    return fields if isinstance(fields, dict) else None


def _message(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """The message with its traceback, redacted."""
    text = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        text += "\n" + record.exc_text
    if record.stack_info:
        text += "\n" + formatter.formatStack(record.stack_info)
    return redact(text)


def access_text(fields: dict[str, Any]) -> str:
    line = f"{fields['method']} {fields['route']} {fields['status']} {fields['ms']}ms"
    if fields.get("card"):
        line += f" card={fields['card']}"
    if fields.get("visitor"):
        line += f" visitor={fields['visitor']}"
    return line


class TextFormatter(logging.Formatter):
    """``2026-11-29T09:00:00.123Z INFO contactcard.access GET /c/{token} 200 1.2ms card=… visitor=…``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _access_fields(record)
        body = access_text(fields) if fields is not None else _message(record, self)
        return f"{_timestamp(record)} {record.levelname} {record.name} {body}"

    def access_line(self, fields: dict[str, Any], created: float) -> str:
        """What ``format`` makes of an INFO record of the access logger created at ``created`` with ``fields``."""
        return f"{_timestamp_at(created)} INFO {ACCESS_LOGGER} {access_text(fields)}"


# One encoder, not one built per line by json.dumps(..., separators=...): the same text.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, then the access fields or ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname, "logger": record.name}
        fields = _access_fields(record)
        if fields is not None:
            entry.update(fields)
        else:
            entry["message"] = _message(record, self)
        return _JSON.encode(entry)

    def access_line(self, fields: dict[str, Any], created: float) -> str:
        """What ``format`` makes of an INFO record of the access logger created at ``created`` with ``fields``."""
        return _JSON.encode({"time": _timestamp_at(created), "level": "INFO", "logger": ACCESS_LOGGER, **fields})


class LoopBatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes the lines emitted during one turn of the event loop with one write.

    Under load one turn answers dozens of requests, each with its access line: one write and flush per line
    was a system call per request. Inside a running loop a line is buffered and the first of a turn schedules
    the write for the loop's very next step (``call_soon``): it is on its way within microseconds, before the
    loop waits for anything. Outside a loop (another thread, start-up, shutdown) the buffer is written first,
    then the line, so the order is kept; ``flush`` (at exit too: ``logging.shutdown``) writes what is left.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._buffer: list[str] = []
        # The thread and loop the scheduled flush will run on: a line from that thread while the loop runs joins
        # the buffer without looking the running loop up again (asyncio.get_running_loop makes a getpid system
        # call each time, once per request here).
        self._flush_due: tuple[int, asyncio.AbstractEventLoop] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Write one formatted line (buffered in a running loop, see above); the caller holds the handler's lock."""
        line += self.terminator
        due = self._flush_due
        if due is not None and due[0] == threading.get_ident() and due[1].is_running():
            self._buffer.append(line)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and not loop.is_closed():
            if not self._buffer:
                loop.call_soon(self.flush)
                self._flush_due = (threading.get_ident(), loop)
            self._buffer.append(line)
            return
        self._buffer.append(line)
        self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            self._flush_due = None
            if self._buffer:
                text, self._buffer = "".join(self._buffer), []
                self.stream.write(text)
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()
        finally:
            self.release()


def direct_access_handler(logger: logging.Logger) -> LoopBatchedStreamHandler | None:
    """The handler an INFO record of ``logger`` (the access logger) would reach, when nothing else could see,
    change or drop it on the way: the server's one handler, with our formatter, no filter, no other handler.
    Then the access line can be formatted from its fields and written to it without building a ``LogRecord``
    (``TextFormatter.access_line``: the same text). None otherwise (a test's capture handler, another config)."""
    if logger.disabled or logger.filters:
        return None
    found: LoopBatchedStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (found is not None or type(handler) is not LoopBatchedStreamHandler or handler.filters
                    or handler.level > logging.INFO
                    or type(handler.formatter) not in (TextFormatter, JsonFormatter)):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


def logging_config(log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: every logger (ours, uvicorn's, asyncio's) through one
    redacting formatter on stderr. uvicorn's own access log is off; ``web.accesslog`` replaces it."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"contactcard": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"stderr": {"class": f"{__name__}.{LoopBatchedStreamHandler.__name__}",
                                "formatter": "contactcard", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }


class OncePerInterval:
    """Log a recurring condition once per interval with a count, not once per occurrence (a flood stays small)."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``interval`` ago; True when it was logged."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        more = self._suppressed.pop(key, 0)
        if more:
            message += f" ({more} more in the last {now - last:.0f} s)" if last is not None else ""
        self.logger.warning(message)
        return True
