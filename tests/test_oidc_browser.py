"""Signing out at the identity provider, in Debian's Chromium: the front desk's shared browser.

A real server (``contactcard serve``) with single sign-on configured against node's ``oidc-provider``
(``tests/test_oidc.py``'s provider), both on 127.0.0.1; the browser reaches our server by the name
``contactcard.test`` (mapped to 127.0.0.1 by Chromium's own resolver rules, never by DNS), so that for it they are two
sites, as a company's site and its provider are (a form posted from one to the other carries
only the provider's SameSite=None cookies); every request to another host is aborted. The browser
is what the in-process tests cannot be: it applies the page's CSP (``form-action``, ``script-src``) to the page
that posts the ID token to the provider, runs ``me.js``'s sign-out handler and ``sign_out.js``, keeps the
provider's session in its own cookies, and keeps a history, which must never hold the ID token.
Skipped when Chromium or node's oidc-provider is missing, unless CONTACTCARD_REQUIRE_BROWSER=1 or
CONTACTCARD_REQUIRE_OIDC=1 (CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Request, Route, sync_playwright

from bench.processes import free_port

from .accounts_kit import EMPLOYEE_EMAIL
from .live_server import LiveServer
from .test_browser import ARGS, AXE, CHROMIUM  # importing these skips (or fails) without Chromium, as there
from .test_oidc import CLIENT_ID, CLIENT_SECRET, Provider  # and without node's oidc-provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SITE = "contactcard.test"  # our server's name for the browser: another site than the provider's 127.0.0.1


class Site:
    """The provider and our server, each knowing the other's address."""

    def __init__(self, tmp: Path) -> None:
        self.provider = Provider(tmp, secure_cookies=True)
        secret = tmp / "oidc-client-secret"
        secret.write_text(CLIENT_SECRET + "\n")
        secret.chmod(0o600)
        port = free_port()
        self.base = f"http://{SITE}:{port}"
        self.server = LiveServer({"CONTACTCARD_DATA_DIR": str(tmp / "data"), "CONTACTCARD_BASE_URL": self.base,
                                  "CONTACTCARD_OIDC_ISSUER": self.provider.issuer,
                                  "CONTACTCARD_OIDC_CLIENT_ID": CLIENT_ID,
                                  "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": str(secret),
                                  "CONTACTCARD_OIDC_NAME": "Acme ID"}, tmp / "server.log", port=port)
        self.provider.base_url = self.base


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
def browser(site: Site) -> Iterator[Browser]:
    """Chromium reaching our server by its name at 127.0.0.1; its pages a secure context there, as over https
    (``/me``'s script and the provider's SameSite=None cookies need one; 127.0.0.1 is one already)."""
    args = [*ARGS, f"--host-resolver-rules=MAP {SITE} 127.0.0.1",
            f"--unsafely-treat-insecure-origin-as-secure={site.base}"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
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


class Fenced:
    """A context that reaches the provider and the server only (the provider's pages import a web font), noting
    every URL it requested and every address its pages navigated to (what the browser's history keeps)."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.attempted: list[str] = []
        self.requested: list[Request] = []
        self.visited: list[str] = []
        context.route("**/*", self._fence)
        context.on("request", self._requested)
        self.page = context.new_page()
        self.page.on("framenavigated", self._navigated)

    def _fence(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname not in ("127.0.0.1", SITE):
            self.attempted.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def _requested(self, request: Request) -> None:
        self.requested.append(request)

    def _navigated(self, frame: Frame) -> None:
        self.visited.append(frame.url)

    def posted_to_the_provider(self, site: Site) -> list[dict[str, list[str]]]:
        """The forms posted to the provider's sign-out endpoint (their bodies), and no token in any URL."""
        for url in [request.url for request in self.requested] + self.visited:
            assert "id_token_hint" not in url and "eyJ" not in url, url
        return [parse_qs(request.post_data or "") for request in self.requested
                if request.method == "POST" and request.url == f"{site.provider.issuer}/session/end"]


def test_signing_out_at_the_front_desk_signs_out_at_the_provider_too(site: Site, browser: Browser) -> None:
    fenced = Fenced(browser.new_context(locale="en-US"))
    page = fenced.page
    sign_in_with_the_provider(page, site, "taro-1")
    page.wait_for_url(f"{site.base}/me")
    # What the front desk suffered: the next press of the button signs taro straight back in, no questions.
    page.goto(f"{site.base}/login/oidc")
    page.wait_for_url(f"{site.base}/me")

    with page.expect_response(f"{site.base}/logout") as signed_out:
        page.click("form[action='/logout'] button[type=submit]")
    assert signed_out.value.status == 200
    assert signed_out.value.all_headers()["clear-site-data"] == '"cache", "storage"'
    # sign_out.js posted the page's form at once (the CSP let the script run and the form go to the provider);
    # the provider asks; taro confirms.
    page.wait_for_url(f"{site.provider.issuer}/session/end*")  # any address: the checks below read it
    page.click("button[name=logout][value=yes]")
    page.wait_for_url(f"{site.base}/login")
    assert page.locator("a[href='/login/oidc']").inner_text().strip() == "Sign in with Acme ID"
    assert page.locator("form[action='/logout']").count() == 0

    # The next person presses the button: the provider asks who they are.
    page.goto(f"{site.base}/login/oidc")
    page.wait_for_url(f"{site.provider.issuer}/interaction/**")
    fenced.context.close()
    assert {urlsplit(url).hostname for url in fenced.attempted} <= {"fonts.googleapis.com"}  # the provider's font

    # The token went to the provider once, in a form's body; no address requested or visited (the history) has it.
    posted = fenced.posted_to_the_provider(site)
    assert len(posted) == 1 and posted[0]["client_id"] == [CLIENT_ID], posted
    assert f"{site.base}/logout" in fenced.visited and f"{site.provider.issuer}/session/end" in fenced.visited
    _header, payload, signature = posted[0]["id_token_hint"][0].split(".")
    log = site.server.log.read_text(errors="replace")
    assert payload not in log and signature not in log, "the ID token is in the server's log"


def test_without_javascript_the_button_signs_out_at_the_provider_and_the_page_passes_axe(
        site: Site, browser: Browser) -> None:
    fenced = Fenced(browser.new_context(locale="ja-JP", java_script_enabled=False))
    page = fenced.page
    sign_in_with_the_provider(page, site, "taro-1")
    page.wait_for_url(f"{site.base}/me")
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url(f"{site.base}/logout")  # nothing submits the form: the page waits for the person
    button = page.locator("form#provider-sign-out button[type=submit]")
    assert button.inner_text().strip() == "Acme ID からのログアウトを続ける"
    html = page.content()

    button.click()
    page.wait_for_url(f"{site.provider.issuer}/session/end*")  # any address: the checks below read it
    page.click("button[name=logout][value=yes]")
    page.wait_for_url(f"{site.base}/login")
    page.goto(f"{site.base}/login/oidc")
    page.wait_for_url(f"{site.provider.issuer}/interaction/**")  # signed out there: asked who this is
    fenced.context.close()
    assert len(fenced.posted_to_the_provider(site)) == 1

    # axe needs script: the page as served, again at its address, in a context with script (and no sign_out.js,
    # which would post it away); the test browser alone bypasses the CSP to inject axe.
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm install --no-save axe-core@4)")
    checker = browser.new_context(bypass_csp=True)
    checker.route(f"{site.base}/logout", lambda route: route.fulfill(status=200, body=html,
                                                                     content_type="text/html; charset=utf-8"))
    checker.route("**/static/sign_out.js", lambda route: route.abort())
    again = checker.new_page()
    again.goto(f"{site.base}/logout")
    assert again.locator("form#provider-sign-out").count() == 1
    again.add_script_tag(path=str(AXE))
    result = again.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})")
    checker.close()
    assert [(v["id"], v["impact"]) for v in result["violations"]] == []
