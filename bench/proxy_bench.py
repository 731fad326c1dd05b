"""The scan path through Caddy vs direct: ``python -m bench.proxy_bench`` (about 1 minute, 127.0.0.1 only, needs
Debian's ``caddy`` and ``wrk``).

Starts the real ``contactcard serve`` (its access log on, to a file) behind Caddy with ``tls internal``, and
drives ``GET /c/{token}`` with ``wrk -t1`` at 64 connections: direct over http, and through Caddy over https,
interleaved in short pairs so that other load on the machine hits both alike, and reports each process's CPU
time per answered request (steadier than requests/s on a shared machine). Then the same for the serving
layers alone: ``contactcard serve`` (guarded protocol, access log) against the app on plain uvicorn with no log
(``bench.serve``). Options: ``--seconds N`` per run (default 5), ``--pairs N`` (default 3).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

from .caddy import Caddy
from .processes import free_port
from .scan_bench import ROOT, WRK_SCRIPT, Run, Server, count_events, drive, seed

CONNECTIONS = 64


class Serve:
    """``contactcard serve`` as operators run it, its log to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "contactcard.cli", "serve", "--port", str(self.port)],
                                         cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while b"Application startup complete" not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("serve did not start: " + log.read_text(errors="replace"))
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: per request, a measure that other load on the machine
    disturbs far less than requests per second."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU µs per answered request, per process, summed over runs."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.seconds = dict.fromkeys(pids, 0.0)
        self.requests = 0

    def run(self, go: Callable[[], Run]) -> Run:
        before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        result = go()
        for name, pid in self.pids.items():
            self.seconds[name] += cpu_seconds(pid) - before[name]
        self.requests += result.ok
        return result

    def per_request(self) -> str:
        return ", ".join(f"{name} {self.seconds[name] / max(self.requests, 1) * 1e6:.0f} µs"
                         for name in self.pids)


def _row(label: str, runs: list[Run]) -> str:
    return (f"{label:<28} {median(r.rps for r in runs):>8.0f} rps  p50 {median(r.p50_ms for r in runs):>5.1f} ms  "
            f"p99 {median(r.p99_ms for r in runs):>5.1f} ms  (runs: {', '.join(f'{r.rps:.0f}' for r in runs)}; "
            f"errors {sum(r.bad for r in runs)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_bench")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db, secret = work / "cc.sqlite3", work / "secret.key"
        path = asyncio.run(seed(db, secret))
        script = work / "count.lua"
        script.write_text(WRK_SCRIPT)
        https_port = free_port()
        env = {"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(secret),
               "CONTACTCARD_BASE_URL": f"https://127.0.0.1:{https_port}", "CONTACTCARD_TRUSTED_PROXIES": "127.0.0.1"}
        serve = Serve(env, work / "serve.log")
        caddy = Caddy(work, serve.port, https_port=https_port)
        plain = Server("app", env, work / "plain.log")
        try:
            caddy.wait_ready()
            direct_url, proxied_url = f"http://127.0.0.1:{serve.port}", caddy.url
            for url in (direct_url, proxied_url):
                drive_url(url, path, 2, script)  # warm-up
            plain_runs: list[Run] = []
            direct, proxied = [], []
            direct_cpu, proxied_cpu = Cpu(app=serve.proc.pid), Cpu(app=serve.proc.pid, caddy=caddy.proc.pid)
            log_before, events_before = serve.log.stat().st_size, count_events(db)
            for _ in range(args.pairs):
                direct.append(direct_cpu.run(lambda: drive_url(direct_url, path, args.seconds, script)))
                proxied.append(proxied_cpu.run(lambda: drive_url(proxied_url, path, args.seconds, script)))
            answered = sum(r.ok for r in direct + proxied)
            log_bytes = serve.log.stat().st_size - log_before
            committed = count_events(db) - events_before
            drive(plain.port, path, CONNECTIONS, 2, True, script)  # warm-up
            edge: list[Run] = []
            plain_cpu, edge_cpu = Cpu(app=plain.proc.pid), Cpu(app=serve.proc.pid)
            for _ in range(args.pairs):
                plain_runs.append(plain_cpu.run(
                    lambda: drive(plain.port, path, CONNECTIONS, args.seconds, True, script)))
                edge.append(edge_cpu.run(lambda: drive_url(direct_url, path, args.seconds, script)))
        finally:
            plain.stop()
            caddy.stop()
            serve.stop()
    print(f"scan path GET /c/{{token}}, wrk -t1 -c{CONNECTIONS}, {args.pairs} interleaved pairs of {args.seconds} s, "
          "medians:")
    print(_row("direct (http)", direct))
    print(f"  CPU per request: {direct_cpu.per_request()}")
    print(_row("through Caddy (https)", proxied))
    print(f"  CPU per request: {proxied_cpu.per_request()}")
    print(f"  Caddy / direct: {median(r.rps for r in proxied) / median(r.rps for r in direct):.0%} of the rate; "
          f"{answered:,} 2xx, {committed:,} events committed; access log {log_bytes / max(answered, 1):.0f} bytes "
          "per request")
    print(_row("plain uvicorn, no log", plain_runs))
    print(f"  CPU per request: {plain_cpu.per_request()}")
    print(_row("contactcard serve (edge on)", edge))
    print(f"  CPU per request: {edge_cpu.per_request()}")
    print(f"  serve / plain: {median(r.rps for r in edge) / median(r.rps for r in plain_runs):.0%}")
    return 0


def drive_url(base: str, path: str, seconds: int, script: Path) -> Run:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         "-H", "User-Agent: proxy-bench", "-H", "Accept-Language: ja", base + path],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    requests, duration, status, connect, read, write, timeout, p50, p99 = map(int, line.split()[1:])
    return Run(CONNECTIONS, requests / duration * 1e6, p50 / 1000, p99 / 1000, requests - status,
               status + connect + read + write + timeout)


if __name__ == "__main__":
    sys.exit(main())
