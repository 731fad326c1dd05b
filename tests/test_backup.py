"""backup, restore and check against real database files (the slow end-to-end run under load is in test_ops_live)."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest

from contactcard.config import Settings, create_secret, read_secret
from contactcard.schema import LATEST
from contactcard.store import Store

from .conftest import Cli, Harness

BASE_URL = "https://cards.example.co.jp"
TARO, HANAKO = "taro@example.co.jp", "hanako@example.co.jp"


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on the same files as the ``settings`` (and ``harness``) fixture."""
    monkeypatch.setenv("CONTACTCARD_DB", str(settings.db_path))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(settings.secret_file))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", BASE_URL)
    return Cli(capsys)


def employees(cli: Cli) -> list[str]:
    return [e["email"] for e in cli.json("employee", "list")]


def seed(cli: Cli) -> None:
    cli.ok("employee", "add", "--email", TARO, "--name", "山田 太郎")
    cli.ok("card", "issue", "--employee", TARO)


def test_backup_is_a_private_copy_without_the_secret_and_says_where_the_secret_is(
        cli: Cli, settings: Settings, tmp_path: Path) -> None:
    seed(cli)
    out = tmp_path / "backup.sqlite3"
    report = cli.json("backup", "--output", str(out))
    assert report["tables"]["employees"] == 1 and report["tables"]["cards"] == 1
    assert report["secret_included"] is False and report["secret_file"] == str(settings.secret_file)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds password hashes and sessions
    secret = read_secret(settings.secret_file)
    assert secret is not None
    data = out.read_bytes()
    assert secret not in data and secret.hex().encode() not in data
    assert not list(tmp_path.glob("backup.sqlite3?*"))  # one self-contained file, no -wal/-journal/.partial
    text = cli.ok("backup", "--output", str(tmp_path / "second.sqlite3"))
    assert "employees 1" in text and "cards 1" in text
    assert f"keep a copy of {settings.secret_file} separately" in text
    assert "already exists" in cli.refused("backup", "--output", str(out))


def test_restore_brings_back_the_backup_and_keeps_the_replaced_file(cli: Cli, settings: Settings,
                                                                     tmp_path: Path) -> None:
    seed(cli)
    backup = tmp_path / "b.sqlite3"
    cli.ok("backup", "--output", str(backup))
    cli.ok("employee", "add", "--email", HANAKO, "--name", "佐藤 花子")  # made after the backup
    out = cli.ok("restore", str(backup))
    assert employees(cli) == [TARO]
    kept = list(settings.db_path.parent.glob(settings.db_path.name + ".replaced-*"))
    assert len(kept) == 1 and f"kept at {kept[0]}" in out
    with sqlite3.connect(kept[0]) as old:  # the replaced database, complete (its WAL folded in)
        assert sorted(r[0] for r in old.execute("SELECT email FROM employees")) == [HANAKO, TARO]
    assert cli.json("check")["ok"] is True


def test_restore_replaces_a_broken_database(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    seed(cli)
    backup = tmp_path / "b.sqlite3"
    cli.ok("backup", "--output", str(backup))
    settings.db_path.write_bytes(b"this is not a database " * 1000)  # e.g. a disk fault
    cli.refused("check")
    cli.ok("restore", str(backup))
    assert employees(cli) == [TARO] and cli.json("check")["ok"] is True
    (kept,) = (p for p in settings.db_path.parent.glob(settings.db_path.name + ".replaced-*")
               if not p.name.endswith(("-wal", "-shm")))  # those, if any, are kept beside it
    assert kept.read_bytes().startswith(b"this is not a database")


def test_restore_refuses_while_the_server_has_the_database_open(harness: Harness, cli: Cli, tmp_path: Path) -> None:
    card = harness.path(harness.seed())
    backup = tmp_path / "b.sqlite3"
    cli.ok("backup", "--output", str(backup))
    line = cli.refused("restore", str(backup))
    assert "in use" in line and "stop it first" in line
    assert not list(tmp_path.glob("*.replaced-*"))
    assert harness.client.get(card).status_code == 200


def test_a_server_cannot_start_while_a_restore_holds_the_database(settings: Settings) -> None:
    from contactcard.store import DatabaseLock

    lock = DatabaseLock(settings.db_path)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    lock.acquire_exclusive()
    try:
        with pytest.raises(Exception, match="being restored"):
            asyncio.run(Store.open(settings.db_path))
    finally:
        lock.release()


def test_restore_checks_the_file_first_and_changes_nothing_when_it_is_bad(cli: Cli, settings: Settings,
                                                                          tmp_path: Path) -> None:
    seed(cli)
    before = settings.db_path.read_bytes()
    newer = tmp_path / "newer.sqlite3"
    cli.ok("backup", "--output", str(newer))
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    assert "schema version" in cli.refused("restore", str(newer))
    corrupt = tmp_path / "corrupt.sqlite3"
    cli.ok("backup", "--output", str(corrupt))
    with sqlite3.connect(corrupt) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_employees_1'"
                            ).fetchone()[0]
    data = bytearray(corrupt.read_bytes())
    start = (page - 1) * 4096
    at = data.index(TARO.encode(), start, start + 4096)
    data[at] = ord("x")  # the email index no longer matches the table: the file opens, integrity_check fails
    corrupt.write_bytes(bytes(data))
    assert "fails the integrity check" in cli.refused("restore", str(corrupt))
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello " * 1000)
    cli.refused("restore", str(not_a_db))
    cli.refused("restore", str(tmp_path / "missing.sqlite3"))
    assert settings.db_path.read_bytes() == before
    assert not list(settings.db_path.parent.glob("*.replaced-*"))
    assert employees(cli) == [TARO]


def test_check_reports_the_writer_settings_and_the_secret(cli: Cli, settings: Settings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seed(cli)
    report = cli.json("check")
    assert report["ok"] is True and report["problems"] == []
    assert report["integrity"] == "ok" and report["schema_version"] == LATEST
    assert report["journal_mode"] == "wal" and report["synchronous"] == "FULL"
    assert report["secret"] == "matches" and report["free_pages"] >= 0
    other = tmp_path / "other.key"
    create_secret(other)
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(other))
    assert "the secret file is different" in cli.refused("check")
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(tmp_path / "nowhere.key"))
    assert "the secret file is missing" in cli.refused("check")
    assert not (tmp_path / "nowhere.key").exists()  # check never creates a secret


def test_check_fails_on_an_old_schema_and_a_broken_file(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"

    async def make_old() -> None:
        store = await Store.open(old, migrate_to=3)
        await store.close()

    asyncio.run(make_old())
    assert "run contactcard migrate" in cli.refused("check", "--database", str(old))
    assert "no database at" in cli.refused("check", "--database", str(tmp_path / "missing.sqlite3"))
