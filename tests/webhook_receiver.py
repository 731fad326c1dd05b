"""A real webhook receiver on 127.0.0.1 (``http.server`` in a thread), for the webhook tests.

It records every POST (path, headers, body) and answers with the status ``answer(path, count)`` picks (200 by
default), after ``delay`` seconds (a CRM that takes its time to answer). ``hold`` makes the next POST wait (the
test can kill the sender meanwhile) until ``release``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)

    def verified(self, secret: str) -> Any:
        """The payload, once ``standardwebhooks`` (the reference library) has checked its signature."""
        return Webhook(secret).verify(self.body, self.headers)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a sender killed mid-request (the SIGKILL test) leaves a broken pipe: expected, not news


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: Callable[[str, int], int] = lambda path, count: 200
        self.delay = 0.0
        self._changed = threading.Condition()
        self._hold_next = False
        self._gate = threading.Event()
        self.holding = threading.Event()  # set while a POST is held
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver._hold_next:
                    receiver._hold_next = False
                    receiver.holding.set()
                    receiver._gate.wait(30)
                with receiver._changed:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body))
                    count = sum(1 for r in receiver.received if r.path == self.path)
                    receiver._changed.notify_all()
                status = receiver.answer(self.path, count)
                if receiver.delay:
                    time.sleep(receiver.delay)  # the receiver's own pace, not a test waiting for something
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._changed:
            self.received.clear()
        self.answer = lambda path, count: 200
        self.delay = 0.0

    def on(self, path: str) -> list[Received]:
        with self._changed:
            return [r for r in self.received if r.path == path]

    def hold(self) -> None:
        """Hold the next POST (not answered) until ``release``."""
        self.holding.clear()
        self._gate.clear()
        self._hold_next = True

    def release(self) -> None:
        self._hold_next = False
        self._gate.set()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 60.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self.received)), timeout)
