"""Backup, check and restore of a database with a million events: ``python -m bench.backup_bench``
(about 1-2 minutes; 127.0.0.1 only).

Seeds a temp database with a live card and pre-fills N events with direct SQL (as ``scan_bench`` does), then
runs the operator's commands as an operator would (the CLI in a subprocess) and prints wall times and sizes:
1. ``contactcard backup`` while no server runs;
2. once the server has finished its start-up roll-up of past days, the real server (uvicorn, one worker, no
   access log) under a bounded Python load of 16 keep-alive connections for ``--seconds``: first without a
   backup, then with ``contactcard backup`` started 1 s in, giving the backup's time under load and the
   scans/s and p99 of both windows;
3. ``contactcard check --database`` on the copy (a full integrity check) and ``contactcard restore`` of it into
   another path.

Options: ``--events N`` (default 1,000,000), ``--seconds N`` per load window (default 8).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from . import loadgen
from .scan_bench import IPHONE, ROOT, Server, count_events, prefill, seed

CONNECTIONS = 16


def cli(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run a contactcard command; its wall time (process start included) and its output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "contactcard.cli", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"contactcard {' '.join(args)} failed: {done.stderr.strip()}")
    return took, done.stdout


def wait_until_quiet(port: int, path: str, timeout: float = 300.0) -> float:
    """The server rolls past days up into daily totals once at start; with a million events that holds the
    database for a while. The measured windows start once 20 scans in a row are each answered within 50 ms."""
    start = time.monotonic()
    quick = 0
    while quick < 20:
        if time.monotonic() - start > timeout:
            raise RuntimeError("the server did not settle")
        asked = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as answer:
            answer.read()
        quick = quick + 1 if time.monotonic() - asked < 0.05 else 0
    return time.monotonic() - start


def load_window(port: int, path: str, seconds: float) -> loadgen.Result:
    return asyncio.run(loadgen.run(port, path, CONNECTIONS, seconds, user_agent=IPHONE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc-backup-bench-") as tmp:
        work = Path(tmp)
        db, secret = work / "live.sqlite3", work / "secret.key"
        path = asyncio.run(seed(db, secret))
        took = prefill(db, args.events)
        env = {"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(secret),
               "CONTACTCARD_BASE_URL": "http://127.0.0.1"}
        print(f"pre-filled {args.events:,} events in {took:.1f} s; database {db.stat().st_size / 1e6:.0f} MB",
              flush=True)

        wall, out = cli(env, "backup", "--output", str(work / "idle.sqlite3"), "--json")
        idle = json.loads(out)
        print(f"backup, no server:   {wall:.2f} s wall ({idle['seconds']:.2f} s copying), "
              f"{idle['bytes'] / 1e6:.0f} MB, {idle['tables']['events']:,} events", flush=True)

        server = Server("app", env, work / "server.log")
        try:
            settled = wait_until_quiet(server.port, path)
            print(f"server settled {settled:.0f} s after start (the start-up roll-up of past days)", flush=True)
            load_window(server.port, path, 2)  # warm-up
            quiet = load_window(server.port, path, args.seconds)
            result: dict[str, object] = {}

            def backup_after_a_second() -> None:
                time.sleep(1)
                result["wall"], result["out"] = cli(env, "backup", "--output", str(work / "loaded.sqlite3"),
                                                    "--json")

            backup = threading.Thread(target=backup_after_a_second)
            before = count_events(db)
            backup.start()
            loaded = load_window(server.port, path, args.seconds)
            backup.join()
            time.sleep(0.5)  # the last batch commits
            committed = count_events(db) - before
        finally:
            server.stop()
        report = json.loads(str(result["out"]))
        print(f"backup, under load:  {float(str(result['wall'])):.2f} s wall ({report['seconds']:.2f} s copying), "
              f"{report['bytes'] / 1e6:.0f} MB, {report['tables']['events']:,} events", flush=True)
        for label, run in (("scans without backup", quiet), ("scans with backup   ", loaded)):
            print(f"{label}: {run.rps:,.0f}/s, p50 {run.percentile(50) * 1000:.1f} ms, "
                  f"p99 {run.percentile(99) * 1000:.1f} ms, max {max(run.latencies) * 1000:.0f} ms, "
                  f"non-2xx/errors {run.other + run.errors}", flush=True)
        print(f"answered 2xx during the loaded window: {loaded.ok:,}; events committed meanwhile: {committed:,}")

        wall, out = cli(env, "check", "--database", str(work / "loaded.sqlite3"), "--json")
        print(f"check of the copy:   {wall:.2f} s wall (integrity {json.loads(out)['integrity']})", flush=True)
        wall, _ = cli({**env, "CONTACTCARD_DB": str(work / "restored" / "cc.sqlite3")}, "restore",
                      str(work / "loaded.sqlite3"))
        print(f"restore of the copy: {wall:.2f} s wall (integrity check, copy, swap)", flush=True)


if __name__ == "__main__":
    main()
