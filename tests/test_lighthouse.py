"""Lighthouse (mobile) on the customer's card page, served by a real ``contactcard serve`` on 127.0.0.1.

Performance, accessibility and best practices must score 100; in SEO every audit must pass except
``is-crawlable``, which fails on purpose (a card is ``noindex``: a person's contact page is not for search
engines). One run, all four categories (about 15 s on a quiet machine; see PERFORMANCE_RUNS). Skipped when
Chromium, node or lighthouse is missing, unless CONTACTCARD_REQUIRE_BROWSER=1 (CI), where that is a failure.
The scores of each run go to ``test-artifacts/lighthouse-card.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .live_server import LiveServer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
LIGHTHOUSE = ROOT / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROME_FLAGS = ("--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
                "--disable-sync")
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
# Lighthouse's mobile preset slows the observed CPU work by 4x, so on a machine whose cores other processes keep
# busy a run can lose performance points (total blocking time) that a quiet run of the same page does not:
# performance alone may take up to this many runs (Lighthouse's own advice for variance is several runs), and
# so may a run Lighthouse could not complete (its trace lost on a busy machine).
PERFORMANCE_RUNS = 3
_RUNTIME_ERROR = re.compile(r"Runtime error encountered: .*\(([A-Z_]+)\)")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_missing = [what for what, there in (("/usr/bin/chromium", CHROMIUM.exists()), ("node", shutil.which("node")),
                                     ("lighthouse (npm)", LIGHTHOUSE.exists())) if not there]
if _missing:
    if os.environ.get("CONTACTCARD_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"CONTACTCARD_REQUIRE_BROWSER=1 but {', '.join(_missing)} is missing "
                           "(apt-get install chromium nodejs; npm install --no-save lighthouse@12)")
    pytest.skip(f"{', '.join(_missing)} is missing; set CONTACTCARD_REQUIRE_BROWSER=1 to fail instead",
                allow_module_level=True)


@pytest.fixture(scope="module")
def card_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("lighthouse")
    server = LiveServer({"CONTACTCARD_DATA_DIR": str(tmp / "data")}, tmp / "server.log")
    (tmp / "data").mkdir()
    server.cli("company", "set", "--name", "株式会社サンプル", "--name-en", "Sample K.K.", "--phone", "03-1234-0000",
               "--email", "info@example.co.jp", "--hours", "平日 9:00–18:00", "--allow-phone-prefix", "+813",
               "--allow-email-domain", "example.co.jp", "--leads", "on")  # audited with its contact form
    server.cli("employee", "add", "--email", "taro@example.co.jp", "--name", "山田 太郎", "--kana", "ヤマダ タロウ",
               "--title", "課長", "--department", "営業部")
    server.cli("channel", "add", "--employee", "taro@example.co.jp", "--kind", "phone", "--target", "03-1234-5679")
    server.cli("channel", "add", "--employee", "taro@example.co.jp", "--kind", "email", "--target",
               "taro@example.co.jp")
    card = server.cli("card", "issue", "--employee", "taro@example.co.jp").splitlines()[0]
    server.start()
    try:
        yield server.base + urlsplit(card).path
    finally:
        server.stop()


def _lighthouse(url: str) -> dict[str, Any]:
    """One Lighthouse run's report; a run Lighthouse itself could not complete (a trace lost on a machine too
    busy, "NO_NAVSTART") comes back as ``{"runtimeError": ...}`` for the caller to count as a lost run."""
    result = subprocess.run(
        ["node", str(LIGHTHOUSE), url, "--output=json", "--output-path=stdout", "--quiet", "--form-factor=mobile",
         f"--only-categories={','.join(CATEGORIES)}", f"--chrome-flags={CHROME_FLAGS}"],
        env={**os.environ, "CHROME_PATH": str(CHROMIUM)}, cwd=ROOT, capture_output=True, text=True, timeout=180)
    lost = _RUNTIME_ERROR.search(result.stderr)
    if result.returncode != 0 and lost:  # it exits 1 and says so on stderr; the report may be missing
        return {"runtimeError": {"code": lost[1]}}
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _failing(report: dict[str, Any], category: str) -> list[str]:
    audits = report["audits"]
    return sorted(f"{ref['id']}: {audits[ref['id']].get('displayValue') or audits[ref['id']]['title']}"
                  for ref in report["categories"][category]["auditRefs"]
                  if ref["weight"] > 0 and audits[ref["id"]]["score"] is not None and audits[ref["id"]]["score"] < 1)


def test_the_card_page_scores_100_on_lighthouse_mobile_apart_from_the_deliberate_noindex(card_url: str) -> None:
    runs: list[dict[str, Any]] = []
    for _ in range(PERFORMANCE_RUNS):
        report = _lighthouse(card_url)
        if report.get("runtimeError"):
            runs.append({"runtimeError": report["runtimeError"].get("code")})
            continue
        scores = {name: report["categories"][name]["score"] for name in CATEGORIES}
        runs.append(scores)
        for category in ("accessibility", "best-practices"):
            assert scores[category] == 1, (category, scores[category], _failing(report, category))
        assert [f.split(":")[0] for f in _failing(report, "seo")] == ["is-crawlable"], _failing(report, "seo")
        assert report["audits"]["meta-description"]["score"] == 1
        if scores["performance"] == 1:
            break
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "lighthouse-card.json").write_text(json.dumps(runs, indent=1))
    assert runs[-1].get("performance") == 1, (runs, report.get("runtimeError") or _failing(report, "performance"))
