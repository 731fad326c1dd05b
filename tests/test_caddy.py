"""Issue 8 items 1, 2 and 7: the real server behind real Caddy (``tls internal`` on 127.0.0.1), over HTTPS.

Caddy terminates TLS with its own CA and passes the client address in ``X-Forwarded-For``; the server trusts
127.0.0.1 (where Caddy connects from) and nothing else. Clients bind distinct loopback addresses (127.0.0.2 …)
so they are distinct customers. Skipped when Debian's ``caddy`` is missing, unless CONTACTCARD_REQUIRE_CADDY=1.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from bench.caddy import Caddy
from bench.processes import free_port

from .live_server import LiveServer

pytestmark = pytest.mark.slow

if shutil.which("caddy") is None:
    if os.environ.get("CONTACTCARD_REQUIRE_CADDY") == "1":
        raise RuntimeError("CONTACTCARD_REQUIRE_CADDY=1 but caddy is missing (apt-get install caddy)")
    pytest.skip("caddy is missing (apt-get install caddy); set CONTACTCARD_REQUIRE_CADDY=1 to fail instead",
                allow_module_level=True)

PASSWORD = "correct horse battery"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Site:
    app: LiveServer
    https: str
    db: Path
    card: str
    admin_link: str

    def client(self, address: str, *, direct: bool = False) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(local_address=address, verify=False),
                            base_url=self.app.base if direct else self.https, follow_redirects=False, timeout=15)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    port = free_port()
    https = f"https://127.0.0.1:{port}"
    db = tmp_path / "cc.sqlite3"
    app = LiveServer({"CONTACTCARD_DB": str(db), "CONTACTCARD_SECRET_FILE": str(tmp_path / "secret.key"),
                      "CONTACTCARD_BASE_URL": https, "CONTACTCARD_TRUSTED_PROXIES": "127.0.0.1"},
                     tmp_path / "server.log")
    app.cli("company", "set", "--name", "Acme", "--email", "info@acme.example", "--allow-email-domain",
            "acme.example", "--allow-phone-prefix", "+813")
    app.cli("employee", "add", "--email", "taro@acme.example", "--name", "山田 太郎")
    app.cli("channel", "add", "--employee", "taro@acme.example", "--kind", "phone", "--target", "tel:03-1234-5679")
    card = app.cli("card", "issue", "--employee", "taro@acme.example").split()[0]
    admin_link = next(w for w in app.cli("create-admin", "--email", "admin@acme.example").split() if "/invite/" in w)
    assert card.startswith(https + "/c/") and admin_link.startswith(https + "/invite/"), "generated links are https"
    app.start()
    caddy = Caddy(tmp_path, app.port, https_port=port)
    try:
        caddy.wait_ready()
        yield Site(app, https, db, card.removeprefix(https), admin_link.removeprefix(https))
    finally:
        caddy.stop()
        app.stop()


def _visitor_keys(db: Path, user_agent: str) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [r[0] for r in conn.execute("SELECT visitor_key FROM events WHERE user_agent = ? ORDER BY id",
                                           (user_agent,))]


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field"
    return found[1]


def test_through_caddy_over_https(site: Site) -> None:
    # two customers with the same phone model, from two addresses: two visitors (through the proxy)
    for address in ("127.0.0.2", "127.0.0.3"):
        with site.client(address) as c:
            r = c.get(site.card, headers={"User-Agent": PHONE})
            assert r.status_code == 200 and r.url.scheme == "https"
            assert r.headers["strict-transport-security"] == "max-age=63072000"
    # the same customer sending a forged X-Forwarded-For through Caddy stays the same visitor
    with site.client("127.0.0.3") as c:
        assert c.get(site.card, headers={"User-Agent": PHONE, "X-Forwarded-For": "203.0.113.9"}).status_code == 200
    keys = _visitor_keys(site.db, PHONE)
    assert len(keys) == 3 and keys[0] != keys[1] and keys[1] == keys[2]

    # a forged X-Forwarded-For sent straight to the app (not from the trusted proxy) is ignored
    forged = "forged-header-test"
    with site.client("127.0.0.6", direct=True) as c:
        for ip in ("203.0.113.10", "203.0.113.11", None):
            headers = {"User-Agent": forged, **({"X-Forwarded-For": ip} if ip else {})}
            assert c.get(site.card, headers=headers).status_code == 200
    assert len(set(_visitor_keys(site.db, forged))) == 1

    # the admin sets a password through the proxy: __Host- cookies, Secure, Path=/, no Domain
    with site.client("127.0.0.5") as admin:
        form = admin.get(site.admin_link)
        assert form.status_code == 200
        csrf_cookie = form.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-cc_csrf=")
        accepted = admin.post(site.admin_link, data={"csrf": _csrf(form.text), "password": PASSWORD,
                                                     "password2": PASSWORD})
        assert accepted.status_code == 303
        session_cookie = accepted.headers["set-cookie"]
        for cookie in (csrf_cookie, session_cookie):
            flags = {part.strip().lower() for part in cookie.split(";")}
            assert {"secure", "httponly", "path=/", "samesite=lax"} <= flags
            assert not any(f.startswith("domain") for f in flags)
        assert session_cookie.startswith("__Host-cc_session=")
        assert admin.get("/admin").status_code == 200, "the browser sends the __Host- cookie back over https"
        assert admin.get("/admin").headers["strict-transport-security"] == "max-age=63072000"
        assert admin.post("/logout", data={"csrf": _csrf(admin.get("/admin").text)}).status_code == 303

    # a stranger's failed sign-ins never block a colleague at another address
    with site.client("127.0.0.4") as stranger:
        csrf = _csrf(stranger.get("/login").text)
        statuses = [stranger.post("/login", data={"csrf": csrf, "email": "admin@acme.example",
                                                  "password": "wrong password!"}).status_code for _ in range(8)]
    assert statuses[0] == 400 and statuses[-1] == 429, statuses
    with site.client("127.0.0.5") as admin:
        csrf = _csrf(admin.get("/login").text)
        r = admin.post("/login", data={"csrf": csrf, "email": "admin@acme.example", "password": PASSWORD})
        assert r.status_code == 303, "the colleague signs in at once"

    log = site.app.log.read_text(errors="replace")
    for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "203.0.113"):
        assert address not in log
