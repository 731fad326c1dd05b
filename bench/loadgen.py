"""A bounded keep-alive HTTP/1.1 load generator on raw asyncio sockets (127.0.0.1 only).

Used when wrk is missing, and for exact accounting: ``count`` mode sends exactly N requests and waits for
every answer, so the 2xx answers can be compared one for one with the events committed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    sent: int = 0
    ok: int = 0  # 2xx answers
    other: int = 0  # non-2xx answers
    errors: int = 0  # connection failures
    duration: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return (self.ok + self.other) / self.duration if self.duration else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _one_connection(port: int, request: bytes, result: Result, deadline: float, budget: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        result.errors += 1
        return
    try:
        while time.perf_counter() < deadline:
            if budget[0] <= 0:
                break
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            result.sent += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - start)
            if 200 <= status < 300:
                result.ok += 1
            else:
                result.other += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.errors += 1
    finally:
        writer.close()


async def run(port: int, path: str, connections: int, seconds: float, count: int | None = None,
              user_agent: str = "bench") -> Result:
    """Drive ``connections`` keep-alive connections for ``seconds`` (or until ``count`` requests are answered)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {user_agent}\r\n"
               "Accept-Language: ja\r\n\r\n").encode()
    result = Result()
    budget = [count if count is not None else 1 << 62]
    start = time.perf_counter()
    await asyncio.gather(*(_one_connection(port, request, result, start + seconds, budget)
                           for _ in range(connections)))
    result.duration = time.perf_counter() - start
    return result
