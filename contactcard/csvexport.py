"""CSV for spreadsheets, shared by the CLI's ``scans export`` and the admin console's downloads. Pure.

Excel in Japan guesses Shift_JIS unless a UTF-8 file starts with a byte-order mark, so every export
starts with one (``BOM``, or open the file with ``encoding="utf-8-sig"``). Cells that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) get a
leading ``'`` (CSV injection, OWASP).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO
from zoneinfo import ZoneInfo

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The scan export's columns (CLI and console alike; README "Scan exports"). New columns go at the end, so a
# spreadsheet or script reading by position keeps working.
EVENT_HEADER = ("id", "time", "outcome", "employee", "channel", "card_id", "user_agent", "referrer",
                "accept_language", "visitor", "local_time", "is_bot", "device", "os", "browser")


def neutralise(cell: object) -> str:
    """The cell as text that no spreadsheet runs as a formula; None becomes an empty cell."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Writer:
    """``csv.writer`` that neutralises every cell."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out)

    def writerow(self, cells: Iterable[object]) -> None:
        self._writer.writerow([neutralise(c) for c in cells])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def lines(rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV text (``\\r\\n`` line ends), cells neutralised; for streaming a response page by page."""
    buf = io.StringIO()
    Writer(buf).writerows(rows)
    return buf.getvalue()


class LocalMinutes:
    """Stored UTC times as local "YYYY-MM-DD HH:MM:SS", computed once per minute (every zone's offset is a
    whole number of minutes), so a large export does not convert each row."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._minutes: dict[str, str] = {}

    def __call__(self, stored: str) -> str:
        minute = stored[:16]
        local = self._minutes.get(minute)
        if local is None:
            if len(self._minutes) > 100_000:
                self._minutes.clear()
            local = datetime.fromisoformat(minute).replace(tzinfo=UTC).astimezone(self._zone).strftime("%Y-%m-%d %H:%M")
            self._minutes[minute] = local
        return local + stored[16:19]


_STEP = 12 * 3600


def utc_offsets(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int | None]]:
    """The zone's offset from UTC over [start, end), as (from, to, whole minutes) pieces in time order; None for
    a piece whose offset is not a whole number of minutes (local mean time, before 1900). For
    ``Store.export_csv``, which turns stored UTC times into local ones inside SQLite with them.

    Found by stepping 12 hours at a time and bisecting each change to the second: exact for any change at
    least 12 hours after the one before (every zone's are months apart). About 1 ms for 400 days.
    """
    def minutes(at: int) -> int | None:
        offset = datetime.fromtimestamp(at, UTC).astimezone(zone).utcoffset()
        seconds = 0 if offset is None else int(offset.total_seconds())
        return seconds // 60 if seconds % 60 == 0 else None

    first, last = math.floor(start.timestamp()), math.ceil(end.timestamp())
    changes = [(first, minutes(first))]
    for at in range(first, last, _STEP):
        nxt = min(at + _STEP, last)
        if minutes(nxt) != changes[-1][1]:
            low, high = at, nxt  # the offset at ``low`` is the last piece's; at ``high`` it is not
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if minutes(mid) == changes[-1][1] else (low, mid)
            changes.append((high, minutes(high)))
    ends = [at for at, _ in changes[1:]] + [last]
    return [(datetime.fromtimestamp(at, UTC), datetime.fromtimestamp(end_at, UTC), offset)
            for (at, offset), end_at in zip(changes, ends, strict=True) if at < end_at]
