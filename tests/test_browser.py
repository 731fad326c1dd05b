"""The whole loop in Debian's Chromium: admin on a desktop, employee and customer on phones.

A real server (``contactcard serve``) runs in a subprocess on a free 127.0.0.1 port with a temporary database.
Nothing leaves 127.0.0.1: every request to another host is aborted and only recorded. Screenshots go to
``test-artifacts/``. Skipped when /usr/bin/chromium is missing, unless CONTACTCARD_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    if os.environ.get("CONTACTCARD_REQUIRE_BROWSER") == "1":
        raise RuntimeError("CONTACTCARD_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing "
                           "(apt-get install chromium fonts-noto-cjk)")
    pytest.skip("/usr/bin/chromium is missing (apt-get install chromium fonts-noto-cjk); "
                "set CONTACTCARD_REQUIRE_BROWSER=1 to fail instead", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402

from .live_server import LiveServer  # noqa: E402


class Server(LiveServer):
    """The live server with its data directory, and a look at the events it recorded."""

    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        super().__init__({"CONTACTCARD_DATA_DIR": str(self.data)}, tmp / "server.log")

    def events(self) -> list[tuple[str, str | None]]:
        conn = sqlite3.connect(self.data / "contactcard.sqlite3")
        try:
            return [(r[0], r[1]) for r in conn.execute("SELECT outcome, channel_kind FROM events ORDER BY id")]
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("browser"))
    (srv.data).mkdir(parents=True)
    pw = srv.data.parent / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    srv.cli("company", "set", "--name", "株式会社サンプル", "--name-en", "Sample K.K.", "--phone", "03-1234-0000",
            "--allow-phone-prefix", "+813", "--allow-email-domain", "example.co.jp")
    srv.cli("create-admin", "--email", "admin@example.co.jp", "--password-file", str(pw))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _phone(browser: Browser, p: Playwright | None = None) -> BrowserContext:
    return browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                               device_scale_factor=3, locale="ja-JP")


def _fence(context: BrowserContext, attempted: list[str], base: str) -> None:
    """Abort every request that would leave the test server; remember what was attempted.

    Playwright does not route the targets of redirects, so a channel tap (/go/, a 303 to the channel) is
    fetched here without following and answered with a stub page: the Location is recorded as attempted.
    """

    def handle(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc != urlsplit(base).netloc:
            attempted.append(url)
            route.abort()
        elif "/go/" in urlsplit(url).path:
            answer = route.fetch(max_redirects=0)
            location = answer.headers.get("location", "")
            attempted.append(location)
            route.fulfill(status=200, content_type="text/plain", headers={"x-go-status": str(answer.status)},
                          body=f"blocked by the test: {answer.status} {location}")
        else:
            route.continue_()

    context.route("**/*", handle)


def _accept_invitation(context: BrowserContext, invitation: str, base: str) -> Page:
    """The employee sets a password from the invitation link; returns the page, then at /me."""
    page = context.new_page()
    page.goto(invitation)
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/me")
    return page


def _shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _decode_qr(page: Page, name: str) -> list[str]:
    import zxingcpp
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    data = page.locator("#qr").screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def _sw_has_qr(page: Page) -> bool:
    return bool(page.evaluate("""async () => {
        await navigator.serviceWorker.ready;
        const cache = await caches.open('contactcard-me-v1');
        const keys = (await cache.keys()).map(r => new URL(r.url).pathname);
        return keys.includes('/me') && keys.some(k => k.startsWith('/me/qr/'));
    }"""))


def test_admin_employee_customer_loop(server: Server, browser: Browser) -> None:
    started = time.monotonic()
    attempted: list[str] = []
    base = server.base

    # --- the admin, on a desktop, signs in and sets up an employee with two channels and a card ------------
    admin_ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    _fence(admin_ctx, attempted, base)
    admin = admin_ctx.new_page()
    admin.on("dialog", lambda d: d.accept())
    admin.goto(f"{base}/admin?lang=en")
    assert urlsplit(admin.url).path == "/login"
    admin.fill("#email", "admin@example.co.jp")
    admin.fill("#password", PASSWORD)
    admin.click("form[action='/login'] button[type=submit]")
    admin.wait_for_url(f"{base}/admin*")
    _shot(admin, "01-admin-dashboard")

    admin.goto(f"{base}/admin/employees/new")
    admin.fill("[name=email]", "taro@example.co.jp")
    admin.fill("[name=family_name]", "山田")
    admin.fill("[name=given_name]", "太郎")
    admin.click("main form button[type=submit]")
    admin.wait_for_url(f"{base}/admin/employees/*")
    employee_path = urlsplit(admin.url).path.rstrip("/")
    assert employee_path.split("/")[-1].isdigit(), admin.url
    for kind, target in (("phone", "03-1234-5678"), ("web", "https://www.example.co.jp/")):
        admin.select_option("#ch-kind", kind)
        admin.fill("#ch-target", target)
        admin.click(f"form[action='{employee_path}/channels'] button[type=submit]")
        admin.wait_for_load_state()
    admin.click(f"form[action='{employee_path}/card/issue'] button[type=submit]")
    admin.wait_for_load_state()
    admin.click(f"form[action='{employee_path}/invite'] button[type=submit]")
    admin.wait_for_load_state()
    invitation = admin.locator(".invitation .mono").inner_text().strip()
    assert invitation.startswith(f"{base}/invite/")
    _shot(admin, "02-admin-employee")

    # --- the employee accepts the invitation on a phone; /me shows a QR that decodes to the card URL --------
    phone_ctx = _phone(browser)
    _fence(phone_ctx, attempted, base)
    me = _accept_invitation(phone_ctx, invitation, base)
    card_url = me.locator("#card-url").inner_text().strip()
    assert card_url.startswith(f"{base}/c/")
    assert _decode_qr(me, "03-me-qr") == [card_url]
    _shot(me, "04-me-phone")
    me.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== undefined")
    deadline = time.monotonic() + 10
    while not _sw_has_qr(me):
        assert time.monotonic() < deadline, "the service worker never cached /me and its QR"
        me.wait_for_timeout(200)

    # --- a customer opens the link on a phone and taps a channel (the tap never leaves 127.0.0.1) ---------
    customer_ctx = _phone(browser)
    _fence(customer_ctx, attempted, base)
    customer = customer_ctx.new_page()
    response = customer.goto(card_url)
    assert response is not None and response.status == 200
    assert "山田" in customer.content()
    _shot(customer, "05-customer-card")
    go_link = customer.locator("a[href*='/go/']").filter(has_text="www.example.co.jp").or_(
        customer.locator("a.button-web")).first
    with customer.expect_response(lambda r: "/go/" in r.url) as go:
        go_link.tap()
    assert go.value.headers["x-go-status"] == "303"
    assert "https://www.example.co.jp/" in attempted, attempted
    assert ("view", None) in server.events() and ("click", "web") in server.events()

    # --- the admin sees both events and revokes the card ---------------------------------------------------
    admin.goto(f"{base}/admin/scans?lang=en")
    scans = admin.content()
    assert "Card viewed" in scans and "Channel tapped" in scans
    _shot(admin, "06-admin-scans")
    admin.goto(f"{base}{employee_path}")
    admin.click(f"form[action='{employee_path}/card/revoke'] button[type=submit]")
    admin.wait_for_url(f"{base}{employee_path}/card/revoke*")
    still = customer.goto(card_url)
    assert still is not None and still.status == 200, "the button only asked; the card still works"
    confirm = admin.locator("section.confirm")
    assert "山田 太郎" in confirm.locator("h1").inner_text()
    assert "stop working at once" in confirm.inner_text()
    _shot(admin, "06b-admin-confirm-revoke")
    confirm.locator("button[type=submit]").click()
    admin.wait_for_url(f"{base}{employee_path}?done=revoked")

    gone = customer.goto(card_url)
    assert gone is not None and gone.status == 410
    _shot(customer, "07-customer-410")

    # --- /me offline: the cached QR first; after the revocation is seen online, no stale QR -----------------
    phone_ctx.set_offline(True)
    me.reload()
    assert me.locator("#qr").count() == 1, "offline, the cached page still shows the QR"
    assert _decode_qr(me, "08-me-offline-qr") == [card_url]
    assert me.locator("#offline-note").is_visible()
    _shot(me, "08-me-offline")
    phone_ctx.set_offline(False)
    me.reload()
    assert me.locator("#qr").count() == 0
    told = me.locator("main h1").inner_text()
    assert told == "名刺リンクは無効にされました", "the employee is told of the revocation, not 'no card yet'"
    _shot(me, "08b-me-revoked")
    phone_ctx.set_offline(True)
    me.reload()
    assert me.locator("#qr").count() == 0, "after the revocation was seen, no stale QR offline"
    stale = me.evaluate("""async () => {
        const cache = await caches.open('contactcard-me-v1');
        return (await cache.keys()).map(r => new URL(r.url).pathname).filter(p => p.startsWith('/me/qr/'));
    }""")
    assert stale == []
    _shot(me, "09-me-offline-revoked")
    phone_ctx.set_offline(False)

    for ctx in (admin_ctx, phone_ctx, customer_ctx):
        ctx.close()
    assert time.monotonic() - started < 60


def _offline_copy(page: Page) -> list[str]:
    """What the /me service worker's cache holds (any version of it), as paths."""
    return list(page.evaluate("""async () => {
        const paths = [];
        for (const name of (await caches.keys()).filter(n => n.startsWith('contactcard-me-'))) {
            const cache = await caches.open(name);
            paths.push(...(await cache.keys()).map(r => new URL(r.url).pathname));
        }
        return paths;
    }"""))


@pytest.mark.parametrize("how", ["tap", "page-script-only", "server-header-only"])
def test_signing_out_leaves_no_offline_copy_on_the_phone(server: Server, browser: Browser, how: str) -> None:
    """Finding 10: signed in, /me loaded twice, signed out, offline: /me shows nothing of the employee.

    "tap" is the real button; the other two prove each half on its own: the page deleting the cache before
    it posts (with Clear-Site-Data stripped from the answer), and the answer's Clear-Site-Data (the form
    posted by script, which skips me.js's submit handler).
    """
    email = f"signout-{how}@example.co.jp"
    server.cli("employee", "add", "--email", email, "--name", "鈴木 一郎")
    server.cli("channel", "add", "--employee", email, "--kind", "phone", "--target", "03-1234-5681")
    server.cli("card", "issue", "--employee", email)
    invitation = server.cli("user", "invite", "--employee", email).splitlines()[0]
    attempted: list[str] = []
    phone_ctx = _phone(browser)
    _fence(phone_ctx, attempted, server.base)
    if how == "page-script-only":
        def without_clear_site_data(route: Route) -> None:
            answer = route.fetch(max_redirects=0)
            route.fulfill(response=answer, headers={k: v for k, v in answer.headers.items()
                                                    if k.lower() != "clear-site-data"})

        phone_ctx.route("**/logout", without_clear_site_data)
    me = _accept_invitation(phone_ctx, invitation, server.base)
    me.reload()
    deadline = time.monotonic() + 10
    while not _sw_has_qr(me):
        assert time.monotonic() < deadline, "the service worker never cached /me and its QR"
        me.wait_for_timeout(200)

    if how == "server-header-only":
        me.evaluate("document.querySelector(\"form[action='/logout']\").submit()")
    else:
        me.click("form[action='/logout'] button[type=submit]")
    me.wait_for_url(f"{server.base}/login*")
    phone_ctx.set_offline(True)
    with contextlib.suppress(PlaywrightError):  # no copy to show: the browser's own offline error page
        me.goto(f"{server.base}/me")
    assert me.locator("#qr").count() == 0 and "鈴木" not in me.content()
    _shot(me, f"10-me-offline-after-sign-out-{how}")
    phone_ctx.set_offline(False)
    me.goto(f"{server.base}/login")
    assert _offline_copy(me) == [], "nothing of the account is left in the cache"
    phone_ctx.close()
    assert attempted == []


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def _axe_violations(page: Page) -> list[tuple[str, str, int]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})")
    return [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]]


def test_customer_sign_in_and_admin_pages_pass_axe(server: Server, browser: Browser) -> None:
    """WCAG 2 A/AA and best-practice rules, in both languages, on the pages customers and staff see first."""
    if not AXE.exists():
        if os.environ.get("CONTACTCARD_REQUIRE_BROWSER") == "1":
            raise AssertionError("axe-core is missing: npm install --no-save axe-core@4 (CI does this)")
        pytest.skip("axe-core is not installed (npm install --no-save axe-core@4)")
    server.cli("employee", "add", "--email", "hanako@example.co.jp", "--name", "佐藤 花子", "--kana", "サトウ ハナコ",
               "--title", "主任")
    server.cli("channel", "add", "--employee", "hanako@example.co.jp", "--kind", "phone", "--target", "03-1234-5680")
    card = server.cli("card", "issue", "--employee", "hanako@example.co.jp").splitlines()[0]
    card_path = urlsplit(card).path
    # axe is injected as a script: the test browser alone bypasses the page's CSP (the server still sends it)
    phone = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True,
                                bypass_csp=True)
    attempted: list[str] = []
    _fence(phone, attempted, server.base)
    page = phone.new_page()
    for path in (card_path, card_path + "?lang=en", card_path + "?lang=zh-Hans", card_path + "?lang=zh-Hant",
                 card_path + "?lang=ko", "/c/AAAAAAAAAAAAAAAAAAAA", "/login?lang=ja", "/login?lang=en"):
        page.goto(server.base + path)
        assert _axe_violations(page) == [], path
    desktop = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    _fence(desktop, attempted, server.base)
    admin = desktop.new_page()
    admin.goto(f"{server.base}/login")
    admin.fill("#email", "admin@example.co.jp")
    admin.fill("#password", PASSWORD)
    admin.click("form[action='/login'] button[type=submit]")
    admin.wait_for_url(f"{server.base}/admin*")
    hanako = next(e["id"] for e in json.loads(server.cli("employee", "list", "--json"))
                  if e["email"] == "hanako@example.co.jp")
    for path in ("/admin?lang=ja", "/admin?lang=en", "/admin/employees", "/admin/scans", "/admin/settings",
                 f"/admin/employees/{hanako}/card/revoke", f"/admin/employees/{hanako}/depart?lang=en",
                 "/admin/leads", "/admin/privacy?email=hanako@example.co.jp", "/admin/privacy?email=x"):
        admin.goto(server.base + path)
        assert _axe_violations(admin) == [], path
    assert attempted == []


def test_every_language_fits_a_320_px_phone_with_48_px_language_targets(server: Server, browser: Browser) -> None:
    """The card in each of the five languages on the narrowest phone: nothing scrolls sideways, the switch lists
    all five, each of its targets is at least 48 x 48 CSS px and inside the screen, and a tap on one switches."""
    server.cli("employee", "add", "--email", "jiro@example.co.jp", "--name", "鈴木 次郎", "--kana", "スズキ ジロウ",
               "--latin", "Jiro Suzuki", "--title", "営業部 主任")
    server.cli("channel", "add", "--employee", "jiro@example.co.jp", "--kind", "phone", "--target", "03-1234-5681")
    card_url = server.cli("card", "issue", "--employee", "jiro@example.co.jp").splitlines()[0]
    phone = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True,
                                device_scale_factor=2)
    attempted: list[str] = []
    _fence(phone, attempted, server.base)
    page = phone.new_page()
    for lang in ("ja", "en", "zh-Hans", "zh-Hant", "ko"):
        page.goto(f"{card_url}?lang={lang}")
        assert page.get_attribute("html", "lang") == lang
        assert page.evaluate("document.documentElement.scrollWidth") <= 320, lang
        targets = page.locator("nav.lang a, nav.lang [aria-current]")
        assert targets.count() == 5
        for i in range(5):
            box = targets.nth(i).bounding_box()
            assert box is not None and box["width"] >= 48 and box["height"] >= 48, (lang, i, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= 320, (lang, i, box)
        assert ("Jiro Suzuki" in page.content()) == (lang != "ja")
        _shot(page, f"09-customer-320px-{lang}")
    page.tap("nav.lang a[hreflang=zh-Hant]")  # from the Korean page
    page.wait_for_url("**lang=zh-Hant")
    assert page.get_attribute("html", "lang") == "zh-Hant" and "儲存聯絡人" in page.content()
    assert attempted == []


def test_the_contact_form_fits_a_320px_phone_passes_axe_and_keeps_what_was_typed(server: Server,
                                                                                 browser: Browser) -> None:
    """The card page with the company's contact form on, at 320 CSS pixels: no sideways scrolling, axe clean
    (empty and with errors), and a post the server sends back (sooner than the minimum fill time, a phone
    number in words) shows the errors with everything typed still there."""
    if not AXE.exists():
        if os.environ.get("CONTACTCARD_REQUIRE_BROWSER") == "1":
            raise AssertionError("axe-core is missing: npm install --no-save axe-core@4 (CI does this)")
        pytest.skip("axe-core is not installed (npm install --no-save axe-core@4)")
    server.cli("employee", "add", "--email", "saburo@example.co.jp", "--name", "田中 三郎", "--title", "営業部長")
    server.cli("channel", "add", "--employee", "saburo@example.co.jp", "--kind", "phone", "--target", "03-1234-5681")
    card_path = urlsplit(server.cli("card", "issue", "--employee", "saburo@example.co.jp").splitlines()[0]).path
    server.cli("company", "set", "--leads", "on")
    try:
        phone = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True,
                                    device_scale_factor=2, locale="ja-JP", bypass_csp=True)
        attempted: list[str] = []
        _fence(phone, attempted, server.base)
        page = phone.new_page()
        for lang in ("ja", "en", "zh-Hans", "zh-Hant", "ko"):
            page.goto(f"{server.base}{card_path}?lang={lang}")
            assert page.locator("#lead form").count() == 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 320, lang
            assert _axe_violations(page) == [], lang
        page.goto(f"{server.base}{card_path}?lang=ja")
        typed = {"#lead-name": "鈴木 一郎", "#lead-organisation": "株式会社テスト", "#lead-email": "ichiro@example.com",
                 "#lead-phone": "お昼以降", "#lead-message": "見積もりをお願いします。"}
        for selector, value in typed.items():
            page.fill(selector, value)
        page.check("#lead-consent")
        page.click("#lead button[type=submit]")
        page.wait_for_selector("#lead .form-problem")
        assert "電話番号は数字でご入力ください" in page.inner_text("#lead")
        assert {s: page.input_value(s) for s in typed} == typed, "nothing typed was lost"
        assert page.is_checked("#lead-consent")
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        assert _axe_violations(page) == []
        _shot(page, "lead-form-320-errors")
        phone.close()
        assert attempted == []
    finally:
        server.cli("company", "set", "--leads", "off")
