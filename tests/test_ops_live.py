"""Backup under load, for real: a running ``contactcard serve`` takes scans from several clients while
``contactcard backup`` copies the database; the copy restores elsewhere, passes ``check`` and holds every scan
answered before the backup started. A restore into the running server's database is refused, and the server's
/metrics counts exactly the scans it committed."""

from __future__ import annotations

import http.client
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .live_server import ROOT, LiveServer

pytestmark = pytest.mark.slow

CLIENTS = 4
PREFILL = 100_000  # so the copy takes long enough for scans to land while it runs


def _prefill(db: Path, rows: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO events (time, outcome, user_agent, visitor_key) VALUES (?, 'view', ?, '')",
                         (("2026-11-01T00:00:00.000000Z", f"prefill/{i}") for i in range(rows)))


def _client(port: int, path: str, number: int, stop: threading.Event,
            answered: list[tuple[float, str]]) -> None:
    """Scans with a unique user agent each; notes when each 200 arrived."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = 0
    try:
        while not stop.is_set():
            user_agent = f"backup-load/{number}-{n}"
            n += 1
            conn.request("GET", path, headers={"User-Agent": user_agent})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                answered.append((time.monotonic(), user_agent))
    finally:
        conn.close()


def _wait_for(answered: list[tuple[float, str]], count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(answered) < count:
        assert time.monotonic() < deadline, f"only {len(answered)} scans answered"
        time.sleep(0.01)


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200, path
        return response.read().decode()
    finally:
        conn.close()


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "contactcard.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def test_backup_under_load_restores_with_every_scan_answered_before_it(tmp_path: Path) -> None:
    db, secret, backup, restored = (tmp_path / "live.sqlite3", tmp_path / "secret.key", tmp_path / "backup.sqlite3",
                                    tmp_path / "restored" / "cc.sqlite3")
    server = LiveServer({"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(secret)}, tmp_path / "server.log")
    server.cli("employee", "add", "--email", "taro@example.co.jp", "--name", "山田 太郎")
    issued = json.loads(server.cli("card", "issue", "--employee", "taro@example.co.jp", "--json"))
    path = "/c/" + issued["url"].rsplit("/", 1)[1]
    _prefill(db, PREFILL)
    server.start()
    stop = threading.Event()
    answered: list[tuple[float, str]] = []
    clients = [threading.Thread(target=_client, args=(server.port, path, n, stop, answered)) for n in range(CLIENTS)]
    try:
        for thread in clients:
            thread.start()
        _wait_for(answered, 200)  # the load is running
        started = time.monotonic()
        report = json.loads(server.cli("backup", "--output", str(backup), "--json"))
        finished = time.monotonic()
        _wait_for(answered, len(answered) + 100)  # and goes on after the copy
        refused = _run(server.env, "restore", str(backup))
        stop.set()
        for thread in clients:
            thread.join(30)
        metrics = _get(server.port, "/metrics")
        assert _get(server.port, "/readyz") == "ready"
    finally:
        stop.set()
        server.stop()
    with sqlite3.connect(db) as conn:  # what this server committed, read back from the file
        views = conn.execute("SELECT COUNT(*) FROM events WHERE user_agent LIKE 'backup-load/%'").fetchone()[0]
    committed = {tuple(sorted(s.labels.items())): s.value for family in text_string_to_metric_families(metrics)
                 for s in family.samples if s.name == "contactcard_scans_committed_total"}
    assert committed == {(("outcome", "view"), ("visitor", "person")): views}  # the counter says what is stored
    assert refused.returncode == 1 and "in use" in refused.stderr  # the server had the database open
    before = {ua for at, ua in answered if at < started}
    during = [ua for at, ua in answered if started <= at < finished]
    assert len(before) >= 200 and during, "scans must be answered while the backup runs"

    env = {**server.env, "CONTACTCARD_DB": str(restored)}
    assert _run(env, "restore", str(backup)).returncode == 0
    check = _run(env, "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    result = json.loads(check.stdout)
    assert result["integrity"] == "ok" and result["secret"] == "matches" and result["journal_mode"] == "wal"
    with sqlite3.connect(restored) as conn:
        stored = {ua for (ua,) in conn.execute("SELECT user_agent FROM events WHERE user_agent LIKE 'backup-load/%'")}
        total = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert before <= stored  # every scan answered before the backup started is in it
    assert total == report["tables"]["events"] >= PREFILL + len(before)
    with sqlite3.connect(db) as conn:  # and the server went on writing past the copy
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] > total
