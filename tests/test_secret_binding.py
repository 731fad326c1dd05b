"""Finding 9: a missing or different secret file is refused, never silently replaced by a new one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bench.processes import free_port
from contactcard.app import create_app
from contactcard.config import Settings, create_secret, load_secret
from contactcard.keycheck import check_value
from contactcard.store import Store

from .conftest import Cli

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://cards.example.co.jp"
TARO = "taro@example.co.jp"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("CONTACTCARD_DB", str(data / "cc.sqlite3"))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(data / "secret.key"))
    monkeypatch.setenv("CONTACTCARD_BASE_URL", BASE_URL)
    monkeypatch.chdir(tmp_path)
    return data


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def refused(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 1, out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("contactcard: error: "), err
    return lines[0]


def issue_card(cli: Cli) -> dict[str, Any]:
    ok(cli("employee", "add", "--email", TARO, "--name", "山田 太郎"))
    issued: dict[str, Any] = json.loads(ok(cli("card", "issue", "--employee", TARO, "--json")))
    return issued


def cards(cli: Cli) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(ok(cli("card", "list", "--json")))
    return listed


def test_rotate_from_another_directory_without_the_secret_refuses_and_keeps_the_link(
        cli: Cli, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = issue_card(cli)
    before = cards(cli)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CONTACTCARD_SECRET_FILE")  # the default, data/secret.key, is relative: not there
    line = refused(cli("card", "rotate", "--employee", TARO))
    assert "secret" in line and "missing" in line
    assert not (elsewhere / "data").exists()  # no new secret was written
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(data / "secret.key"))
    after = cards(cli)
    assert after == before and len(after) == 1  # the live link is neither revoked nor replaced
    assert after[0]["url"] == issued["url"] and after[0]["revoked_at"] is None


def test_a_different_secret_file_is_refused(cli: Cli, data: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    issue_card(cli)
    other = tmp_path / "other.key"
    create_secret(other)
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(other))
    line = refused(cli("card", "rotate", "--employee", TARO))
    assert "not the one" in line and str(other) in line
    refused(cli("card", "list"))


def test_a_new_database_gets_a_new_secret_and_its_check_value(cli: Cli, data: Path) -> None:
    ok(cli("migrate"))
    secret = load_secret(data / "secret.key")

    async def stored() -> bytes | None:
        store = await Store.open(data / "cc.sqlite3")
        try:
            return await store.secret_check()
        finally:
            await store.close()

    assert asyncio.run(stored()) == check_value(secret)


def test_a_database_made_before_the_check_value_is_checked_against_its_cards(
        cli: Cli, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issue_card(cli)

    async def forget_check_value() -> None:  # as a database from before migration 4 would be
        store = await Store.open(data / "cc.sqlite3")
        try:
            async with store.transaction():
                await store._conn.execute("DELETE FROM secret_check")
        finally:
            await store.close()

    asyncio.run(forget_check_value())
    other = tmp_path / "other.key"
    create_secret(other)
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(other))
    assert "not the one" in refused(cli("card", "list"))
    monkeypatch.setenv("CONTACTCARD_SECRET_FILE", str(data / "secret.key"))
    assert len(cards(cli)) == 1


def test_serve_refuses_without_the_secret(cli: Cli, data: Path, tmp_path: Path) -> None:
    issue_card(cli)
    port = free_port()
    env = {**os.environ, "CONTACTCARD_DB": str(data / "cc.sqlite3"), "CONTACTCARD_BASE_URL": BASE_URL,
           "CONTACTCARD_PORT": str(port), "PYTHONPATH": str(ROOT)}
    env.pop("CONTACTCARD_SECRET_FILE")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        proc = subprocess.run([sys.executable, "-m", "contactcard.cli", "serve"], env=env, cwd=elsewhere,
                              capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("serve started instead of refusing")
    assert proc.returncode == 1
    assert proc.stderr.startswith("contactcard: error: secret file") and len(proc.stderr.splitlines()) == 1
    assert not (elsewhere / "data").exists()


def test_the_app_refuses_to_start_with_a_different_secret(settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(settings)):
        pass  # first start: creates the secret and binds it
    settings.secret_file.unlink()
    create_secret(settings.secret_file)
    with pytest.raises(Exception, match="not the one"), TestClient(create_app(settings)):
        pass
