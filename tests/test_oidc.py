"""Single sign-on (OpenID Connect) against a real, certified provider: node's ``oidc-provider`` on 127.0.0.1.

One provider serves the whole module (``tests/oidc_provider.mjs``, started once; restarted once with a new key
for the rotation test). Each test runs the real app in-process (``Harness``) with SSO configured; the browser's
part is played by the test client for our pages and a plain httpx client for the provider's, which signs in
by posting the account to the provider's interaction page and stops at the redirect back to us (never
following anything off 127.0.0.1). The provider signs with keys this module made, so the module can also forge
what a well-behaved provider never sends (a wrong audience, an expired token, a tampered payload): those are
put on the wire between our server and the provider's token endpoint by ``Wire``. Signing out at the provider
keeps one httpx client as the browser's side there (its cookies are the provider's session) from sign-in to
the provider's sign-out confirmation, posting the form of our sign-out page as the browser would; the same in
Chromium is ``tests/test_oidc_browser.py``.

Skipped when node or oidc-provider is missing, unless CONTACTCARD_REQUIRE_OIDC=1 (CI), which fails instead.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx2 as httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from contactcard import oidc, sso
from contactcard.accounts import PAIR_THRESHOLD
from contactcard.app import create_app
from contactcard.config import OidcSettings, Settings
from contactcard.models import EmployeeProfile, ValidationError

from .accounts_kit import ADMIN_EMAIL, EMPLOYEE_EMAIL, get, login, make_admin, make_employee, post_form
from .conftest import BASE_URL, Cli, FakeClock, Harness

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_JS = ROOT / "tests" / "oidc_provider.mjs"
CLIENT_ID = "contactcard"
CLIENT_SECRET = "s3cret-of-the-contactcard-client-0123456789"
REDIRECT_URI = f"{BASE_URL}/login/oidc/callback"
HANAKO = "hanako@example.co.jp"
# The provider's people: sub -> claims.
ACCOUNTS = {
    "admin-1": {"email": ADMIN_EMAIL, "email_verified": True, "name": "Admin"},
    "taro-1": {"email": EMPLOYEE_EMAIL, "email_verified": True, "name": "Taro Yamada"},
    "stranger-1": {"email": "stranger@example.co.jp", "email_verified": True, "name": "Stranger"},
    "hanako-unverified": {"email": HANAKO, "email_verified": False, "name": "Hanako Sato"},
    # As Microsoft Entra ID signs people in: the work address as preferred_username, no email_verified.
    "hanako-entra": {"preferred_username": HANAKO, "name": "Hanako Sato"},
    # Another person at the provider who has been given the admin's email (say, after the admin left).
    "reassigned-1": {"email": ADMIN_EMAIL, "email_verified": True, "name": "Someone Else"},
}


def _node_ready() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "oidc-provider" / "package.json").is_file()


if not _node_ready():
    if os.environ.get("CONTACTCARD_REQUIRE_OIDC") == "1":
        raise RuntimeError("CONTACTCARD_REQUIRE_OIDC=1 but node or node_modules/oidc-provider is missing "
                           "(npm install --no-save oidc-provider@9)")
    pytest.skip("node or oidc-provider is missing; set CONTACTCARD_REQUIRE_OIDC=1 to fail instead",
                allow_module_level=True)


def signing_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


class Provider:
    """The node process and what the test knows of it: its issuer, its current private signing key."""

    def __init__(self, workdir: Path, base_url: str = BASE_URL, *, secure_cookies: bool = False) -> None:
        from bench.processes import free_port

        self.workdir = workdir
        self.base_url = base_url  # contactcard's, whose sign-in and sign-out redirect URIs are registered
        self.secure_cookies = secure_cookies  # for Chromium: see oidc_provider.mjs
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = signing_key("key-1")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.workdir / "provider.json"
        config.write_text(json.dumps({
            "issuer": self.issuer, "port": self.port, "keys": [self.key.as_dict(private=True)], "accounts": ACCOUNTS,
            "secure_cookies": self.secure_cookies,
            "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "redirect_uris": [f"{self.base_url}/login/oidc/callback"],
                         "post_logout_redirect_uris": [f"{self.base_url}/login"],
                         "grant_types": ["authorization_code"], "response_types": ["code"]}],
        }))
        with (self.workdir / "provider.log").open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(["node", str(PROVIDER_JS), str(config)], cwd=ROOT, stdout=subprocess.PIPE,
                                         stderr=log)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until it listens, or EOF if it died
        if line.strip() != b"listening":
            self.stop()
            raise RuntimeError(f"oidc-provider did not start: {(self.workdir / 'provider.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def rotate(self, kid: str) -> None:
        """The provider restarts with a new signing key (and without the old one), as after a key rotation."""
        self.stop()
        self.key = signing_key(kid)
        self.start()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    p = Provider(tmp_path_factory.mktemp("oidc-provider"))
    p.start()
    try:
        yield p
    finally:
        p.stop()


class Wire(httpx.AsyncBaseTransport):
    """What carries our server's requests to the provider: it notes every URL and every ID token it carries;
    ``rewrite`` may replace the ID token in the token endpoint's answer (a provider that misbehaves, or someone on
    the wire), and ``discovery`` what to change in the discovery document (None: left out, as a provider without it).
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.urls: list[str] = []
        self.id_tokens: list[str] = []
        self.rewrite: Callable[[str], str] | None = None
        self.discovery: dict[str, str | None] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1"
        self.urls.append(str(request.url))
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/.well-known/openid-configuration") and self.discovery:
            document = {**json.loads(await response.aread()), **self.discovery}
            return httpx.Response(response.status_code, json={k: v for k, v in document.items() if v is not None})
        if not request.url.path.endswith("/token"):
            return response
        body = json.loads(await response.aread())
        if "id_token" in body and self.rewrite is not None:
            body["id_token"] = self.rewrite(body["id_token"])
        if "id_token" in body:
            self.id_tokens.append(body["id_token"])
        return httpx.Response(response.status_code, json=body)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def fetched(self, path: str) -> int:
        return sum(urlsplit(url).path == path for url in self.urls)


def sso_settings(tmp_path: Path, issuer: str, *, sign_out: str = "post") -> Settings:
    secret = tmp_path / "oidc-client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    secret.chmod(0o600)
    return Settings(db_path=tmp_path / "cc.sqlite3", base_url=BASE_URL, secret_file=tmp_path / "secret.key",
                    oidc=OidcSettings(issuer=issuer, client_id=CLIENT_ID, client_secret_file=secret, name="Acme ID",
                                      sign_out=sign_out))


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def sso_clock() -> FakeClock:
    # The provider stamps tokens with the real time; our clock starts there and moves only when a test moves it.
    return FakeClock(now=datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def h(tmp_path: Path, provider: Provider, wire: Wire, sso_clock: FakeClock) -> Iterator[Harness]:
    app = create_app(sso_settings(tmp_path, provider.issuer), clock=sso_clock, http_transport=wire)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        harness = Harness(client)
        harness.seed()  # the company and the employee taro (no user yet: never invited)
        harness.run(harness.service.add_employee, EmployeeProfile(email=HANAKO, family_name="佐藤"), actor="cli")
        yield harness


def at_provider(h: Harness, account: str, start: str = "/login/oidc", browser: httpx.Client | None = None) -> str:
    """Start a sign-in on our site, sign in as ``account`` at the provider; the callback path it sends back.

    ``browser``: the browser's side at the provider (its cookies: the provider's session), kept by the caller
    across sign-ins and sign-outs; a fresh one otherwise. ``account`` "": the provider must not ask who it is."""
    with contextlib.ExitStack() as stack:
        if browser is None:
            browser = stack.enter_context(httpx.Client(follow_redirects=False, timeout=10))
        location = _first_hop(h, start)
        for _ in range(10):
            if urlsplit(location).path.startswith("/interaction/"):
                assert account, "the provider asked who this is"
                location = _next_hop(browser.post(location, data={"account": account}))
            elif location.startswith(REDIRECT_URI):
                return location[len(BASE_URL):]
            else:
                location = _next_hop(browser.get(location))
    raise AssertionError("the provider never sent the browser back")


def asks_who_it_is(h: Harness, browser: httpx.Client) -> bool:
    """Press "Sign in with SSO": does the provider ask who this is (True), or send the browser straight back?"""
    location = _first_hop(h, "/login/oidc")
    for _ in range(10):
        if urlsplit(location).path.startswith("/interaction/"):
            return True
        if location.startswith(REDIRECT_URI):
            return False
        location = _next_hop(browser.get(location))
    raise AssertionError("the provider neither asked nor sent the browser back")


def _first_hop(h: Harness, start: str) -> str:
    r = get(h.client, start)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert urlsplit(location).hostname == "127.0.0.1", location  # never off this machine
    return location


def _next_hop(r: httpx.Response) -> str:
    """Where a redirect at the provider leads (made absolute); only 127.0.0.1 or back to our redirect URI."""
    assert r.status_code in (302, 303), r.text
    location = r.headers["location"]
    if location.startswith("/"):
        location = f"{urlsplit(str(r.url)).scheme}://{urlsplit(str(r.url)).netloc}{location}"
    assert urlsplit(location).hostname == "127.0.0.1" or location.startswith(BASE_URL), location
    return location


def sign_in(h: Harness, account: str, start: str = "/login/oidc") -> httpx.Response:
    r = get(h.client, at_provider(h, account, start))
    return r


def audit_rows(h: Harness, action: str) -> list[dict[str, object]]:
    """The audit rows of one action, newest first."""
    rows = h.run(h.service._store.audit_events, action=action)
    return [{"target": r.target, "actor": r.actor, **json.loads(r.after or "{}")} for r in rows]


def user_count(h: Harness) -> int:
    return int(h.run(h.service._store._scalar, "SELECT COUNT(*) FROM users"))


# --- the happy paths ---------------------------------------------------------------------------------


def test_an_admin_and_an_employee_sign_in_with_the_provider(h: Harness, provider: Provider) -> None:
    make_admin(h)
    page = get(h.client, "/login")
    assert "Acme ID" in page.text and 'href="/login/oidc"' in page.text

    r = sign_in(h, "admin-1", "/login/oidc?next=/admin/settings")
    assert r.status_code == 303 and r.headers["location"] == "/admin/settings"
    settings = get(h.client, "/admin/settings")
    assert settings.status_code == 200
    assert h.run(h.service._store.user_by_oidc, provider.issuer, "admin-1") is not None
    # The settings page shows the provider and that discovery worked.
    assert "Worked at" in settings.text or "成功" in settings.text
    assert provider.issuer in settings.text

    h.client.cookies.clear()
    r = sign_in(h, "taro-1")  # an employee with no user yet: their user is made, without a password
    assert r.status_code == 303 and r.headers["location"] == "/me"
    me = get(h.client, "/me")
    assert me.status_code == 200
    taro = h.run(h.ctx.accounts.user_by_email, EMPLOYEE_EMAIL)
    assert taro is not None and taro.role == "employee"

    # Both went through the same session and audit as a password: one "sign_in" each, marked oidc.
    signed = audit_rows(h, "sign_in")
    assert [row["via"] for row in signed] == ["oidc", "oidc"]
    # The second time the employee is matched by the provider's subject, and no new user is made.
    users = user_count(h)
    h.client.cookies.clear()
    assert sign_in(h, "taro-1").headers["location"] == "/me"
    assert user_count(h) == users


# --- refusals --------------------------------------------------------------------------------------


def test_an_unknown_person_is_refused_with_a_clear_page_and_never_created(h: Harness) -> None:
    users = user_count(h)
    r = sign_in(h, "stranger-1")
    assert r.status_code == 403
    assert "No account here matches" in r.text or "一致するアカウント" in r.text
    assert user_count(h) == users
    assert "cc_session" not in " ".join(r.headers.get_list("set-cookie")).replace("__Host-cc_session=;", "")
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "unknown_user"


def test_an_unverified_email_is_not_matched(h: Harness) -> None:
    r = sign_in(h, "hanako-unverified")  # hanako is an employee here, but the provider has not verified her email
    assert r.status_code == 403
    assert "verified" in r.text or "確認" in r.text
    assert h.run(h.ctx.accounts.user_by_email, HANAKO) is None
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "email_unverified"


def test_a_provider_without_email_verified_matches_by_the_claim_the_operator_names(
        tmp_path: Path, provider: Provider, wire: Wire, sso_clock: FakeClock) -> None:
    # Unset, Entra ID's way of naming the person is no email at all: nobody to match, refused.
    plain = sso_settings(tmp_path, provider.issuer)
    assert plain.oidc is not None
    # Set to the claim that tenant's directory fills in, the same person is matched to her employee record.
    entra = dataclasses.replace(plain, db_path=tmp_path / "entra.sqlite3",
                                oidc=dataclasses.replace(plain.oidc, email_claim="preferred_username"))
    for settings, status in ((plain, 403), (entra, 303)):
        app = create_app(settings, clock=sso_clock, http_transport=wire)
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            harness = Harness(client)
            harness.seed()
            harness.run(harness.service.add_employee, EmployeeProfile(email=HANAKO, family_name="佐藤"), actor="cli")
            r = sign_in(harness, "hanako-entra")
            assert r.status_code == status, r.text[:300]
            if status == 303:
                assert r.headers["location"] == "/me"
                user = harness.run(harness.ctx.accounts.user_by_email, HANAKO)
                assert user is not None and user.role == "employee"
            else:
                assert audit_rows(harness, "sign_in.failed")[0]["reason"] == "unknown_user"
                assert harness.run(harness.ctx.accounts.user_by_email, HANAKO) is None


def test_the_email_claim_setting_must_name_a_claim(tmp_path: Path) -> None:
    env = {"CONTACTCARD_OIDC_ISSUER": "https://login.example.com/tenant/v2.0", "CONTACTCARD_OIDC_CLIENT_ID": "cc",
           "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "s")}
    entra = OidcSettings.from_env({**env, "CONTACTCARD_OIDC_EMAIL_CLAIM": "preferred_username"})
    assert entra is not None and entra.email_claim == "preferred_username"
    with pytest.raises(ValidationError, match="claim name"):
        OidcSettings.from_env({**env, "CONTACTCARD_OIDC_EMAIL_CLAIM": "not a claim!"})


def test_the_link_to_the_providers_subject_wins_over_the_email(h: Harness) -> None:
    """Once the admin signed in, their account follows the provider's subject: another subject given the same
    email is refused, and a departed employee no longer signs in through the provider either."""
    make_admin(h)
    assert sign_in(h, "admin-1").headers["location"] == "/admin"
    h.client.cookies.clear()
    r = sign_in(h, "reassigned-1")
    assert r.status_code == 403
    assert get(h.client, "/admin").status_code == 303
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "unknown_user"

    h.client.cookies.clear()
    assert sign_in(h, "taro-1").headers["location"] == "/me"
    h.run(h.service.depart, EMPLOYEE_EMAIL, actor="cli")
    assert get(h.client, "/me").status_code == 303  # the session ended with the departure
    assert sign_in(h, "taro-1").status_code == 403


def test_a_replayed_or_stolen_state_is_refused(h: Harness) -> None:
    make_admin(h)
    callback = at_provider(h, "admin-1")
    flow_cookie = dict(h.client.cookies)
    assert get(h.client, callback).status_code == 303
    # The same answer again, even with the browser's flow cookie put back: the state was used.
    h.client.cookies.clear()
    for name, value in flow_cookie.items():
        h.client.cookies.set(name, value)
    replay = get(h.client, callback)
    assert replay.status_code == 400
    assert "already used" in replay.text or "使用済み" in replay.text
    # A state started in one browser and answered in another (no flow cookie there) is refused too.
    callback = at_provider(h, "admin-1")
    h.client.cookies.clear()
    assert get(h.client, callback).status_code == 400
    reasons = [row["reason"] for row in audit_rows(h, "sign_in.failed")]
    assert reasons == ["state", "state"]


def forged(provider: Provider, change: Callable[[dict[str, object]], None], key: RSAKey | None = None) -> Callable[
        [str], str]:
    """A rewrite that re-signs the provider's ID token after ``change`` (with its own key unless another)."""
    def rewrite(id_token: str) -> str:
        claims = jwt.decode(id_token, provider.key).claims
        change(claims)
        signer = key or provider.key
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)
    return rewrite


def refused_token(h: Harness, wire: Wire, rewrite: Callable[[str], str]) -> httpx.Response:
    make_admin(h)
    wire.rewrite = rewrite
    r = sign_in(h, "admin-1")
    assert r.status_code == 400, r.text
    assert "could not be verified" in r.text or "確認できません" in r.text
    assert get(h.client, "/admin").status_code == 303  # not signed in
    return r


def test_a_token_for_another_audience_is_refused(h: Harness, wire: Wire, provider: Provider) -> None:
    refused_token(h, wire, forged(provider, lambda c: c.update(aud="another-client")))
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "token:bad_aud"


def test_an_expired_token_is_refused(h: Harness, wire: Wire, provider: Provider, sso_clock: FakeClock) -> None:
    now = int(sso_clock.now.timestamp())
    refused_token(h, wire, forged(provider, lambda c: c.update(iat=now - 7200, exp=now - 3600)))
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "token:expired"


def test_a_tampered_token_is_refused(h: Harness, wire: Wire) -> None:
    """taro's genuine token with its payload changed to the admin's email: the signature no longer matches."""
    def tamper(id_token: str) -> str:
        header, payload, signature = id_token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims.update(sub="admin-1", email=ADMIN_EMAIL)
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{header}.{body}.{signature}"

    make_admin(h)
    wire.rewrite = tamper
    r = sign_in(h, "taro-1")
    assert r.status_code == 400
    assert get(h.client, "/admin").status_code == 303
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "token:bad_signature"


def test_a_rotated_key_is_fetched_once_and_an_unknown_one_refused(h: Harness, wire: Wire, provider: Provider,
                                                                   sso_clock: FakeClock) -> None:
    make_admin(h)
    assert sign_in(h, "admin-1").status_code == 303  # the provider's keys are now cached
    assert wire.fetched("/jwks") == 1
    provider.rotate("key-2")  # the provider now signs with a key we have not seen, and publishes only it
    sso_clock.advance(seconds=oidc.REFETCH_EVERY.total_seconds())
    h.client.cookies.clear()
    assert sign_in(h, "admin-1").headers["location"] == "/admin"
    assert wire.fetched("/jwks") == 2  # the unknown key id fetched the set once

    # A token signed by a key the provider never published: one more fetch, then refused (no loop).
    sso_clock.advance(seconds=oidc.REFETCH_EVERY.total_seconds())
    h.client.cookies.clear()
    wire.rewrite = forged(provider, lambda c: None, key=signing_key("never-published"))
    assert sign_in(h, "admin-1").status_code == 400
    assert wire.fetched("/jwks") == 3
    assert audit_rows(h, "sign_in.failed")[0]["reason"] == "token:unknown_key"

    # An hour on, the key set is fetched again even for a known key (a withdrawn key stops being trusted).
    sso_clock.advance(seconds=oidc.DISCOVERY_TTL.total_seconds())
    now = int(sso_clock.now.timestamp())
    wire.rewrite = forged(provider, lambda c: c.update(iat=now, exp=now + 600))  # our clock is an hour ahead
    h.client.cookies.clear()
    assert sign_in(h, "admin-1").headers["location"] == "/admin"
    assert wire.fetched("/jwks") == 4


def test_failed_answers_are_throttled_like_passwords(h: Harness) -> None:
    for _ in range(PAIR_THRESHOLD):
        assert get(h.client, "/login/oidc/callback?state=forged&code=x").status_code == 400
    held = get(h.client, "/login/oidc/callback?state=forged&code=x")
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    assert len(audit_rows(h, "sign_in.failed")) == PAIR_THRESHOLD
    assert len(audit_rows(h, "sign_in.throttled")) == 1


# --- signing out at the provider too (RP-Initiated Logout) ---------------------------------------------


def sealed_id_tokens(h: Harness) -> int:
    """Sessions that still hold an ID token."""
    return int(h.run(h.service._store._scalar, "SELECT COUNT(*) FROM sessions WHERE id_token_sealed IS NOT NULL"))


def sign_out(h: Harness, page: str = "/me") -> httpx.Response:
    r = post_form(h.client, page, "/logout", {})
    assert r.headers["clear-site-data"] == '"cache", "storage"'  # as for any sign-out
    assert r.headers["cache-control"] == "no-store"
    assert "cc_session=" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert h.run(h.service._store.count_sessions) == 0
    return r


def signed_out_here_only(r: httpx.Response) -> bool:
    """Signed out to our sign-in page, as after a password (no page posting to the provider)."""
    return r.status_code == 303 and r.headers["location"] == "/login" and "<form" not in r.text


@dataclasses.dataclass
class PostedForm:
    action: str
    method: str
    fields: dict[str, str]
    buttons: list[str]


class _Forms(HTMLParser):
    """Every form of a page: its action, method, fields (hidden or not) and the text of its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[PostedForm] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(PostedForm(a.get("action", ""), a.get("method", "get").lower(), {}, []))
        elif tag == "input" and self.forms and "name" in a:
            assert a["name"] not in self.forms[-1].fields, f"{a['name']} given twice"
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button":
            self._button = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            self.forms[-1].buttons.append("".join(self._button).strip())
            self._button = None


def provider_sign_out_form(r: httpx.Response) -> PostedForm:
    """The page that signs out at the provider too: 200, one form posting to it, the token in no URL."""
    assert r.status_code == 200, r.text
    assert "location" not in r.headers
    parser = _Forms()
    parser.feed(r.text)
    assert len(parser.forms) == 1, parser.forms
    form = parser.forms[0]
    assert form.method == "post"
    assert "id_token_hint" not in form.action and "eyJ" not in form.action
    assert re.search(r'<script src="/static/sign_out\.js" defer></script>', r.text)  # submits the form at once
    return form


def test_signing_out_signs_out_at_the_provider_so_the_next_person_is_asked_who_they_are(
        h: Harness, provider: Provider, wire: Wire) -> None:
    """The front desk: taro signs in with the provider and out again; the next "Sign in with SSO" on that
    browser must ask who is there, not sign taro straight back in (which is what it did before)."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:  # the browser's side at the provider
        assert get(h.client, at_provider(h, "taro-1", browser=browser)).headers["location"] == "/me"
        id_token = wire.id_tokens[-1]
        assert sealed_id_tokens(h) == 1
        assert not asks_who_it_is(h, browser), "the provider remembers taro: the reason for this change"

        # The page's CSP lets its sign-out form lead to the provider (browsers check form-action on redirects).
        assert f"form-action 'self' {provider.issuer};" in get(h.client, "/me").headers["content-security-policy"]
        r = sign_out(h)
        form = provider_sign_out_form(r)
        discovery = browser.get(f"{provider.issuer}/.well-known/openid-configuration").json()
        assert form.action == discovery["end_session_endpoint"]
        assert form.fields == {"id_token_hint": id_token, "client_id": CLIENT_ID,
                               "post_logout_redirect_uri": f"{BASE_URL}/login"}
        assert form.buttons == ["Acme ID からのログアウトを続ける"]  # without script, it is pressed (Japanese first)
        assert r.text.count(id_token) == 1  # only in the form's field
        assert f"form-action 'self' {provider.issuer};" in r.headers["content-security-policy"]
        assert sealed_id_tokens(h) == 0
        assert audit_rows(h, "sign_out")[0]["actor"] == EMPLOYEE_EMAIL

        # At the provider: the posted form (as the browser sends it) is accepted; it asks to confirm (its
        # form); taro confirms.
        confirm = browser.post(form.action, data=form.fields)
        assert confirm.status_code == 200, confirm.text
        assert "id_token_hint" not in str(confirm.url)
        theirs = re.search(r'<form id="op.logoutForm" method="post" action="([^"]+)">'
                           r'<input type="hidden" name="xsrf" value="([^"]+)"/>', confirm.text)
        assert theirs is not None, confirm.text
        done = browser.post(theirs[1], data={"xsrf": theirs[2], "logout": "yes"})
        assert done.status_code == 303 and done.headers["location"] == f"{BASE_URL}/login"
        landing = get(h.client, done.headers["location"][len(BASE_URL):])
        assert landing.status_code == 200 and 'href="/login/oidc"' in landing.text  # the signed-out sign-in page
        assert 'action="/logout"' not in landing.text

        assert asks_who_it_is(h, browser), "the provider's session ended: the next person is asked who they are"


def test_for_a_provider_that_refuses_the_post_the_operator_has_sign_out_sent_as_a_redirect(
        tmp_path: Path, provider: Provider, wire: Wire, sso_clock: FakeClock) -> None:
    """``CONTACTCARD_OIDC_SIGN_OUT=get``: the same three parameters, as the query of a 303 (the token then in a
    URL: the price of such a provider), and the provider's session still ends."""
    app = create_app(sso_settings(tmp_path, provider.issuer, sign_out="get"), clock=sso_clock, http_transport=wire)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client, \
            httpx.Client(follow_redirects=False, timeout=10) as browser:
        h = Harness(client)
        h.seed()
        assert get(h.client, at_provider(h, "taro-1", browser=browser)).headers["location"] == "/me"
        id_token = wire.id_tokens[-1]
        assert not asks_who_it_is(h, browser)
        r = sign_out(h)
        assert r.status_code == 303 and "<form" not in r.text
        target = urlsplit(r.headers["location"])
        discovery = browser.get(f"{provider.issuer}/.well-known/openid-configuration").json()
        assert f"{target.scheme}://{target.netloc}{target.path}" == discovery["end_session_endpoint"]
        assert dict(parse_qsl(target.query)) == {"id_token_hint": id_token, "client_id": CLIENT_ID,
                                                 "post_logout_redirect_uri": f"{BASE_URL}/login"}
        assert sealed_id_tokens(h) == 0

        confirm = browser.get(r.headers["location"])  # the provider asks to confirm; taro confirms
        theirs = re.search(r'<form id="op.logoutForm" method="post" action="([^"]+)">'
                           r'<input type="hidden" name="xsrf" value="([^"]+)"/>', confirm.text)
        assert theirs is not None, confirm.text
        done = browser.post(theirs[1], data={"xsrf": theirs[2], "logout": "yes"})
        assert done.status_code == 303 and done.headers["location"] == f"{BASE_URL}/login"
        assert asks_who_it_is(h, browser), "the provider's session ended"


def test_the_sign_out_method_setting_is_post_or_get(tmp_path: Path) -> None:
    secret = tmp_path / "client-secret"
    env = {"CONTACTCARD_OIDC_ISSUER": "https://login.example.co.jp", "CONTACTCARD_OIDC_CLIENT_ID": "cc",
           "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": str(secret)}
    assert (oidc := Settings.from_env(env).oidc) is not None and oidc.sign_out == "post"
    assert (oidc := Settings.from_env({**env, "CONTACTCARD_OIDC_SIGN_OUT": " GET "}).oidc) and oidc.sign_out == "get"
    with pytest.raises(ValidationError, match="CONTACTCARD_OIDC_SIGN_OUT must be post"):
        Settings.from_env({**env, "CONTACTCARD_OIDC_SIGN_OUT": "redirect"})


def test_the_sign_out_page_is_in_english_too_and_never_cached(h: Harness) -> None:
    assert sign_in(h, "taro-1").headers["location"] == "/me"
    h.client.headers["Accept-Language"] = "en-US,en;q=0.9"
    r = sign_out(h)
    assert provider_sign_out_form(r).buttons == ["Continue to sign out of Acme ID"]
    assert '<html lang="en">' in r.text and r.headers["content-language"] == "en"
    assert "?lang=" not in r.text  # no language switch: its links would GET /logout, which only takes the post


def test_a_password_session_signs_out_here_only(h: Harness) -> None:
    admin = make_admin(h)
    assert login(h.client, admin.email).status_code == 303
    assert signed_out_here_only(sign_out(h, "/admin"))


@pytest.mark.parametrize("end_session_endpoint", [None, "http://127.0.0.2:9/session/end"])
def test_a_provider_without_a_usable_sign_out_endpoint_signs_out_here_only(
        h: Harness, wire: Wire, end_session_endpoint: str | None) -> None:
    """None: Google's discovery document has none. One on another origin: the page's CSP (form-action) would
    make the browser refuse the redirect, and sign-out would fail in front of the person."""
    wire.discovery = {"end_session_endpoint": end_session_endpoint}
    assert sign_in(h, "taro-1").headers["location"] == "/me"
    assert signed_out_here_only(sign_out(h))
    assert sealed_id_tokens(h) == 0


def test_an_unreachable_or_stuck_provider_never_holds_sign_out_up(h: Harness, provider: Provider,
                                                                 sso_clock: FakeClock) -> None:
    """Discovery is cached for an hour; past it, a provider that is down, or that takes the connection and never
    answers, costs the sign-out at most SIGN_OUT_PATIENCE: the session ends here and the browser goes to /login."""
    assert provider.proc is not None
    for stuck in (False, True):
        h.client.cookies.clear()
        assert sign_in(h, "taro-1").headers["location"] == "/me"
        sso_clock.advance(seconds=oidc.DISCOVERY_TTL.total_seconds() + 1)
        if stuck:
            os.kill(provider.proc.pid, signal.SIGSTOP)  # the kernel still accepts connections for it
        else:
            provider.stop()
        started = time.monotonic()
        try:
            r = sign_out(h)
        finally:
            if stuck:
                os.kill(provider.proc.pid, signal.SIGCONT)
            else:
                provider.start()
        took = time.monotonic() - started
        assert signed_out_here_only(r)
        assert took < sso.SIGN_OUT_PATIENCE + 1.5, took
        assert sealed_id_tokens(h) == 0
        status = h.run(h.ctx.sso.status)
        assert status.failing
        assert ("longer than" if stuck else "cannot be reached") in status.error


def test_the_id_token_goes_with_its_session_however_the_session_ends(h: Harness, sso_clock: FakeClock) -> None:
    def signed_in_with_the_provider() -> None:
        h.client.cookies.clear()
        assert sign_in(h, "taro-1").headers["location"] == "/me"
        assert sealed_id_tokens(h) == 1

    signed_in_with_the_provider()  # "SSO only" turned on: every employee is signed out
    h.run(h.ctx.accounts.set_sso_only, True, actor="cli")
    assert sealed_id_tokens(h) == 0

    signed_in_with_the_provider()  # a password set through a reset link ends all the user's sessions
    taro = h.run(h.ctx.accounts.user_by_email, EMPLOYEE_EMAIL)
    assert taro is not None
    link = h.run(h.ctx.accounts.reset_link, taro.id, actor="cli")
    h.run(h.ctx.accounts.accept_link, link.token, "a new password for taro")
    assert sealed_id_tokens(h) == 0

    real_time = sso_clock.now  # the provider's tokens carry the real time: sign in at it, then move on
    signed_in_with_the_provider()  # idle too long: deleted when next presented
    sso_clock.advance(hours=8)
    assert get(h.client, "/me").status_code == 303
    assert sealed_id_tokens(h) == 0

    sso_clock.now = real_time
    signed_in_with_the_provider()  # past the longest lifetime: purged at anyone's next sign-in
    admin = make_admin(h)
    sso_clock.advance(days=7, seconds=1)
    h.client.cookies.clear()
    assert login(h.client, admin.email).status_code == 303
    assert sealed_id_tokens(h) == 0


def test_the_id_token_is_in_no_log_line_audit_row_or_database_file(h: Harness, wire: Wire,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert sign_in(h, "taro-1").headers["location"] == "/me"
    assert provider_sign_out_form(sign_out(h)).fields["id_token_hint"] == wire.id_tokens[-1]
    _header, payload, signature = wire.id_tokens[-1].split(".")
    assert caplog.records, "the server logged nothing at all: this test would prove nothing"
    for record in caplog.records:
        assert payload not in record.getMessage() and signature not in record.getMessage(), record.getMessage()
    for event in h.run(h.service._store.audit_events, limit=1000):
        assert signature not in repr(event) and payload not in repr(event)

    # On disk it was only ever sealed: neither the database nor its write-ahead log holds it in clear.
    assert sign_in(h, "taro-1").headers["location"] == "/me"
    _header, payload, signature = wire.id_tokens[-1].split(".")
    files = [path for path in h.ctx.settings.db_path.parent.iterdir() if path.name.startswith("cc.sqlite3")]
    assert files
    for path in files:
        assert signature.encode() not in path.read_bytes() and payload.encode() not in path.read_bytes()


# --- SSO only, the settings page, the command line ----------------------------------------------------


def test_sso_only_refuses_employees_passwords_but_not_the_admins(h: Harness, capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    admin = make_admin(h)
    taro = make_employee(h)
    assert login(h.client, admin.email).status_code == 303
    r = post_form(h.client, "/admin/settings", "/admin/settings/sso", {"sso_only": "on"})
    assert r.status_code == 303
    assert h.run(h.ctx.accounts.sso_only)
    page = get(h.client, "/admin/settings")
    assert 'id="sso_only" name="sso_only" value="on" checked' in page.text

    refused = login(h.client, taro.email)
    assert refused.status_code == 403
    assert "Acme ID" in refused.text  # told where to sign in instead
    assert login(h.client, admin.email).status_code == 303  # the break-glass password still works
    h.client.cookies.clear()
    assert sign_in(h, "taro-1").headers["location"] == "/me"  # and the employee gets in through the provider

    # The command line turns it off (same setting, audited as the cli).
    cli = Cli(capsys)
    env = {"CONTACTCARD_DB": str(h.ctx.settings.db_path), "CONTACTCARD_SECRET_FILE": str(h.ctx.settings.secret_file)}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        assert "sso_only: off" in cli.ok("company", "set", "--sso-only", "off")
        assert cli.json("company", "show")["sso_only"] is False
    assert login(h.client, taro.email).status_code == 303
    changes = audit_rows(h, "company.sso_only")  # newest first
    assert [(row["sso_only"], row["actor"]) for row in changes] == [(False, "cli"), (True, ADMIN_EMAIL)]


def test_turning_sso_only_on_signs_employees_out_but_not_the_admin(h: Harness) -> None:
    admin, taro = make_admin(h), make_employee(h)
    assert login(h.client, taro.email).status_code == 303
    assert get(h.client, "/me").status_code == 200
    phone = dict(h.client.cookies.items())  # the employee's signed-in phone, opened with a password
    assert login(h.client, admin.email).status_code == 303
    assert post_form(h.client, "/admin/settings", "/admin/settings/sso", {"sso_only": "on"}).status_code == 303
    desk = dict(h.client.cookies.items())

    h.client.cookies.clear()
    for name, value in phone.items():
        h.client.cookies.set(name, value)
    r = get(h.client, "/me")
    assert r.status_code == 303 and r.headers["location"].startswith("/login"), "the password session has ended"
    h.client.cookies.clear()
    for name, value in desk.items():
        h.client.cookies.set(name, value)
    assert get(h.client, "/admin/settings").status_code == 200, "the admin who turned it on stays signed in"
    assert audit_rows(h, "company.sso_only")[0]["employee_sessions_ended"] == 1


def test_the_sign_in_page_offers_the_provider_in_both_languages(h: Harness) -> None:
    h.run(h.ctx.accounts.set_sso_only, True, actor="cli")
    ja = get(h.client, "/login?lang=ja").text
    en = get(h.client, "/login?lang=en").text
    assert "Acme ID でログイン" in ja and "Sign in with Acme ID" in en
    assert "パスワードは管理者専用です" in ja and "passwords are for administrators only" in en


def test_an_unreachable_provider_is_a_clear_page_and_shown_in_settings(h: Harness, provider: Provider,
                                                                       sso_clock: FakeClock) -> None:
    admin = make_admin(h)
    provider.stop()
    try:
        r = get(h.client, "/login/oidc")
        assert r.status_code == 502
        assert "cannot be reached" in r.text or "接続できません" in r.text
        assert login(h.client, admin.email).status_code == 303  # the break-glass password
        page = get(h.client, "/admin/settings")
        assert provider.issuer in page.text
        assert "Failed at" in page.text or "に失敗" in page.text
        assert "cannot be reached" in page.text
    finally:
        provider.start()
    sso_clock.advance(minutes=1)
    h.client.cookies.clear()
    assert sign_in(h, "admin-1").headers["location"] == "/admin"
    page = get(h.client, "/admin/settings")
    assert "Worked at" in page.text or "に成功" in page.text
    assert 'id="sso-last-error"' in page.text and "cannot be reached" in page.text  # the last error, kept


def test_sso_only_cannot_be_turned_on_without_a_provider(admin_client: TestClient) -> None:
    page = get(admin_client, "/admin/settings")
    assert "CONTACTCARD_OIDC_ISSUER" in page.text  # not configured, and says how
    r = post_form(admin_client, "/admin/settings", "/admin/settings/sso", {"sso_only": "on"})
    assert r.status_code == 400 and 'id="sso-error"' in r.text


# --- configuration ---------------------------------------------------------------------------------


def test_configuration_is_all_or_nothing_and_the_secret_owner_only(tmp_path: Path) -> None:
    env = {"CONTACTCARD_OIDC_ISSUER": "https://login.example.co.jp", "CONTACTCARD_OIDC_CLIENT_ID": "cc"}
    with pytest.raises(ValidationError, match="CONTACTCARD_OIDC_CLIENT_SECRET_FILE"):
        Settings.from_env(env)
    with pytest.raises(ValidationError, match="https"):
        Settings.from_env({**env, "CONTACTCARD_OIDC_ISSUER": "http://login.example.co.jp",
                           "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": "/x"})
    assert Settings.from_env({}).oidc is None
    for issuer in ("https://login.example.co.jp/x;form-action", "https://ログイン.example.co.jp"):  # CSP material
        with pytest.raises(ValidationError, match="ASCII"):
            Settings.from_env({**env, "CONTACTCARD_OIDC_ISSUER": issuer, "CONTACTCARD_OIDC_CLIENT_SECRET_FILE": "/x"})
    settings = sso_settings(tmp_path, "https://login.example.co.jp")
    assert settings.oidc is not None
    settings.oidc.client_secret_file.chmod(0o644)
    with pytest.raises(ValidationError, match="readable by others"), TestClient(create_app(settings)):
        pass
