"""Servers the benches and the live tests start as child processes: a free port, waiting until one answers,
stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_answering(proc: subprocess.Popen[bytes], answers: Callable[[], bool], log: Path, what: str,
                   timeout: float) -> float:
    """Seconds until ``answers()`` is true (it returns False while the server cannot be reached yet).

    Fails with the server's ``log`` if the process exits first or ``timeout`` seconds pass."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: " + log.read_text(errors="replace"))
        if answers():
            return time.monotonic() - start
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer: " + log.read_text(errors="replace"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not exited 10 s later; nothing if it has exited already."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
