"""backup, restore and check: the operator's commands on the database file.

None of them opens the service: ``backup`` and ``check`` read the file read-only (the server keeps running),
``restore`` replaces it only while no process has it open. The secret is never inside a backup: it is a
separate file that must be kept (and backed up) separately.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from .. import config, keycheck
from ..config import Settings
from ..models import ContactcardError
from ..schema import LATEST
from ..store import DatabaseReport, backup_database, inspect_database, restore_database
from .base import JSON, Command, arg, emit, fail, warn
from .format import Json

_MB = 1024 * 1024


def _secret_state(settings: Settings, report: DatabaseReport) -> str:
    """matches | different | missing | unbound (a new database: no check value, no card) | unreadable: <why>."""
    try:
        secret = config.read_secret(settings.secret_file)
    except ContactcardError as exc:
        return f"unreadable: {exc}"
    if secret is None:
        return "missing"
    verdict = keycheck.matches(secret, report.secret_check, report.sample_card)
    return "unbound" if verdict is None else "matches" if verdict else "different"


def _problems(report: DatabaseReport, secret: str, *, live: bool) -> list[str]:
    problems = []
    if report.integrity != "ok":
        problems.append(f"integrity check failed: {report.integrity}")
    if report.schema_version < LATEST:
        problems.append(f"schema version {report.schema_version} is older than this program's ({LATEST}): "
                        "run contactcard migrate")
    elif report.schema_version > LATEST:
        problems.append(f"schema version {report.schema_version} is newer than this program's ({LATEST}): "
                        "upgrade contactcard")
    if live and report.journal_mode.lower() != "wal":  # a backup file is in rollback mode: restore makes it WAL
        problems.append(f"journal mode is {report.journal_mode}, not wal")
    if secret in ("missing", "different") or secret.startswith("unreadable"):
        problems.append(f"the secret file is {secret}: it is not the one this database was created with")
    return problems


def _tables_line(report: DatabaseReport) -> str:
    return "tables: " + ", ".join(f"{name} {count:,}" for name, count in report.tables.items())


def _report_json(report: DatabaseReport) -> Json:
    return {"database": str(report.path), "bytes": report.size, "schema_version": report.schema_version,
            "tables": report.tables}


def _check(settings: Settings, args: argparse.Namespace) -> int:
    path = args.database or settings.db_path
    report = inspect_database(path)
    secret = _secret_state(settings, report)
    problems = _problems(report, secret, live=args.database is None)
    emit(args, {
        **_report_json(report), "ok": not problems, "problems": problems, "integrity": report.integrity,
        "latest_schema_version": LATEST, "page_size": report.page_size, "pages": report.pages,
        "free_pages": report.free_pages, "journal_mode": report.journal_mode, "synchronous": report.synchronous,
        "secret_file": str(settings.secret_file), "secret": secret,
    }, [
        f"database: {path} ({report.size / _MB:.1f} MB, {report.pages:,} pages of {report.page_size} bytes, "
        f"{report.free_pages:,} free)",
        f"integrity: {report.integrity}",
        f"schema version: {report.schema_version} (this program: {LATEST})",
        f"writer: journal_mode {report.journal_mode}, synchronous {report.synchronous}",
        f"secret: {settings.secret_file} {secret}",
        _tables_line(report),
    ])
    if problems:
        return fail(f"check found {len(problems)} problem(s): " + "; ".join(problems), 1)
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    started = time.monotonic()
    report = backup_database(settings.db_path, args.output)
    seconds = time.monotonic() - started
    emit(args, {**_report_json(report), "output": str(args.output), "seconds": round(seconds, 3),
                "secret_file": str(settings.secret_file), "secret_included": False}, [
        f"backup of {settings.db_path} written to {args.output} ({report.size / _MB:.1f} MB in {seconds:.1f} s, "
        f"schema version {report.schema_version})",
        _tables_line(report),
        f"the secret is not in the backup: keep a copy of {settings.secret_file} separately "
        "(without it no link in this backup opens)",
    ])
    return 0


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    report = inspect_database(args.file)
    if report.integrity != "ok":
        return fail(f"{args.file} fails the integrity check ({report.integrity}); nothing was changed", 1)
    if not 1 <= report.schema_version <= LATEST:
        return fail(f"{args.file} has schema version {report.schema_version}, which this program ({LATEST}) "
                    "cannot use; nothing was changed", 1)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = restore_database(report, settings.db_path, stamp)
    secret = _secret_state(settings, report)
    emit(args, {**_report_json(report), "database": str(settings.db_path), "restored_from": str(args.file),
                "replaced_kept_at": None if aside is None else str(aside), "secret_file": str(settings.secret_file),
                "secret": secret}, [
        f"restored {args.file} into {settings.db_path} (schema version {report.schema_version})",
        _tables_line(report),
        f"the database it replaced is kept at {aside}" if aside else "there was no database to replace",
    ])
    if secret in ("missing", "different") or secret.startswith("unreadable"):
        warn(f"the secret file {settings.secret_file} is {secret}: put the secret this backup was made with there "
             "before starting the server")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(("backup",), "copy the database consistently while the server runs (the secret is not included)",
            _backup, (arg("--output", required=True, type=Path, metavar="FILE", help="the new backup file"), JSON)),
    Command(("restore",), "replace the database with a backup (the server must be stopped)", _restore,
            (arg("file", type=Path, metavar="FILE", help="a file made by contactcard backup"), JSON)),
    Command(("check",), "check the database's integrity, schema, writer settings and secret; exit 1 on a problem",
            _check, (arg("--database", type=Path, metavar="FILE", help="another database file, e.g. a backup "
                                                                        "(default: CONTACTCARD_DB)"), JSON)),
)
