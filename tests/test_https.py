"""Issue 8 item 2 and finding 20: an https base URL means __Host- Secure cookies and HSTS on every response;
plain http is refused beyond loopback unless --insecure."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from contactcard.app import create_app
from contactcard.config import DEFAULT_HSTS, Settings
from contactcard.models import ValidationError

from .accounts_kit import ADMIN_EMAIL, login, make_admin
from .conftest import FakeClock, Harness
from .live_server import ROOT


def test_every_response_carries_hsts_with_an_https_base_url(harness: Harness) -> None:
    path = harness.path(harness.seed())
    responses = [harness.client.get(path), harness.client.get(path + "/vcard"), harness.client.get("/login"),
                 harness.client.get("/admin"), harness.client.get("/no/such/page"), harness.client.get("/c/short"),
                 harness.client.get("/healthz"), harness.client.post("/login", data={})]
    assert [r.status_code for r in responses] == [200, 200, 200, 303, 404, 404, 200, 403]
    for r in responses:
        assert r.headers.get_list("strict-transport-security") == [DEFAULT_HSTS]


def test_no_hsts_and_plain_cookies_over_http(tmp_path: Path, clock: FakeClock) -> None:
    settings = Settings(db_path=tmp_path / "x.sqlite3", base_url="http://127.0.0.1:8000", secret_file=tmp_path / "s")
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1", follow_redirects=False) as c:
        make_admin(Harness(c))
        r = login(c, ADMIN_EMAIL)
        assert "strict-transport-security" not in r.headers
        assert any(x.startswith("cc_session=") for x in r.headers.get_list("set-cookie"))


def test_includesubdomains_is_the_operators_choice(settings: Settings, clock: FakeClock) -> None:
    value = "max-age=63072000; includeSubDomains"
    assert Settings.from_env({"CONTACTCARD_HSTS": value}).hsts == value
    assert Settings.from_env({"CONTACTCARD_HSTS": "off"}).hsts == ""
    with pytest.raises(ValidationError, match="CONTACTCARD_HSTS"):
        Settings.from_env({"CONTACTCARD_HSTS": "max-age=1\r\nX-Evil: 1"})
    app = create_app(dataclasses.replace(settings, hsts=value), clock=clock)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/login").headers["strict-transport-security"] == value


def test_only_the_host_prefixed_cookie_signs_in_over_https(harness: Harness) -> None:
    """A sibling subdomain can plant ``cc_session`` but never ``__Host-cc_session``: only the latter counts."""
    make_admin(harness)
    login(harness.client, ADMIN_EMAIL)
    token = harness.client.cookies["__Host-cc_session"]
    assert harness.client.get("/admin").status_code == 200
    harness.client.cookies.delete("__Host-cc_session")
    harness.client.cookies.set("cc_session", token)
    assert harness.client.get("/admin").status_code == 303


def _serve(*args: str, base_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTACTCARD_BASE_URL": base_url, "CONTACTCARD_DATA_DIR": "/nonexistent/never-created"}
    return subprocess.run([sys.executable, "-m", "contactcard.cli", "serve", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "cards.example.co.jp"])
def test_serve_refuses_plain_http_beyond_loopback(host: str) -> None:
    result = _serve("--host", host, "--port", "8765", base_url="http://cards.example.co.jp")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--insecure" in result.stderr and "https" in result.stderr


def test_serve_with_a_bad_trusted_proxy_is_one_line() -> None:
    result = _serve("--trusted-proxy", "10.0.0.0/99", base_url="http://127.0.0.1:8765")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "10.0.0.0/99" in result.stderr
