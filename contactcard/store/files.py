"""Whole database files: the in-use lock, backup, restore, check."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models import (
    Conflict,
    NotFound,
    ValidationError,
)

# Plain sqlite3, synchronous: the CLI runs these in its own process, never on the server's event loop.

SYNCHRONOUS = "FULL"  # every commit is on disk before the answer that depends on it is sent


class DatabaseLock:
    """``<db>.lock``, locked shared by every process that has the database open (the server, each command) and
    exclusively by ``restore``. flock locks belong to the open file, so a crashed process never leaves one held."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def _lock(self, mode: int) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire_shared(self) -> None:
        if not self._lock(fcntl.LOCK_SH):
            raise Conflict(f"the database {self.db_path} is being restored; start again when that "
                           "has finished")

    def acquire_exclusive(self) -> None:
        if not self._lock(fcntl.LOCK_EX):
            raise Conflict(f"the database {self.db_path} is in use (a running server or another "
                           "contactcard command); stop it first, e.g. systemctl stop contactcard")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases its lock
            self._fd = None


@dataclass(frozen=True)
class DatabaseReport:
    """What ``check``, ``backup`` and ``restore`` read from a database file, all in one read transaction."""

    path: Path
    integrity: str  # "ok", or SQLite's first findings
    schema_version: int
    page_size: int
    pages: int
    free_pages: int
    journal_mode: str
    synchronous: str  # as every contactcard connection sets it
    tables: dict[str, int]
    secret_check: bytes | None
    sample_card: tuple[bytes, bytes] | None  # (nonce, token digest) of the newest card

    @property
    def size(self) -> int:
        return self.page_size * self.pages


_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFound(f"no database at {path}")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


def inspect_database(path: Path) -> DatabaseReport:
    """Read a database file without changing it (read-only: no migration, works while the server writes)."""
    conn = _connect_read_only(path)
    try:
        return _inspect(conn, path, integrity=True)
    finally:
        conn.close()


def _inspect(conn: sqlite3.Connection, path: Path, *, integrity: bool) -> DatabaseReport:
    def pragma(name: str) -> Any:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    conn.execute("BEGIN")  # one snapshot for every figure
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        if "cards" not in names:
            raise ValidationError(f"{path} is not a contactcard database")
        tables = {name: int(conn.execute(f'SELECT COUNT(*) FROM "{name.replace(chr(34), chr(34) * 2)}"'  # noqa: S608 (a name SQLite listed, quoted)
                                         ).fetchone()[0]) for name in names}
        findings = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")] if integrity else ["not checked"]
        check = (conn.execute("SELECT value FROM secret_check WHERE id = 1").fetchone()
                 if "secret_check" in names else None)
        card = conn.execute("SELECT nonce, token_digest FROM cards ORDER BY id DESC LIMIT 1").fetchone()
        return DatabaseReport(
            path=path, integrity="; ".join(findings), schema_version=int(pragma("user_version")),
            page_size=int(pragma("page_size")), pages=int(pragma("page_count")),
            free_pages=int(pragma("freelist_count")), journal_mode=str(pragma("journal_mode")),
            synchronous=_SYNCHRONOUS_NAMES.get(int(pragma("synchronous")), "?"),
            tables=tables, secret_check=None if check is None else bytes(check[0]),
            sample_card=None if card is None else (bytes(card[0]), bytes(card[1])),
        )
    finally:
        conn.execute("ROLLBACK")


def _copy_database(source: Path, dest: Path, journal_mode: str) -> DatabaseReport:
    """Copy ``source`` into a new file ``dest`` (owner-only: it holds password hashes and sessions) with SQLite's
    online backup API in one step: one read transaction, so the copy is one consistent snapshot while the server
    goes on committing (in WAL mode a reader never blocks the writer). Returns the copy's report."""
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        src = _connect_read_only(source)
        try:
            dst = sqlite3.connect(dest, isolation_level=None)
            try:
                src.backup(dst)  # pages=-1: everything in one step
                dst.execute(f"PRAGMA journal_mode={journal_mode}")
                report = _inspect(dst, dest, integrity=False)
            finally:
                dst.close()
        finally:
            src.close()
        _fsync(dest)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return report


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_database(source: Path, dest: Path) -> DatabaseReport:
    """A consistent copy of the live database at ``dest`` (refused if it exists); the copy's report."""
    if dest.exists():
        raise Conflict(f"{dest} already exists; choose another file name")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    # a backup is one self-contained file (rollback journal mode, no -wal beside it); restore makes it WAL again
    report = _copy_database(source, partial, "DELETE")
    try:
        os.link(partial, dest)  # never replaces a file that appeared meanwhile
    finally:
        partial.unlink(missing_ok=True)
    _fsync(dest.parent)
    return dataclasses.replace(report, path=dest)


def restore_database(backup: DatabaseReport, target: Path, stamp: str) -> Path | None:
    """Replace ``target`` with the checked backup, refused while any process has it open. The replaced file
    (with its WAL folded in) is kept as ``<target>.replaced-<stamp>``, which is returned (None if there was none)."""
    in_use = DatabaseLock(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    in_use.acquire_exclusive()
    try:
        incoming = target.with_name(target.name + ".restoring")
        incoming.unlink(missing_ok=True)
        _copy_database(backup.path, incoming, "WAL")
        aside = None
        if target.exists():
            conn = sqlite3.connect(target, isolation_level=None)
            try:  # nobody else has it open: fold the WAL into the file, so the copy kept aside is complete
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass  # a broken database (the usual reason to restore) is kept aside as it is, WAL and all
            finally:
                conn.close()
            aside = target.with_name(f"{target.name}.replaced-{stamp}")
            os.replace(target, aside)
            for suffix in ("-wal", "-shm"):  # never leave the old WAL next to the new file
                leftover = target.with_name(target.name + suffix)
                if leftover.exists():
                    os.replace(leftover, aside.with_name(aside.name + suffix))
        os.replace(incoming, target)
        _fsync(target.parent)
        return aside
    finally:
        in_use.release()
