"""The scan log's CSV download: every line built by SQLite (local time included), in pieces read ahead."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from contactcard import csvexport, reports
from contactcard import service as service_module
from contactcard.models import Outcome, ScanEvent

from .conftest import Harness


@pytest.fixture
def seeded(harness: Harness, admin_client: TestClient) -> Harness:
    harness.seed()
    return harness


def in_zone(h: Harness, zone: str) -> None:
    company = h.run(h.service.company)
    h.run(h.service.save_company, dataclasses.replace(company, timezone=zone), actor="test")


def add(h: Harness, *times: datetime) -> None:
    async def insert() -> None:
        async with h.service._store.transaction():
            await h.service._store.insert_events(
                [ScanEvent(time=t, outcome=Outcome.UNKNOWN, user_agent=f"ua {i}") for i, t in enumerate(times)])

    h.run(insert)


def download(h: Harness, query: str = "") -> list[dict[str, str]]:
    r = h.client.get(f"/admin/scans.csv{query}")
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


def local(stored: str, zone: str) -> str:
    """What a person in ``zone`` reads on the clock at the stored instant, to the second (not rounded)."""
    when = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return when.strftime("%Y-%m-%d %H:%M:%S")


EDGES = [  # around New York's 2026 changes (08 Mar 07:00 UTC, 01 Nov 06:00 UTC) and a minute's last instant
    datetime(2026, 3, 8, 6, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 59, 59, 500000, tzinfo=UTC), datetime(2026, 11, 1, 6, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC), datetime(2026, 7, 1, 12, 0, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "UTC"])
def test_local_times_are_exact_across_offset_changes(seeded: Harness, zone: str) -> None:
    in_zone(seeded, zone)
    add(seeded, *EDGES)
    rows = download(seeded)
    assert len(rows) == len(EDGES)
    assert {r["time"] for r in rows} == {t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in EDGES}
    stored = {t.strftime("%Y-%m-%dT%H:%M:%SZ"): t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in EDGES}
    assert [r["local_time"] for r in rows] == [local(stored[r["time"]], zone) for r in rows]
    new_york = {r["time"]: r["local_time"] for r in rows} if zone == "America/New_York" else {}
    if new_york:
        assert new_york["2026-03-08T06:59:59Z"] == "2026-03-08 01:59:59"  # EST
        assert new_york["2026-03-08T07:00:00Z"] == "2026-03-08 03:00:00"  # EDT from this instant
        assert new_york["2026-11-01T05:59:59Z"] == "2026-11-01 01:59:59"  # EDT, the first 01:59
        assert new_york["2026-11-01T06:00:00Z"] == "2026-11-01 01:00:00"  # EST again


def test_a_filtered_export_is_exact_too(seeded: Harness) -> None:
    in_zone(seeded, "America/New_York")
    add(seeded, *EDGES)
    rows = download(seeded, "?from=2026-11-01&to=2026-11-01")
    assert [r["local_time"] for r in rows] == ["2026-11-01 01:30:00", "2026-11-01 01:00:00", "2026-11-01 01:59:59"]


def test_times_without_a_whole_minute_offset_still_get_their_local_time(seeded: Harness) -> None:
    """Tokyo kept local mean time (+9:18:59) until 1888: such a row takes the Python path, same answer."""
    in_zone(seeded, "Asia/Tokyo")
    old, recent = datetime(1887, 6, 1, 3, 0, 30, tzinfo=UTC), datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    add(seeded, old, recent)
    rows = download(seeded)
    assert [r["local_time"] for r in rows] == [
        "2026-11-27 09:00:00", csvexport.LocalMinutes(ZoneInfo("Asia/Tokyo"))("1887-06-01T03:00:30.000000Z")]


def test_utc_offsets_find_each_change_to_the_second() -> None:
    pieces = csvexport.utc_offsets(ZoneInfo("America/New_York"), datetime(2026, 1, 1, tzinfo=UTC),
                                   datetime(2027, 1, 1, tzinfo=UTC))
    assert [(p[0], p[2]) for p in pieces] == [
        (datetime(2026, 1, 1, tzinfo=UTC), -300), (datetime(2026, 3, 8, 7, tzinfo=UTC), -240),
        (datetime(2026, 11, 1, 6, tzinfo=UTC), -300)]
    assert [p[1] for p in pieces[:-1]] == [p[0] for p in pieces[1:]] and pieces[-1][1] == datetime(2027, 1, 1,
                                                                                                    tzinfo=UTC)
    assert csvexport.utc_offsets(ZoneInfo("Asia/Tokyo"), datetime(2026, 1, 1, tzinfo=UTC),
                                 datetime(2026, 1, 1, tzinfo=UTC)) == []


def test_pieces_read_ahead_are_complete_in_order_and_pinned(seeded: Harness,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 7 rows: each read while the one before is sent; rows committed meanwhile never join."""
    monkeypatch.setattr(service_module, "EXPORT_CHUNK", 7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    add(seeded, *[base + timedelta(minutes=i) for i in range(30)])
    expected = [str(e.id) for e in reversed(seeded.events())]

    async def export_while_scans_arrive() -> list[str]:
        lines: list[str] = []
        async for text, _ in seeded.service.scan_csv(reports.ScanFilter()):
            lines += text.splitlines()
            async with seeded.service._store.transaction():  # a scan committed between two pieces
                await seeded.service._store.insert_events([ScanEvent(time=base, outcome=Outcome.UNKNOWN)])
        return [line.split(",", 1)[0] for line in lines]

    assert seeded.run(export_while_scans_arrive) == expected
    downloaded = [r["id"] for r in download(seeded)]
    assert len(downloaded) == 35 and [i for i in downloaded if i in expected] == expected, "the page's download"


def test_an_abandoned_download_leaves_the_readers_free(seeded: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "EXPORT_CHUNK", 3)
    add(seeded, *[datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(20)])

    async def first_piece_then_stop() -> str:
        pieces = seeded.service.scan_csv(reports.ScanFilter())
        text, _ = await anext(pieces)
        await pieces.aclose()  # the browser went away after the first piece
        return text

    for _ in range(5):  # more than the pool has readers: none is left taken
        assert len(seeded.run(first_piece_then_stop).splitlines()) == 3
    assert len(download(seeded)) == 20


@pytest.mark.parametrize("count", [1, 6, 7, 8, 14, 15])
def test_every_row_once_whatever_the_count_against_the_piece_size(seeded: Harness, count: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 7, each read ahead from where the one before ended: none lost, none twice, at any count."""
    monkeypatch.setattr(service_module, "EXPORT_CHUNK", 7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    add(seeded, *[base + timedelta(seconds=i // 3) for i in range(count)])  # ties on time: ids order them
    assert [r["id"] for r in download(seeded)] == [str(e.id) for e in reversed(seeded.events())]


def test_lines_are_byte_for_byte_the_documented_format(seeded: Harness) -> None:
    """What a spreadsheet or a script reading the raw file gets: text cells quoted with their quotes doubled,
    formula-like ones prefixed with ', an unknown employee an empty cell, numbers and times bare, CRLF ends."""
    taro = seeded.run(seeded.service.find_employee, "taro@example.co.jp")
    when = datetime(2026, 11, 27, 0, 0, 59, 999999, tzinfo=UTC)

    async def insert() -> None:
        async with seeded.service._store.transaction():
            await seeded.service._store.insert_events([
                ScanEvent(time=when, outcome=Outcome.CLICK, card_id=1, employee_id=taro.id, channel_kind="line",
                          user_agent='Mozilla/5.0 "quoted", with comma', referrer="=cmd|' /C calc'!A0",
                          accept_language="ja,en;q=0.8", visitor_key="abc123", device="-1+2", os="iOS 「日本」",
                          browser="@SUM(1)"),
                ScanEvent(time=when, outcome=Outcome.UNKNOWN, is_bot=True, user_agent="Slackbot 1.0",
                          device="bot"),
            ])

    seeded.run(insert)
    raw = seeded.client.get("/admin/scans.csv").content
    assert raw.startswith(b"\xef\xbb\xbf" + ",".join(csvexport.EVENT_HEADER).encode() + b"\r\n")
    first, second = (e.id for e in reversed(seeded.events()))
    assert raw.decode("utf-8-sig").split("\r\n")[1:] == [
        f'{first},2026-11-27T00:00:59Z,unknown,,,,"Slackbot 1.0","","",,2026-11-27 09:00:59,1,"bot","",""',
        f'{second},2026-11-27T00:00:59Z,click,"taro@example.co.jp",line,1,"Mozilla/5.0 ""quoted"", with comma",'
        f'"\'=cmd|\' /C calc\'!A0","ja,en;q=0.8",abc123,2026-11-27 09:00:59,0,"\'-1+2","iOS 「日本」","\'@SUM(1)"',
        "",
    ]
