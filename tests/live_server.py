"""The real ``contactcard serve`` in a subprocess on a free 127.0.0.1 port, for tests that need the real server."""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.processes import free_port, stop, wait_answering
from contactcard.config import load_secret
from contactcard.models import EmployeeProfile
from contactcard.service import Service
from contactcard.store import Store

ROOT = Path(__file__).resolve().parent.parent


def seed_card(db: Path, secret: Path) -> str:
    """A new database with one employee, a phone channel and a live card; returns the card's path."""

    async def seed() -> str:
        store = await Store.open(db)
        try:
            service = Service(store, secret=load_secret(secret), base_url="http://127.0.0.1")
            await service.add_employee(
                EmployeeProfile(email="taro@example.co.jp", family_name="山田", given_name="太郎"), actor="test")
            await service.add_channel("taro@example.co.jp", "phone", "tel:03-1234-5679", actor="test")
            return "/c/" + (await service.issue_card("taro@example.co.jp", actor="test")).token
        finally:
            await store.close()

    return asyncio.run(seed())


class LiveServer:
    """``env`` adds to (and may override) the listening address and base URL set here."""

    def __init__(self, env: Mapping[str, str], log: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CONTACTCARD_BASE_URL": self.base, "CONTACTCARD_HOST": "127.0.0.1",
                    "CONTACTCARD_PORT": str(self.port), **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        """Run a ``contactcard`` command against the same database; fails the test on a non-zero exit."""
        result = subprocess.run([sys.executable, "-m", "contactcard.cli", *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, ready_path: str = "/healthz", *, args: tuple[str, ...] = (),
              preexec_fn: Callable[[], None] | None = None) -> float:
        """Start the server (``serve`` with ``args``); seconds until ``ready_path`` answered 200."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "contactcard.cli", "serve", *args], env=self.env,
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        return self.wait_ready(ready_path)

    def wait_ready(self, path: str = "/healthz", timeout: float = 20.0) -> float:
        """Seconds until ``path`` answers 200."""
        assert self.proc is not None

        def answers() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", path, headers={"User-Agent": "readiness-probe"})
                return conn.getresponse().status == 200
            except OSError:
                return False
            finally:
                conn.close()

        return wait_answering(self.proc, answers, self.log, "the server", timeout)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


class ScanLoad:
    """Client threads sending scans of ``path`` to a live server, each scan with a unique user agent
    (``label/client-n``), until stopped or the server is gone. ``answered`` lists the user agents answered 2xx.

    A connection the server closes is replaced by a new one; a refused connection ends the thread, since an
    answer that never arrived promises nothing. ``wait_answered`` waits for a number of answers rather than a
    fixed time, so a slow, loaded machine gets the same load as a fast one, only later.
    """

    def __init__(self, port: int, path: str, *, clients: int, label: str) -> None:
        self.port, self.path, self.label = port, path, label
        self.answered: list[str] = []
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def wait_answered(self, count: int, timeout: float = 120.0) -> bool:
        """True once more than ``count`` scans were answered; False if ``timeout`` seconds pass first."""
        with self._progress:
            return self._progress.wait_for(lambda: len(self.answered) > count, timeout)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _client(self, number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        n = 0
        try:
            while not self._stop.is_set():
                user_agent = f"{self.label}/{number}-{n}"
                n += 1
                try:
                    conn.request("GET", self.path, headers={"User-Agent": user_agent})
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()  # closed by a stop or a kill: try again on a new connection until refused
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    try:
                        conn.connect()
                    except OSError:
                        return
                    continue
                if 200 <= response.status < 300:
                    with self._progress:
                        self.answered.append(user_agent)
                        self._progress.notify_all()
        finally:
            conn.close()
