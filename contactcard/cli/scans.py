"""scans list|export|stats and purge: reading and retiring the scan record."""

from __future__ import annotations

import argparse
import io
import sys
from typing import IO

from .. import csvexport
from ..config import Settings
from ..reports import ScanFilter
from ..service import Service
from . import format as fmt
from .base import ANY_EMPLOYEE, JSON, Command, UsageError, arg, emit, out, positive, uses_service

DEFAULT_SCAN_LIMIT = 50

async def _employee_id(service: Service, ref: str | None) -> int | None:
    return None if ref is None else (await service.find_employee(ref)).id


async def _scans_stats(service: Service, args: argparse.Namespace) -> int:
    result = await service.stats(employee_id=await _employee_id(service, args.employee), days=args.days)
    total = result.total
    emit(args, result.as_json(), [
        *(f"{d.day}  scans {d.scans}  visitors {d.visitors}  clicks {d.clicks}  vcards {d.vcards}  bots {d.bots}"
          for d in result.days),
        f"total  scans {total.scans}  visitors {total.visitors}  clicks {total.clicks}  vcards {total.vcards}  "
        f"bots {total.bots}  click rate {total.click_rate:.0%}",
    ])
    return 0


async def _purge(service: Service, args: argparse.Namespace) -> int:
    deleted = await service.purge()
    days = (await service.company()).retention_days
    emit(args, {"deleted": deleted, "retention_days": days},
          [f"deleted {deleted} scan events older than {days} days; daily totals kept"])
    return 0


async def _scans_list(service: Service, args: argparse.Namespace) -> int:
    flt = ScanFilter(employee_id=await _employee_id(service, args.employee))
    events = await service.scan_log(flt, limit=args.limit)
    emit(args, [fmt.event_json(e) for e in events], map(fmt.event_line, events))
    return 0


async def _write_events_csv(service: Service, sink: IO[str], employee_id: int | None) -> int:
    """Every event, newest first, paged, in the console's columns; returns the number of rows written."""
    sink.write(csvexport.lines([csvexport.EVENT_HEADER]))
    count = 0
    async for text, rows in service.scan_csv(ScanFilter(employee_id=employee_id)):
        sink.write(text)
        count += rows
    return count


def _scans_export(settings: Settings, args: argparse.Namespace) -> int:
    """Files are opened here, outside the event loop; the rows are written by an async handler."""
    if not args.csv:
        raise UsageError("choose a format: --csv")

    def export_to(sink: IO[str]) -> int:
        async def handler(service: Service, args: argparse.Namespace) -> int:
            return await _write_events_csv(service, sink, await _employee_id(service, args.employee))

        return uses_service(handler)(settings, args)

    if args.output is not None:
        with open(args.output, "w", encoding="utf-8-sig", newline="") as sink:
            count = export_to(sink)
        out(f"wrote {count} scans to {args.output}")
        return 0
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a replaced stdout with no bytes underneath
        sys.stdout.write("\ufeff")
        export_to(sys.stdout)
        return 0
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")
    try:
        export_to(wrapper)
    finally:
        wrapper.flush()
        wrapper.detach()
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(("scans", "list"), "list recent scans, newest first", uses_service(_scans_list), (
        ANY_EMPLOYEE,
        arg("--limit", type=positive, default=DEFAULT_SCAN_LIMIT, metavar="N",
            help=f"how many (default {DEFAULT_SCAN_LIMIT})"),
        JSON)),
    Command(("scans", "export"), "export every scan as CSV (UTF-8 with BOM, for spreadsheets)",
            _scans_export, (
                arg("--csv", action="store_true", help="CSV output (the only format)"),
                arg("--output", metavar="FILE", help="file to write (default: standard output)"),
                ANY_EMPLOYEE)),
    Command(("scans", "stats"), "people's scans, unique visitors, clicks and vCard saves per day (bots apart)",
            uses_service(_scans_stats), (
                ANY_EMPLOYEE,
                arg("--days", type=positive, default=30, metavar="N", help="the last N days (default 30)"),
                JSON)),
    Command(("purge",), "delete scan events older than the company's retention; daily totals are kept",
            uses_service(_purge), (JSON,)),
)
