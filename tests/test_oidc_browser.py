"""Signing out at the identity provider, in Debian's Chromium: the front desk's shared browser.

A real server (``contactcard serve``) with single sign-on configured against node's ``oidc-provider``
(``tests/test_oidc.py``'s provider), both on 127.0.0.1; every request to another host is aborted. The browser
is what the in-process tests cannot be: it applies the page's CSP (``form-action``) to the sign-out form's
redirect to the provider, runs ``me.js``'s sign-out handler, and keeps the provider's session in its own cookies.
Skipped when Chromium or node's oidc-provider is missing, unless CONTACTCARD_REQUIRE_BROWSER=1 or
CONTACTCARD_REQUIRE_OIDC=1 (CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from .accounts_kit import EMPLOYEE_EMAIL
from .live_server import LiveServer
from .test_browser import ARGS, CHROMIUM  # importing these skips (or fails) without Chromium, as there
from .test_oidc import CLIENT_ID, CLIENT_SECRET, Provider  # and without node's oidc-provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Site:
    """The provider and our server, each knowing the other's address."""

    def __init__(self, tmp: Path) -> None:
        self.provider = Provider(tmp)
        secret = tmp / "oidc-client-secret"
        secret.write_text(CLIENT_SECRET + "\n")
        secret.chmod(0o600)
        self.server = LiveServer({"CONTACTCARD_DATA_DIR": str(tmp / "data"),
                                  "CONTACTCARD_OIDC_ISSUER": self.provider.issuer,
                                  "CONTACTCARD_OIDC_CLIENT_ID": CLIENT_ID,
                                  "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": str(secret),
                                  "CONTACTCARD_OIDC_NAME": "Acme ID"}, tmp / "server.log")
        self.provider.base_url = self.server.base
        self.base = self.server.base


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("oidc-browser"))
    s.provider.start()
    try:
        s.server.cli("company", "set", "--name", "株式会社サンプル")
        s.server.cli("employee", "add", "--email", EMPLOYEE_EMAIL, "--name", "山田 太郎")
        s.server.start()
        yield s
    finally:
        s.server.stop()
        s.provider.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def sign_in_with_the_provider(page: Page, site: Site, account: str) -> None:
    """Press "Sign in with Acme ID"; the provider asks who it is: the account is posted, as its form would."""
    page.goto(f"{site.base}/login")
    page.click("a[href='/login/oidc']")
    page.wait_for_url(f"{site.provider.issuer}/interaction/**")
    answer = page.context.request.post(page.url, form={"account": account}, max_redirects=0)
    assert answer.status == 303, answer.text()
    page.goto(answer.headers["location"])  # back through the provider to our callback, then home


def test_signing_out_at_the_front_desk_signs_out_at_the_provider_too(site: Site, browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    attempted: list[str] = []

    def fence(route: Route) -> None:  # 127.0.0.1 only (the provider's pages import a web font)
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            attempted.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", fence)
    page = context.new_page()
    sign_in_with_the_provider(page, site, "taro-1")
    page.wait_for_url(f"{site.base}/me")
    # What the front desk suffered: the next press of the button signs taro straight back in, no questions.
    page.goto(f"{site.base}/login/oidc")
    page.wait_for_url(f"{site.base}/me")

    hints: list[str] = []
    page.on("request", lambda request: hints.extend(parse_qs(urlsplit(request.url).query).get("id_token_hint", [])))
    with page.expect_response(f"{site.base}/logout") as signed_out:
        page.click("form[action='/logout'] button[type=submit]")
    assert signed_out.value.status == 303
    assert signed_out.value.all_headers()["clear-site-data"] == '"cache", "storage"'
    # Not blocked by the page's CSP: the browser followed the form's redirect to the provider's sign-out page.
    page.wait_for_url(f"{site.provider.issuer}/session/end?*")
    assert len(hints) == 1
    page.click("button[name=logout][value=yes]")  # the provider asks; taro confirms
    page.wait_for_url(f"{site.base}/login")
    assert page.locator("a[href='/login/oidc']").inner_text().strip() == "Sign in with Acme ID"
    assert page.locator("form[action='/logout']").count() == 0

    # The next person presses the button: the provider asks who they are.
    page.goto(f"{site.base}/login/oidc")
    page.wait_for_url(f"{site.provider.issuer}/interaction/**")
    context.close()
    assert {urlsplit(url).hostname for url in attempted} <= {"fonts.googleapis.com"}  # the provider's pages' font

    _header, payload, signature = hints[0].split(".")
    log = site.server.log.read_text(errors="replace")
    assert payload not in log and signature not in log, "the ID token is in the server's log"
