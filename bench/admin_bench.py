"""Reports against history, and scans against reports: ``python -m bench.admin_bench`` (127.0.0.1 only).

Builds two installs of one company (about 1,000 employees, one live card per employee, a bench admin), one
holding ``--events`` scan events (default 5,000,000) and one holding ``--small`` (default 10,000), both spread
over the last 400 days with a realistic mix of outcomes, channels, repeat visitors and bots. Events are
written straight into the table (one recursive CTE inside SQLite, synchronous=OFF for the prefill only); the
daily totals are then rolled up by the server itself at its start. Each server is the real
``contactcard serve`` (a subprocess, default logging, the access log included), as users run it.

Measured, A/B interleaved ``--reps`` times, medians reported:

- each admin page (dashboard, employee page, scan log, scan log by employee, by outcome) and
  ``contactcard scans stats --json`` at the large install vs the small one (target: within 2x);
- the scan log's CSV export of the last 30 days vs plain ``sqlite3`` iterating the same rows (target: >= 50%);
- scan throughput and p99 with wrk at 16 and 64 connections, quiet vs while one admin reloads the dashboard
  continuously (target: >= 80% of quiet, p99 within 1.5x);
- scans during the start-up roll-up of a 400-day backlog vs quiet (target: >= 80%).

Prints a table and exits 1 when a target is missed. ``--quick`` is a smoke run (small data, short runs).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from contactcard import tokens
from contactcard.config import load_secret
from tests.live_server import LiveServer

from . import scan_bench
from .scan_bench import IPHONE, WRK_SCRIPT, Run, drive

MEASURES = ("pages", "csv", "reload", "backlog")
EMPLOYEES = 1000
HISTORY_DAYS = 400
ZONE = ZoneInfo("Asia/Tokyo")  # the company's default time zone (seed keeps it)
ADMIN_EMAIL = "admin@bench.example"
ADMIN_PASSWORD = "bench admin password"
BUSY_EMPLOYEE = 1  # the seeded employee with the live card the scans hit; the busiest one in the data set
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')

# One statement generates every event inside SQLite. Values are hashed from the row number (not random(),
# which SQLite may evaluate once per reference): a skewed spread over employees, a realistic outcome mix,
# about 8% bots, pairs of rows sharing a visitor (a view and the click that followed).
_PREFILL = """
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :n - 1),
rows AS (SELECT i, (i * 2654435761 + 97) % 100 AS r, (i * 40503 + 7) % 1000 AS a, (i * 69069 + 3) % 1000 AS b,
                (i * 1103515245 + 12345) % 100 AS bot FROM seq)
INSERT INTO events (time, card_id, employee_id, outcome, channel_kind, user_agent, referrer, accept_language,
                    visitor_key, is_bot, device, os, browser)
SELECT strftime('%Y-%m-%dT%H:%M:%f', :start + i * :step, 'unixepoch') || '000Z',
       CASE WHEN r < 93 THEN 1 + a * b / 1000 END,
       CASE WHEN r < 93 THEN 1 + a * b / 1000 END,
       CASE WHEN r < 70 THEN 'view' WHEN r < 83 THEN 'click' WHEN r < 88 THEN 'vcard' WHEN r < 91 THEN 'expired'
            WHEN r = 91 THEN 'revoked' WHEN r = 92 THEN 'departed' WHEN r < 98 THEN 'unknown' ELSE 'malformed' END,
       CASE WHEN r >= 70 AND r < 83 THEN (CASE i % 3 WHEN 0 THEN 'line' WHEN 1 THEN 'phone' ELSE 'email' END) END,
       CASE WHEN bot < 8 THEN 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)'
            WHEN i % 3 = 0 THEN 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124 Mobile'
            ELSE :iphone END,
       '', 'ja', printf('%016x%016x', (i / 2) * 2654435761, (i / 2) * 40503), bot < 8,
       CASE WHEN bot < 8 THEN 'bot' ELSE 'mobile' END, CASE WHEN i % 3 = 0 THEN 'Android' ELSE 'iOS' END,
       CASE WHEN i % 3 = 0 THEN 'Chrome Mobile' ELSE 'Mobile Safari' END
FROM rows
"""


@dataclass
class Install:
    """One company's data on disk, and the real server over it."""

    label: str
    events: int
    workdir: Path
    scan_path: str = ""
    server: LiveServer | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "cc.sqlite3"

    @property
    def env(self) -> dict[str, str]:
        return {"CONTACTCARD_DB": str(self.db), "CONTACTCARD_SECRET_FILE": str(self.workdir / "secret.key")}

    def build(self) -> None:
        self.workdir.mkdir(parents=True)
        self.scan_path = asyncio.run(scan_bench.seed(self.db, self.workdir / "secret.key"))
        took = prefill(self.db, self.events, load_secret(self.workdir / "secret.key"))
        print(f"  {self.label}: {self.events:,} events prefilled in {took:.1f} s "
              f"({self.db.stat().st_size / 1e6:,.0f} MB)", flush=True)
        password = self.workdir / "admin.password"
        password.write_text(ADMIN_PASSWORD + "\n")
        LiveServer(self.env, self.workdir / "server.log").cli("create-admin", "--email", ADMIN_EMAIL,
                                                              "--password-file", str(password))

    def start(self) -> float:
        """Start ``contactcard serve``; seconds until it answered."""
        self.server = LiveServer(self.env, self.workdir / "server.log")
        return self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def rolled_up(self) -> bool:
        """True once the server has stored the daily totals of every finished day."""
        yesterday = (datetime.now(ZONE).date() - timedelta(days=1)).isoformat()
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT totals_through FROM analytics_state").fetchone()
        return bool(row) and row[0] >= yesterday

    def wait_rolled_up(self, timeout: float = 600) -> float:
        start = time.monotonic()
        while not self.rolled_up():
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"{self.label}: the roll-up did not finish in {timeout:.0f} s")
            time.sleep(0.1)
        return time.monotonic() - start

    def forget_totals(self) -> None:
        """Back to a backlog (the server is stopped): see ``as_backlog``."""
        assert self.server is None
        as_backlog(self.db)


def as_backlog(db: Path) -> None:
    """Every stored event becomes the backlog of an upgrade from a version without live daily totals: nothing
    counted, the server's roll-up counts them all."""
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM daily_totals")
        conn.execute("DELETE FROM daily_visitors")
        conn.execute("UPDATE analytics_state SET totals_through = '', "
                     "live_after_id = (SELECT COALESCE(MAX(id), 0) FROM events)")


def prefill(db: Path, n: int, secret: bytes) -> float:
    """~1,000 employees with a card each, then ``n`` events over the last 400 days; returns seconds taken."""
    begin = time.perf_counter()
    now = time.time()
    start = now - (HISTORY_DAYS - 0.5) * 86400  # half a day inside the retention, so nothing is purged
    step = (now - 60 - start) / max(n, 1)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        # the prefill only (the server sets its own at start): no WAL copy of 1 GB, no fsync
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("BEGIN")
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn.executemany(
            """INSERT INTO employees (id, email, family_name, given_name, department, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            ((i, f"staff{i:04d}@example.co.jp", "社員", f"{i:04d}", f"営業{i % 12 + 1}課", created)
             for i in range(2, EMPLOYEES + 1)))
        # 90-day links issued on every day of the last 90: about one in six expires within the dashboard's notice
        expires = [(datetime.now(UTC) + timedelta(days=1 + i % 90)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                   for i in range(2, EMPLOYEES + 1)]
        nonces = [tokens.new_nonce() for _ in range(2, EMPLOYEES + 1)]
        conn.executemany(  # real cards: the server checks its secret against the newest one
            """INSERT INTO cards (id, employee_id, generation, nonce, token_digest, created_at, expires_at)
               VALUES (?, ?, 1, ?, ?, ?, ?)""",
            ((i, i, nonce, tokens.digest(tokens.token_for(secret, nonce)), created, expiry)
             for i, nonce, expiry in zip(range(2, EMPLOYEES + 1), nonces, expires, strict=True)))
        conn.execute(_PREFILL, {"n": n, "start": start, "step": step, "iphone": IPHONE})
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    as_backlog(db)  # written straight into the table: the server rolls the daily totals up itself
    return time.perf_counter() - begin


class Admin:
    """A signed-in admin's browser: one keep-alive connection, the session cookie, no redirect followed."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.cookies: dict[str, str] = {}
        page = self.get("/login")
        body = urllib.parse.urlencode({"csrf": _csrf(page), "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        status, _ = self.request("POST", "/login", body.encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303 or "cc_session" not in self.cookies:
            raise RuntimeError(f"admin sign-in failed ({status})")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        send = {"User-Agent": "admin-bench", "Accept-Language": "ja", **({"Cookie": cookie} if cookie else {}),
                **(headers or {})}
        try:
            self.conn.request(method, path, body, send)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):  # the server closed an idle keep-alive
            self.conn.close()
            self.conn.request(method, path, body, send)
            response = self.conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.read()

    def get(self, path: str) -> str:
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        return body.decode()

    def timed(self, path: str) -> float:
        begin = time.perf_counter()
        self.get(path)
        return time.perf_counter() - begin

    def csv_rows(self, path: str) -> tuple[int, float]:
        """Rows streamed (header excluded) and seconds taken, reading the download chunk by chunk."""
        begin = time.perf_counter()
        self.conn.close()  # a fresh connection: never one the server is about to close as idle
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request("GET", path, headers={"User-Agent": "admin-bench", "Cookie": cookie})
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        lines = 0
        while chunk := response.read(1 << 16):
            lines += chunk.count(b"\n")
        return lines - 1, time.perf_counter() - begin

    def close(self) -> None:
        self.conn.close()


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    if not found:
        raise RuntimeError("no CSRF field on the sign-in page")
    return found[1]


class Reloader:
    """One admin reloading the dashboard continuously in a thread (a browser with auto-refresh held down)."""

    def __init__(self, port: int) -> None:
        self.port, self.loads = port, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Reloader:
        self._admin = Admin(self.port)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._admin.get("/admin")
            self.loads += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._admin.close()


def local_bounds(first: date, last: date) -> tuple[str, str]:
    """[first 00:00, last+1 00:00) local, as the store's UTC text."""
    def text(d: date) -> str:
        return datetime.combine(d, datetime.min.time(), ZONE).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return text(first), text(last + timedelta(days=1))


def sqlite_rows(db: Path, first: date, last: date) -> tuple[int, float]:
    """Plain sqlite3 iterating the rows the CSV holds (every column, newest first); rows and seconds."""
    since, until = local_bounds(first, last)
    begin = time.perf_counter()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        count = 0
        for _ in conn.execute("""SELECT events.*, employees.email FROM events
                                 LEFT JOIN employees ON employees.id = events.employee_id
                                 WHERE events.time >= ? AND events.time < ? ORDER BY events.id DESC""",
                              (since, until)):
            count += 1
    return count, time.perf_counter() - begin


def cli_seconds(install: Install, *args: str) -> float:
    assert install.server is not None
    begin = time.perf_counter()
    install.server.cli(*args)
    return time.perf_counter() - begin


@dataclass
class Row:
    measured: str
    a: str  # the baseline
    b: str  # under test
    ratio: float
    target: str
    met: bool


def pages() -> list[tuple[str, str]]:
    return [("dashboard /admin", "/admin"),
            ("employee page", f"/admin/employees/{BUSY_EMPLOYEE}"),
            ("employee list", "/admin/employees"),
            ("scan log", "/admin/scans"),
            ("scan log by employee", f"/admin/scans?employee={BUSY_EMPLOYEE}"),
            ("scan log by outcome", "/admin/scans?outcome=expired")]


def measure_pages(small: Install, large: Install, reps: int) -> list[Row]:
    """Each page at both installs, interleaved; the median of ``reps`` loads after a warm-up load."""
    rows = []
    admins = {small.label: Admin(small.port), large.label: Admin(large.port)}
    try:
        for name, path in pages():
            times: dict[str, list[float]] = {small.label: [], large.label: []}
            for admin in admins.values():
                admin.timed(path)  # warm-up: templates, caches
            for _ in range(reps):
                for install in (small, large):
                    times[install.label].append(admins[install.label].timed(path))
            rows.append(_flat_row(name, statistics.median(times[small.label]), statistics.median(times[large.label])))
    finally:
        for admin in admins.values():
            admin.close()
    cli: dict[str, list[float]] = {small.label: [], large.label: []}
    for _ in range(max(3, reps)):
        for install in (small, large):
            cli[install.label].append(cli_seconds(install, "scans", "stats", "--json"))
    rows.append(_flat_row("contactcard scans stats --json", statistics.median(cli[small.label]),
                          statistics.median(cli[large.label])))
    return rows


def _flat_row(name: str, small: float, large: float) -> Row:
    ratio = large / small
    return Row(name, f"{small * 1000:.0f} ms", f"{large * 1000:.0f} ms", ratio, "<= 2x", ratio <= 2.0)


def measure_csv(large: Install, reps: int) -> Row:
    today = datetime.now(ZONE).date()
    first = today - timedelta(days=29)
    path = f"/admin/scans.csv?from={first.isoformat()}&to={today.isoformat()}"
    app_rates, raw_rates, rows = [], [], 0
    admin = Admin(large.port)
    try:
        for _ in range(reps):
            rows, seconds = admin.csv_rows(path)
            app_rates.append(rows / seconds)
            raw, raw_seconds = sqlite_rows(large.db, first, today)
            raw_rates.append(raw / raw_seconds)
    finally:
        admin.close()
    app, raw_rate = statistics.median(app_rates), statistics.median(raw_rates)
    return Row(f"CSV export, last 30 days ({rows:,} rows)", f"sqlite3 {raw_rate:,.0f} rows/s",
               f"{app:,.0f} rows/s", app / raw_rate, ">= 0.5x", app / raw_rate >= 0.5)


def measure_scans_under_reports(large: Install, seconds: float, reps: int, script: Path) -> list[Row]:
    rows = []
    for connections in (16, 64):
        quiet: list[Run] = []
        loaded: list[Run] = []
        loads = 0
        for rep in range(reps):
            order = ("quiet", "loaded") if rep % 2 == 0 else ("loaded", "quiet")
            for kind in order:
                if kind == "quiet":
                    quiet.append(drive(large.port, large.scan_path, connections, seconds, True, script))
                else:
                    with Reloader(large.port) as reloader:
                        loaded.append(drive(large.port, large.scan_path, connections, seconds, True, script))
                    loads += reloader.loads
        q_rps, l_rps = statistics.median(r.rps for r in quiet), statistics.median(r.rps for r in loaded)
        q_p99, l_p99 = statistics.median(r.p99_ms for r in quiet), statistics.median(r.p99_ms for r in loaded)
        rows.append(Row(f"scans/s at {connections} conns, admin reloading ({loads} loads)", f"{q_rps:,.0f}",
                        f"{l_rps:,.0f}", l_rps / q_rps, ">= 0.8x", l_rps / q_rps >= 0.8))
        rows.append(Row(f"scan p99 at {connections} conns, admin reloading", f"{q_p99:.1f} ms", f"{l_p99:.1f} ms",
                        l_p99 / q_p99, "<= 1.5x", l_p99 / q_p99 <= 1.5))
    return rows


def measure_backlog(large: Install, seconds: float, reps: int, script: Path) -> Row:
    """Start over a 400-day backlog: scans while the server rolls it up, then quiet, on each start."""
    during: list[Run] = []
    quiet: list[Run] = []
    took: list[float] = []
    for _ in range(reps):
        large.stop()
        large.forget_totals()
        began = time.monotonic()
        large.start()
        during.append(drive(large.port, large.scan_path, 64, seconds, True, script))
        large.wait_rolled_up()
        took.append(time.monotonic() - began)
        quiet.append(drive(large.port, large.scan_path, 64, seconds, True, script))
    d, q = statistics.median(r.rps for r in during), statistics.median(r.rps for r in quiet)
    roll_up = statistics.median(took)
    note = "" if roll_up > seconds else f"; the roll-up ({roll_up:.0f} s) ended inside the run"
    return Row(f"scans/s at 64 conns during start-up roll-up (took {roll_up:.0f} s{note})", f"{q:,.0f}",
               f"{d:,.0f}", d / q, ">= 0.8x", d / q >= 0.8)


def print_table(rows: list[Row], a: str, b: str) -> None:
    width = max(len(r.measured) for r in rows)
    print(f"\n{'measured':<{width}}  {a:>22}  {b:>22}  {'ratio':>6}  {'target':>8}")
    for r in rows:
        print(f"{r.measured:<{width}}  {r.a:>22}  {r.b:>22}  {r.ratio:>5.2f}x  {r.target:>8}  "
              f"{'met' if r.met else 'MISSED'}")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    import uvicorn

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, "
            f"uvicorn {uvicorn.__version__}, SQLite {sqlite3.sqlite_version}, load average {load}")


def _step(label: str) -> Callable[[], None]:
    begin = time.monotonic()
    print(f"- {label}", flush=True)
    return lambda: print(f"  ({time.monotonic() - begin:.0f} s)", flush=True)


def _installs(tmp: Path, large_events: int, small_events: int) -> Iterator[Install]:
    yield Install(f"{small_events:,} events", small_events, tmp / "small")
    yield Install(f"{large_events:,} events", large_events, tmp / "large")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000, help="events in the large install")
    parser.add_argument("--small", type=int, default=10_000, help="events in the small install")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--reps", type=int, default=3, help="interleaved A/B repetitions (medians reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100,000 events, 2 s runs, 1 rep")
    parser.add_argument("--only", choices=MEASURES, action="append",
                        help="run only this measurement (repeatable): " + ", ".join(MEASURES))
    args = parser.parse_args(argv)
    only = set(args.only or MEASURES)
    if args.quick:
        args.events, args.seconds, args.reps = min(args.events, 100_000), 2.0, 1
    if shutil.which("wrk") is None:
        print("wrk is required (apt install wrk)", file=sys.stderr)
        return 2
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="adminbench-") as tmp:
        small, large = _installs(Path(tmp), args.events, args.small)
        script = Path(tmp) / "count.lua"
        script.write_text(WRK_SCRIPT)
        done = _step("building both installs")
        small.build()
        large.build()
        done()
        try:
            done = _step("starting both servers; each rolls up its 400-day backlog")
            small.start()
            large.start()
            small.wait_rolled_up()
            print(f"  {large.label}: rolled up {large.wait_rolled_up():.0f} s after it answered", flush=True)
            done()
            rows: list[Row] = []
            if "pages" in only:
                done = _step("admin pages and scans stats, small vs large")
                rows += measure_pages(small, large, max(5, args.reps))
                done()
            small.stop()
            if "csv" in only:
                done = _step("CSV export vs sqlite3")
                rows.append(measure_csv(large, args.reps))
                done()
            if "reload" in only:
                done = _step("scans, quiet vs an admin reloading the dashboard")
                rows += measure_scans_under_reports(large, args.seconds, args.reps, script)
                done()
            if "backlog" in only:
                done = _step("scans during a start-up roll-up vs quiet")
                rows.append(measure_backlog(large, args.seconds, args.reps, script))
                done()
        finally:
            small.stop()
            large.stop()
    print_table(rows, "baseline (small/quiet)", "large/loaded")
    print(machine().split(", ", 1)[1].split("load average")[0] + "load average at the end "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    missed = [r.measured for r in rows if not r.met]
    print(f"targets: {len(rows) - len(missed)} of {len(rows)} met"
          + (f"; missed: {'; '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
