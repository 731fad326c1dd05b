"""Dashboard figures, the server-drawn chart, the scan log's filters and the CSV exports."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from xml.etree import ElementTree

import pytest
from starlette.testclient import TestClient

from contactcard import chart, csvexport, reports
from contactcard import service as service_module
from contactcard.models import EmployeeProfile, Outcome, ScanEvent
from contactcard.stats import local_day_bounds

from .accounts_kit import ADMIN_EMAIL, accounts, csrf_of, login, make_admin, post_form
from .conftest import FakeClock, Harness

SVG = "{http://www.w3.org/2000/svg}"


def bars(n: int = 30) -> list[chart.Bar]:
    return [chart.Bar(label=str(i + 1), value=i % 7, detail=f"day {i + 1}: {i % 7}") for i in range(n)]


def test_chart_is_well_formed_accessible_svg_with_one_bar_per_day() -> None:
    svg = chart.bar_chart(bars(), title="Scans <per> day & more", desc="30 days", chart_id="c1")
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Scans <per> day & more"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "30 days"  # type: ignore[union-attr]
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]
    assert len(rects) == 30
    assert [r.find(f"{SVG}title").text for r in rects][:2] == ["day 1: 0", "day 2: 1"]  # type: ignore[union-attr]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == [str(i) for i in range(1, 31)]
    heights = [float(r.get("height", "0")) for r in rects]
    assert heights[0] == 0 and max(heights) == heights[6]


def test_chart_with_no_data_and_escaped_labels() -> None:
    svg = chart.bar_chart([chart.Bar("<b>", 0, "&")], title="t", desc="d")
    root = ElementTree.fromstring(svg)
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"] == ["<b>"]
    assert chart.bar_chart([], title="t", desc="d").startswith("<svg")


@pytest.mark.parametrize(("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (480, 500)])
def test_nice_max(value: int, top: int) -> None:
    assert chart.nice_max(value) == top


def test_local_day_bounds_follow_the_company_zone() -> None:
    start, end = local_day_bounds("Asia/Tokyo", date(2026, 11, 28))
    assert start.astimezone(UTC) == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    start, end = local_day_bounds("America/New_York", date(2026, 11, 1))  # DST ends: 25 hours
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    days = reports.last_days("Asia/Tokyo", datetime(2026, 11, 27, 15, 30, tzinfo=UTC), 30)
    assert len(days) == 30 and days[-1][0] == date(2026, 11, 28) and days[0][0] == date(2026, 10, 30)


def add_events(h: Harness, *events: ScanEvent) -> None:
    async def insert() -> None:
        async with h.service._store.transaction():
            await h.service._store.insert_events(events)

    h.run(insert)


@pytest.fixture
def seeded(harness: Harness, admin_client: TestClient) -> Harness:
    harness.seed()
    return harness


def test_scans_per_day_group_by_local_day_and_skip_bots(seeded: Harness, clock: FakeClock) -> None:
    taro = seeded.run(seeded.service.find_employee, "taro@example.co.jp")
    # 2026-11-28 01:00 UTC is 10:00 in Tokyo; 2026-11-27 15:30 UTC is already 00:30 on the 28th there
    add_events(seeded,
               ScanEvent(time=datetime(2026, 11, 27, 15, 30, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id),
               ScanEvent(time=datetime(2026, 11, 27, 14, 30, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id),
               ScanEvent(time=datetime(2026, 11, 28, 0, 0, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id,
                         is_bot=True),
               ScanEvent(time=datetime(2026, 11, 28, 0, 0, tzinfo=UTC), outcome=Outcome.CLICK, employee_id=taro.id),
               ScanEvent(time=datetime(2026, 10, 1, 0, 0, tzinfo=UTC), outcome=Outcome.VIEW, employee_id=taro.id),
               ScanEvent(time=datetime(2026, 11, 26, 0, 0, tzinfo=UTC), outcome=Outcome.UNKNOWN))
    data = seeded.run(seeded.service.dashboard)
    days = data.days
    assert len(days) == 30 and days[-1].day == date(2026, 11, 28)
    assert [d.count for d in days[-2:]] == [1, 1]
    assert sum(d.count for d in days) == 2
    assert [(t.employee.email, t.count) for t in data.top] == [("taro@example.co.jp", 2)]
    assert data.alerts == {"unknown": 1}


def test_dashboard_page_shows_chart_top_employees_and_alerts(seeded: Harness) -> None:
    issued = seeded.run(seeded.service.current_card, "taro@example.co.jp")
    assert issued is not None
    seeded.client.get(seeded.path(issued))
    seeded.client.get("/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    seeded.run(seeded.service.revoke_card, "taro@example.co.jp", actor="cli")
    seeded.client.get(seeded.path(issued))
    html = seeded.client.get("/admin", headers={"accept-language": "en"}).text
    svg = html[html.index("<svg"):html.index("</svg>") + 6]
    root = ElementTree.fromstring(svg)
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]) == 30
    assert "Scans per day, last 30 days" in html
    assert "Revoked link" in html and "Alerts" in html
    assert re.search(r"山田 太郎</a>.*?<strong>2</strong>", html, re.S)


def test_the_chart_is_drawn_once_per_figures_and_language(seeded: Harness, clock: FakeClock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Reloads reuse the page; the chart is drawn again only for new figures or another language."""
    drawn: list[str] = []
    real = chart.bar_chart

    def counted(*args: Any, **kwargs: Any) -> str:
        drawn.append(kwargs["title"])
        return real(*args, **kwargs)

    monkeypatch.setattr(chart, "bar_chart", counted)
    pages = [seeded.client.get("/admin", headers={"accept-language": "en"}).text for _ in range(3)]
    assert all("<svg" in html and "Scans per day, last 30 days" in html for html in pages)
    assert len(drawn) == 1
    assert "<svg" in seeded.client.get("/admin", headers={"accept-language": "ja"}).text and len(drawn) == 2
    clock.advance(seconds=service_module.DASHBOARD_TTL.total_seconds())  # rebuilt, equal: the page is reused
    assert "<svg" in seeded.client.get("/admin", headers={"accept-language": "en"}).text and len(drawn) == 2
    issued = seeded.run(seeded.service.current_card, "taro@example.co.jp")
    assert issued is not None
    seeded.client.get(seeded.path(issued))
    clock.advance(seconds=service_module.DASHBOARD_TTL.total_seconds())  # new figures: drawn again
    html = seeded.client.get("/admin", headers={"accept-language": "en"}).text
    assert "(1 in total)" in html and len(drawn) == 3


def _expiring_panel(h: Harness, lang: str = "en") -> str:
    assert login(h.client, ADMIN_EMAIL).status_code == 303  # days pass in this test: past the idle limit
    html = h.client.get("/admin", headers={"accept-language": lang}).text
    found = re.search(r'<section class="panel" aria-labelledby="expiring-h">(.*?)</section>', html, re.S)
    return found[1] if found else ""


def test_dashboard_lists_the_links_about_to_expire(seeded: Harness, clock: FakeClock) -> None:
    """Printed cards outlive their links: the admin sees which expire within the notice, and can extend them."""
    svc = seeded.service
    seeded.run(svc.add_employee, EmployeeProfile(email="hanako@example.co.jp", family_name="佐藤", given_name="花子",
                                                 department="総務部"), actor="cli")
    hanako = seeded.run(svc.issue_card, "hanako@example.co.jp", days=10, actor="cli")
    panel = _expiring_panel(seeded)
    assert "Links expiring within 14 days" in panel and "(1 in all)" in panel  # taro's 90-day link is not due
    assert f'href="/admin/employees/{hanako.card.employee_id}">佐藤 花子</a>' in panel and "山田" not in panel
    assert "2026-12-08" in panel  # 10 days from 2026-11-28
    assert "14日以内に期限が切れるリンク" in _expiring_panel(seeded, "ja")
    clock.advance(days=80)  # hanako's link has expired (an alert when scanned), taro's has 10 days left
    panel = _expiring_panel(seeded)
    assert "山田 太郎" in panel and "佐藤" not in panel and "(1 in all)" in panel
    seeded.run(svc.extend_card, "taro@example.co.jp", days=90, actor="cli")
    assert _expiring_panel(seeded) == "", "an extended link leaves the list at once"
    company = seeded.run(svc.company)
    seeded.run(svc.save_company, dataclasses.replace(company, default_card_days=7), actor="cli")
    seeded.run(svc.extend_card, "hanako@example.co.jp", days=5, actor="cli")
    assert _expiring_panel(seeded) == "", "week-long links are due only in their last 3 days"
    clock.advance(days=2)
    assert "Links expiring within 3 days" in _expiring_panel(seeded)


def test_the_dashboard_extends_every_link_about_to_expire_at_once(seeded: Harness, clock: FakeClock) -> None:
    svc = seeded.service
    for email, name, days in (("hanako@example.co.jp", "佐藤", 10), ("jiro@example.co.jp", "鈴木", 13)):
        seeded.run(svc.add_employee, EmployeeProfile(email=email, family_name=name), actor="cli")
        seeded.run(svc.issue_card, email, days=days, actor="cli")
    assert "Extend all 2" in _expiring_panel(seeded)

    def expiries() -> dict[str, datetime]:
        return {e: seeded.run(svc.current_card, e).card.expires_at  # type: ignore[union-attr]
                for e in ("taro@example.co.jp", "hanako@example.co.jp", "jiro@example.co.jp")}

    before = expiries()
    refused = post_form(seeded.client, "/admin", "/admin/cards/extend-expiring", {"days": "0"})
    assert refused.status_code == 400 and '<p class="form-error" role="alert" id="extend-all-error">' in refused.text
    assert 'value="0" aria-invalid="true" aria-describedby="extend-all-error"' in refused.text
    assert expiries() == before, "a refused form changes nothing"

    done = post_form(seeded.client, "/admin", "/admin/cards/extend-expiring", {"days": "60"})
    assert done.status_code == 303 and done.headers["location"] == "/admin?done=extended_all"
    after = expiries()
    assert after["hanako@example.co.jp"] == after["jiro@example.co.jp"] == clock.now + timedelta(days=60)
    assert after["taro@example.co.jp"] == before["taro@example.co.jp"], "a link not about to expire is left alone"
    audit = [a for a in seeded.run(svc._store.audit_events) if a.action == "card.extend"]
    assert len(audit) == 2 and {a.actor for a in audit} == {ADMIN_EMAIL}
    page = seeded.client.get("/admin?done=extended_all", headers={"accept-language": "en"}).text
    assert "The links about to expire were extended." in page and 'aria-labelledby="expiring-h"' not in page

    clock.advance(days=50)  # hanako's and jiro's links are due again, with 10 days left
    assert login(seeded.client, ADMIN_EMAIL).status_code == 303
    short = post_form(seeded.client, "/admin", "/admin/cards/extend-expiring", {"days": "5"})
    assert short.headers["location"] == "/admin?done=extended_none"
    assert expiries()["hanako@example.co.jp"] == after["hanako@example.co.jp"], "never shortened"


def _dashboard_total(h: Harness) -> int:
    html = h.client.get("/admin", headers={"accept-language": "en"}).text
    found = re.search(r'<span class="muted">\((\d+) in total\)</span>', html)
    assert found, "the chart's heading gives the total"
    return int(found[1])


def test_dashboard_shows_new_scans_within_its_ttl_and_console_changes_at_once(seeded: Harness,
                                                                             clock: FakeClock) -> None:
    issued = seeded.run(seeded.service.current_card, "taro@example.co.jp")
    assert issued is not None
    seeded.client.get(seeded.path(issued))
    assert _dashboard_total(seeded) == 1
    seeded.client.get(seeded.path(issued))  # a customer's scan, committed before its answer
    clock.advance(seconds=service_module.DASHBOARD_TTL.total_seconds() - 0.001)
    assert _dashboard_total(seeded) == 1, "reloads within the TTL reuse the figures (the scan path keeps its pace)"
    clock.advance(seconds=0.001)
    assert _dashboard_total(seeded) == 2, "once the TTL has passed, the next load shows the scan"
    seeded.client.get(seeded.path(issued))
    seeded.run(seeded.service.revoke_card, "taro@example.co.jp", actor="cli")  # a change through the service
    assert _dashboard_total(seeded) == 3, "a change made through the service drops the cached figures at once"
    clock.now -= timedelta(minutes=5)  # the clock stepped back: figures "from the future" are not reused
    seeded.client.get(seeded.path(issued))  # the revoked link
    assert "Revoked link" in seeded.client.get("/admin", headers={"accept-language": "en"}).text


def test_reused_dashboard_page_is_each_admins_own(seeded: Harness) -> None:
    """The page rendered from cached figures is reused only for the same admin and CSRF token."""
    first = seeded.client.get("/admin", headers={"accept-language": "en"}).text
    other = make_admin(seeded, "second.admin@example.co.jp")
    assert login(seeded.client, other.email, other.password).status_code == 303
    second = seeded.client.get("/admin", headers={"accept-language": "en"}).text
    assert csrf_of(second) != csrf_of(first) and csrf_of(first) not in second
    assert "second.admin@example.co.jp" in second and "second.admin@example.co.jp" not in first


def _scan(h: Harness, when: datetime, outcome: Outcome, employee_id: int | None, ua: str = "Phone") -> ScanEvent:
    return ScanEvent(time=when, outcome=outcome, employee_id=employee_id, user_agent=ua)


def test_scan_log_filters_and_pages(seeded: Harness) -> None:
    taro = seeded.run(seeded.service.find_employee, "taro@example.co.jp")
    base = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    add_events(seeded, *[_scan(seeded, base + timedelta(hours=i), Outcome.VIEW, taro.id) for i in range(120)])
    add_events(seeded, _scan(seeded, base, Outcome.UNKNOWN, None))
    html = seeded.client.get("/admin/scans", headers={"accept-language": "en"}).text
    assert "121 events" in html
    # keyset pages: "Older" continues after the last row shown, "Newer" goes back before the first
    url: str | None = f"/admin/scans?employee={taro.id}&outcome=view"
    sizes, first_rows = [], []
    while url is not None:
        html = seeded.client.get(url, headers={"accept-language": "en"}).text
        assert "120 events" in html
        sizes.append(html.count('<td class="mono">'))
        first_rows.append(html[html.index("<tbody>"):html.index("</tbody>")].split("<tr>")[1])
        older = re.search(r'href="(/admin/scans\?[^"]*)" rel="next"', html)
        url = unescape(older[1]) if older else None
    assert sizes == [50, 50, 20]
    newer = re.search(r'href="(/admin/scans\?[^"]*)" rel="prev"', html)
    assert newer is not None
    back = seeded.client.get(unescape(newer[1]), headers={"accept-language": "en"}).text
    assert back.count('<td class="mono">') == 50 and first_rows[1] in back and 'rel="prev"' in back
    html = seeded.client.get("/admin/scans?outcome=unknown", headers={"accept-language": "en"}).text
    assert "1 events" in html
    # 2026-11-20 03:00 UTC is 12:00 in Tokyo; the 20th (Tokyo) holds hours 0..11 after it
    html = seeded.client.get("/admin/scans?from=2026-11-20&to=2026-11-20&outcome=view",
                             headers={"accept-language": "en"}).text
    assert "12 events" in html
    for odd in ("page=-3", "page=1e9", "employee=999999", "before=abc", "after=-1", "before=99999999999999999999"):
        r = seeded.client.get(f"/admin/scans?{odd}", headers={"accept-language": "en"})
        assert r.status_code == 200, odd
    for bad in ("employee=abc", "employee=99999999999999999999999", "outcome=nope", "from=2026-13-45", "to=yesterday",
                "from=2026-11-21&to=2026-11-20"):
        r = seeded.client.get(f"/admin/scans?{bad}", headers={"accept-language": "en"})
        assert r.status_code == 400 and "not understood" in r.text and "events" in r.text, bad
    assert "not understood" in seeded.client.get("/admin/scans?outcome=nope",
                                                 headers={"accept-language": "en"}).text


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31", "from=0001-01-01", "to=0001-01-01",
                                   "from=0001-01-01&to=9999-12-31"])
@pytest.mark.parametrize("path", ["/admin/scans", "/admin/scans.csv"])
def test_dates_at_the_calendars_edges_are_a_clear_400(seeded: Harness, path: str, query: str) -> None:
    """Review finding 15: the first and last days of the calendar have no UTC bounds; they were a 500 (or a
    CSV stream cut mid-way)."""
    r = seeded.client.get(f"{path}?{query}", headers={"accept-language": "en"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "not understood" in r.text
    # the days just inside the edges still filter (and find nothing)
    r = seeded.client.get(f"{path}?from=0001-01-02&to=9999-12-30", headers={"accept-language": "en"})
    assert r.status_code == 200


def test_scan_csv_has_bom_filters_and_neutralised_formulas(seeded: Harness) -> None:
    taro = seeded.run(seeded.service.find_employee, "taro@example.co.jp")
    when = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    phones = [dataclasses.replace(_scan(seeded, when, Outcome.VIEW, taro.id, ua=ua), device="iPhone")
              for ua in ('=HYPERLINK("http://evil.example","x")', "+1+1", "-2", "@SUM(A1)", "\tTab", "\rCR")]
    bot = dataclasses.replace(_scan(seeded, when, Outcome.UNKNOWN, None, ua="Plain, with comma"), is_bot=True,
                              device="=Bot")
    add_events(seeded, *phones, bot)
    r = seeded.client.get("/admin/scans.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    agents = [row["user_agent"] for row in rows]
    assert agents == ["Plain, with comma", "'\rCR", "'\tTab", "'@SUM(A1)", "'-2", "'+1+1",  # newest first
                      '\'=HYPERLINK("http://evil.example","x")']
    assert rows[-1]["local_time"] == "2026-11-27 09:00:00" and rows[-1]["time"] == "2026-11-27T00:00:00Z"
    assert list(rows[0]) == list(csvexport.EVENT_HEADER)
    assert [(r["is_bot"], r["device"]) for r in rows] == [("1", "'=Bot")] + [("0", "iPhone")] * 6
    only = list(csv.DictReader(io.StringIO(
        seeded.client.get("/admin/scans.csv?outcome=unknown").content.decode("utf-8-sig"))))
    assert [row["outcome"] for row in only] == ["unknown"]
    empty = seeded.client.get("/admin/scans.csv?from=2020-01-01&to=2020-01-02").content
    assert empty.decode("utf-8-sig").splitlines() == [",".join(csvexport.EVENT_HEADER)]


def test_csv_export_is_complete_across_pages(seeded: Harness) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    add_events(seeded, *[_scan(seeded, base + timedelta(minutes=i), Outcome.UNKNOWN, None) for i in range(2500)])
    rows = list(csv.DictReader(io.StringIO(seeded.client.get("/admin/scans.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 2500 and len({r["id"] for r in rows}) == 2500


def test_exports_page_by_keyset_so_rows_written_meanwhile_neither_shift_nor_join(
        seeded: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """All three CSV exports read through Service.scan_csv / audit_pages."""
    monkeypatch.setattr(service_module, "EXPORT_PAGE", 7)
    monkeypatch.setattr(service_module, "EXPORT_CHUNK", 7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    add_events(seeded, *[_scan(seeded, base + timedelta(minutes=i), Outcome.UNKNOWN, None) for i in range(30)])
    before = [e.id for e in seeded.events()]

    async def export_while_scans_arrive() -> list[int]:
        seen: list[int] = []
        async for text, _ in seeded.service.scan_csv(reports.ScanFilter()):
            seen.extend(int(line.split(",", 1)[0]) for line in text.splitlines())
            async with seeded.service._store.transaction():  # a scan committed between two pages
                await seeded.service._store.insert_events([_scan(seeded, base, Outcome.UNKNOWN, None)])
        return seen

    assert seeded.run(export_while_scans_arrive) == sorted(before, reverse=True)
    audit_ids = [r.id for r in seeded.run(seeded.service.audit_log, limit=1000)]

    async def audit_export() -> list[int]:
        return [r.id async for page in seeded.service.audit_pages() for r in page]

    assert seeded.run(audit_export) == audit_ids


def test_audit_csv_has_bom_and_neutralised_cells(seeded: Harness) -> None:
    seeded.run(accounts(seeded).audit, '=HYPERLINK("http://evil.example")', "employee.update", "-target",
               {"title": "=1+1"}, None)
    r = seeded.client.get("/admin/audit.csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0]["actor"] == '\'=HYPERLINK("http://evil.example")' and rows[0]["target"] == "'-target"
    assert rows[0]["before"] == '{"title": "=1+1"}'
    assert len(rows) == len(seeded.run(seeded.service._store.audit_events, limit=10_000))
    mine = list(csv.DictReader(io.StringIO(
        seeded.client.get("/admin/audit.csv?actor=nobody").content.decode("utf-8-sig"))))
    assert mine == []


def test_csvexport_neutralise() -> None:
    for cell in ("=1", "+1", "-1", "@x", "\tx", "\rx"):
        assert csvexport.neutralise(cell) == "'" + cell
    assert csvexport.neutralise("plain") == "plain" and csvexport.neutralise(None) == ""
    assert csvexport.neutralise(-5) == "'-5"


def test_the_dashboard_chart_keeps_a_day_after_its_events_are_purged(seeded: Harness, clock: FakeClock) -> None:
    from dataclasses import replace

    issued = seeded.run(seeded.service.current_card, "taro@example.co.jp")
    assert issued is not None
    seeded.client.get(seeded.path(issued), headers={"user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"})
    company = seeded.run(seeded.service.company)
    seeded.run(seeded.service.save_company, replace(company, retention_days=1), actor="cli")
    clock.advance(days=3)
    assert seeded.run(seeded.service.purge) >= 1
    assert seeded.run(seeded.service._store.count_events) == 0
    days = seeded.run(seeded.service.dashboard).days
    assert [(d.day, d.count) for d in days if d.count] == [(date(2026, 11, 28), 1)]


def test_the_scan_log_counts_no_further_than_ten_thousand(seeded: Harness) -> None:
    base = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    add_events(seeded, *[_scan(seeded, base + timedelta(seconds=i), Outcome.VIEW, None) for i in range(10_001)])
    html = seeded.client.get("/admin/scans", headers={"accept-language": "en"}).text
    assert "10,000+ events" in html and html.count('<td class="mono">') == 50
