"""The real ``contactcard serve`` in a subprocess on a free 127.0.0.1 port, for tests that need the real server."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            assert self.proc.poll() is None, "the server exited: " + self.log.read_text(errors="replace")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", path, headers={"User-Agent": "readiness-probe"})
                if conn.getresponse().status == 200:
                    return time.monotonic() - start
            except OSError:
                time.sleep(0.05)
            finally:
                conn.close()
        raise AssertionError("the server did not answer: " + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
