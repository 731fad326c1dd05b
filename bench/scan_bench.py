"""The scan path against the bare framework: ``python -m bench.scan_bench`` (about 4 minutes, 127.0.0.1 only).

For an empty database and for one pre-filled with a million events, it starts the product exactly as users run
it, ``contactcard serve`` in a subprocess with its default logging (the access log included, written to a file),
on a temp database seeded with a live card, and next to it a bare Starlette app on the same uvicorn answering a
page of the same byte size with no database (``bench.bare_app`` via ``bench.serve``). It drives each with wrk
(or, without wrk, a Python keep-alive load generator) at 16, 64 and 256 connections, A and B interleaved
``--pairs`` times (the order alternating), and prints the medians of requests/s, p50 and p99 for both and
their ratio. It then counts the events committed against the 2xx answers: per wrk run (wrk drops the answers
still in flight when its time is up; those events are committed and answered to nobody, so they are reported
apart), and exactly, in a bounded run that waits for every answer. Last, the server's peak RSS (VmHWM).

Target at 64 connections: >= 80% of bare's requests/s, p99 within 1.5x bare's, no event lost. Exits 1 when
missed. Options: ``--seconds N`` per run (default 5), ``--pairs N`` (default 3), ``--events N`` for the
pre-filled run (default 1,000,000; 0 skips it), ``--python`` to use the Python load generator even when wrk is
present.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import starlette
import uvicorn

from contactcard.models import ChannelKind, EmployeeProfile
from contactcard.service import Service
from contactcard.serving import HTTP_PROTOCOL
from contactcard.store import Store, ts
from tests.live_server import LiveServer

from . import loadgen, processes

CONNECTIONS = (16, 64, 256)
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = """
function done(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Run:
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int  # 2xx answers received
    bad: int  # non-2xx answers and socket errors


async def seed(db: Path, secret_file: Path) -> str:
    from contactcard.config import load_secret

    store = await Store.open(db)
    try:
        service = Service(store, secret=load_secret(secret_file), base_url="http://127.0.0.1")
        company = await service.company()
        from dataclasses import replace

        await service.save_company(replace(company, name="株式会社ベンチ", name_en="Bench K.K.",
                                           business_hours="平日 9:00–18:00", allow_email_domains=("example.co.jp",),
                                           allow_phone_prefixes=("+813",), allow_line_ids=("@bench",)),
                                   general={ChannelKind.PHONE: "03-1234-0000"}, actor="bench")
        await service.add_employee(EmployeeProfile(email="taro@example.co.jp", family_name="山田", given_name="太郎",
                                   family_kana="ヤマダ", given_kana="タロウ", title="課長", department="営業部"),
                                   actor="bench")
        for kind, target in ((ChannelKind.LINE, "https://line.me/R/ti/p/@bench"),
                             (ChannelKind.PHONE, "tel:03-1234-5679"), (ChannelKind.EMAIL, "mailto:taro@example.co.jp")):
            await service.add_channel("taro@example.co.jp", kind, target, actor="bench")
        issued = await service.issue_card("taro@example.co.jp", days=365, actor="bench")
        return "/c/" + issued.token
    finally:
        await store.close()


def prefill(db: Path, n: int) -> float:
    """``n`` events over the last 30 days in one transaction, one executemany; returns the seconds taken."""
    start = time.perf_counter()
    now = datetime.now(UTC)
    base = now - timedelta(days=30)
    step = (now - base - timedelta(hours=1)) / max(n, 1)
    rng = random.Random(4)
    outcomes = ("view",) * 6 + ("click", "click", "vcard", "unknown")

    def rows() -> object:
        for i in range(n):
            outcome = outcomes[i % len(outcomes)]
            bot = 1 if i % 7 == 0 else 0
            yield (ts(base + step * i), None if outcome == "unknown" else 1, None if outcome == "unknown" else 1,
                   outcome, IPHONE, f"{rng.getrandbits(60):015x}", bot, "bot" if bot else "mobile", "iOS",
                   "Mobile Safari")

    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            """INSERT INTO events (time, card_id, employee_id, outcome, user_agent, visitor_key, is_bot, device,
                   os, browser) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows())  # type: ignore[arg-type]
        conn.execute("COMMIT")
    return time.perf_counter() - start


def count_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


class Server:
    """``python -m bench.serve KIND PORT``: the bare reference, or (for ``proxy_bench``) the app on plain uvicorn;
    its output goes to ``log``."""

    def __init__(self, kind: str, env: dict[str, str], log: Path) -> None:
        self.port = processes.free_port()
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.serve", kind, str(self.port)], cwd=ROOT,
                                         env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        processes.wait_answering(self.proc, lambda: _accepts(self.port), log, f"{kind} server", 30)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        processes.stop(self.proc)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def drive(port: int, path: str, connections: int, seconds: float, use_wrk: bool, script: Path) -> Run:
    if use_wrk:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(script),
             "-H", f"User-Agent: {IPHONE}", "-H", "Accept-Language: ja", f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
        line = next(x for x in out.splitlines() if x.startswith("BENCH "))
        requests, duration, status, connect, read, write, timeout, p50, p99 = map(int, line.split()[1:])
        return Run(connections, requests / duration * 1e6, p50 / 1000, p99 / 1000, requests - status,
                   status + connect + read + write + timeout)
    result = asyncio.run(loadgen.run(port, path, connections, seconds, user_agent=IPHONE))
    return Run(connections, result.rps, result.percentile(50) * 1000, result.percentile(99) * 1000, result.ok,
               result.other + result.errors)


def page_size(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return len(r.read())


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def medians(runs: list[Run]) -> Run:
    return Run(runs[0].connections, statistics.median(r.rps for r in runs), statistics.median(r.p50_ms for r in runs),
               statistics.median(r.p99_ms for r in runs), sum(r.ok for r in runs), sum(r.bad for r in runs))


def phase(label: str, events: int, seconds: float, pairs: int, use_wrk: bool, workdir: Path) -> bool:
    """One database state: seed, optionally pre-fill, then bare vs ``contactcard serve``; True if the target is met."""
    db, secret = workdir / f"{label}.sqlite3", workdir / "secret.key"
    path = asyncio.run(seed(db, secret))
    if events:
        took = prefill(db, events)
        print(f"  pre-filled {events:,} events in {took:.1f} s ({db.stat().st_size / 1e6:.0f} MB)", flush=True)
    env = {"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(secret)}
    script = workdir / "count.lua"
    script.write_text(WRK_SCRIPT)

    app = LiveServer(env, workdir / f"{label}.serve.log")  # the access log goes to this file
    app.start()
    try:
        size = page_size(app.port, path)
        bare = Server("bare", {**env, "BENCH_BODY_SIZE": str(size)}, workdir / f"{label}.bare.log")
        try:
            drive(bare.port, path, 64, 2, use_wrk, script)  # warm-up
            drive(app.port, path, 64, 2, use_wrk, script)  # warm-up (and the start-up roll-up of past days)
            time.sleep(1)
            app_runs: dict[int, list[Run]] = {c: [] for c in CONNECTIONS}
            bare_runs: dict[int, list[Run]] = {c: [] for c in CONNECTIONS}
            accounting = []
            for pair in range(pairs):  # interleaved, so a noisy neighbour hits both alike
                for c in CONNECTIONS:
                    for kind in (("bare", "app") if pair % 2 == 0 else ("app", "bare")):
                        if kind == "bare":
                            bare_runs[c].append(drive(bare.port, path, c, seconds, use_wrk, script))
                            continue
                        before = count_events(db)
                        run = drive(app.port, path, c, seconds, use_wrk, script)
                        time.sleep(0.5)  # the last batch commits
                        app_runs[c].append(run)
                        accounting.append((c, run.ok, count_events(db) - before, run.bad))
            bare_rss = bare.peak_rss_mb()
        finally:
            bare.stop()
        # exact accounting: a bounded run that waits for every answer, one for one with the events
        before = count_events(db)
        exact = asyncio.run(loadgen.run(app.port, path, 64, 60, count=5000, user_agent=IPHONE))
        exact_committed = count_events(db) - before
        assert app.proc is not None
        app_rss = peak_rss_mb(app.proc.pid)
    finally:
        app.stop()

    print(f"\n== {label}: {count_events(db):,} events stored at the end; page {size} bytes; "
          f"medians of {pairs} interleaved {seconds:g} s runs ==")
    print(f"{'conns':>6} {'bare rps':>9} {'p50':>7} {'p99':>7} | {'scan rps':>9} {'p50':>7} {'p99':>7} | "
          f"{'ratio':>6} {'p99 x':>6}")
    at64 = (Run(64, 0, 0, 0, 0, 0), Run(64, 1, 0, 0, 0, 0))
    for c in CONNECTIONS:
        b, a = medians(bare_runs[c]), medians(app_runs[c])
        print(f"{c:>6} {b.rps:>9.0f} {b.p50_ms:>5.1f}ms {b.p99_ms:>5.1f}ms | {a.rps:>9.0f} "
              f"{a.p50_ms:>5.1f}ms {a.p99_ms:>5.1f}ms | {a.rps / b.rps:>6.0%} {a.p99_ms / b.p99_ms:>5.2f}x")
        print(f"{'':>6} each run, scan/bare rps: "
              + " ".join(f"{x.rps / y.rps:.0%}" for x, y in zip(app_runs[c], bare_runs[c], strict=True)))
        if c == 64:
            at64 = (a, b)
    print("events committed vs 2xx answers (wrk stops with answers in flight: committed, answered to nobody):")
    lost_total = 0
    for c in CONNECTIONS:
        rows = [r for r in accounting if r[0] == c]
        ok, committed, bad = (sum(r[i] for r in rows) for i in (1, 2, 3))
        lost = sum(max(0, r[1] - r[2]) for r in rows)
        lost_total += lost
        print(f"  {c:>4} conns, {len(rows)} runs: 2xx {ok:>7}  committed {committed:>7}  in flight at stop "
              f"{committed - ok:>4}  non-2xx/errors {bad}  lost {lost}")
    print(f"  exact run (5000 requests, every answer awaited): 2xx {exact.ok}  committed {exact_committed}  "
          f"{'EQUAL' if exact.ok == exact_committed else 'MISMATCH'}  non-2xx {exact.other + exact.errors}")
    print(f"peak RSS: app {app_rss:.0f} MB, bare {bare_rss:.0f} MB")
    app64, bare64 = at64
    ok = (app64.rps >= 0.8 * bare64.rps and app64.p99_ms <= 1.5 * bare64.p99_ms and lost_total == 0
          and exact.ok == exact_committed and app_rss < 150)
    print(f"target at 64 conns (>= 80% of bare, p99 <= 1.5x bare's, no lost event, RSS < 150 MB): "
          f"{'MET' if ok else 'NOT MET'}")
    return ok


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()} ({cpu}), load average {load}, "
            f"Python {sys.version.split()[0]}, uvicorn {uvicorn.__version__} "
            f"({HTTP_PROTOCOL} protocol for both the bare app and contactcard serve), "
            f"starlette {starlette.__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--python", action="store_true", help="use the Python load generator, not wrk")
    args = parser.parse_args(argv)
    use_wrk = shutil.which("wrk") is not None and not args.python
    print(f"{machine()}, load generator: {'wrk -t1' if use_wrk else 'Python asyncio'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="scanbench-") as tmp:
        results = [phase("empty database", 0, args.seconds, args.pairs, use_wrk, Path(tmp))]
        if args.events:
            results.append(phase(f"{args.events:,} events", args.events, args.seconds, args.pairs, use_wrk,
                                 Path(tmp)))
    print(f"at the end: {machine()}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
