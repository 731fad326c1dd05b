"""Finding 7 / issue 8 item 1: forwarded headers are believed only from a trusted proxy, read from the right."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from contactcard.app import create_app
from contactcard.config import Settings, trusted_proxies
from contactcard.models import ValidationError
from contactcard.web.proxy import ProxyHeaders, client_from_headers, forwarded_hops

from .conftest import FakeClock, Harness

PROXY = trusted_proxies(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


def _client(*headers: tuple[str, str]) -> tuple[str, int, str | None] | None:
    hop = client_from_headers([(k.lower().encode(), v.encode("latin-1")) for k, v in headers], PROXY)
    if hop is None or hop.address is None:
        return None
    return str(hop.address), hop.port, hop.proto


@pytest.mark.parametrize(("headers", "expected"), [
    ([("X-Forwarded-For", "203.0.113.7")], ("203.0.113.7", 0, None)),
    ([("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")], ("203.0.113.7", 0, "https")),
    # a client-written entry left of the real one is never reached
    ([("X-Forwarded-For", "1.2.3.4, 203.0.113.7")], ("203.0.113.7", 0, None)),
    ([("X-Forwarded-For", "garbage, 203.0.113.7")], ("203.0.113.7", 0, None)),
    # trusted hops on the right are skipped
    ([("X-Forwarded-For", "203.0.113.7, 10.1.2.3, 127.0.0.1")], ("203.0.113.7", 0, None)),
    # several headers form one list, in order
    ([("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "203.0.113.9")], ("203.0.113.9", 0, None)),
    # per-hop protos line up with the addresses
    ([("X-Forwarded-For", "203.0.113.7, 10.0.0.5"), ("X-Forwarded-Proto", "https, http")],
     ("203.0.113.7", 0, "https")),
    ([("X-Forwarded-For", " 2001:db8::1 ")], ("2001:db8::1", 0, None)),
    ([("X-Forwarded-For", "[2001:db8::1]:4711")], ("2001:db8::1", 4711, None)),
    ([("X-Forwarded-For", "::ffff:203.0.113.7")], ("203.0.113.7", 0, None)),
    # all trusted: the farthest
    ([("X-Forwarded-For", "10.0.0.1, 10.0.0.2")], ("10.0.0.1", 0, None)),
    # garbage where it is read: the headers are not used
    ([("X-Forwarded-For", "203.0.113.7, not-an-ip")], None),
    ([("X-Forwarded-For", "")], None),
    ([("X-Forwarded-For", "203.0.113.7, 10.0.0.1, unknown")], None),
    ([("X-Forwarded-For", "203.0.113.7:80")], None),
    ([("X-Forwarded-For", "1.2.3.4.5")], None),
    # RFC 7239
    ([("Forwarded", "for=203.0.113.7;proto=https")], ("203.0.113.7", 0, "https")),
    ([("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=http, for=10.0.0.1')], ("2001:db8:cafe::17", 4711, "http")),
    ([("Forwarded", "for=1.2.3.4, for=203.0.113.7:8080;by=10.0.0.1")], ("203.0.113.7", 8080, None)),
    ([("Forwarded", "For=203.0.113.7"), ("Forwarded", "for=198.51.100.2")], ("198.51.100.2", 0, None)),
    ([("Forwarded", 'for="_hidden", for=203.0.113.7')], ("203.0.113.7", 0, None)),
    ([("Forwarded", "for=unknown")], None),
    ([("Forwarded", "proto=https")], None),
    ([("Forwarded", 'for="[2001:db8::1"')], None),
    ([("Forwarded", 'for="[2001:db8::1]x"')], None),
    ([("Forwarded", "for=203.0.113.7:99999")], None),
    ([("Forwarded", ";;,,=")], None),
    # X-Forwarded-For wins over Forwarded (Caddy and nginx write X-Forwarded-For; Forwarded may be the client's)
    ([("Forwarded", "for=1.2.3.4"), ("X-Forwarded-For", "203.0.113.7")], ("203.0.113.7", 0, None)),
    ([], None),
])
def test_forwarded_chain_is_read_from_the_right(headers: list[tuple[str, str]],
                                                expected: tuple[str, int, str | None] | None) -> None:
    assert _client(*headers) == expected


def test_forwarded_quoted_commas_do_not_split_an_element() -> None:
    hops = forwarded_hops('for="[2001:db8::1]";ext="a,b", for=203.0.113.7')
    assert [str(h.address) for h in hops] == ["2001:db8::1", "203.0.113.7"]


def test_bad_trusted_proxy_setting_is_one_clear_error() -> None:
    with pytest.raises(ValidationError, match=r"10\.0\.0\.0/33"):
        trusted_proxies(["127.0.0.1", "10.0.0.0/33"])
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings.from_env({"CONTACTCARD_TRUSTED_PROXIES": "proxy.example"})
    assert Settings.from_env({}).trusted_proxies == ()
    assert Settings.from_env({"CONTACTCARD_TRUSTED_PROXIES": " 127.0.0.1 , ::1,"}).trusted_proxies == \
        trusted_proxies(["127.0.0.1/32", "::1/128"])


async def _scope_after(peer: tuple[str, int], headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    seen: dict[str, object] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    await ProxyHeaders(app, PROXY)({"type": "http", "client": peer, "scheme": "http", "headers": headers},
                                   receive, send)
    return seen


@pytest.mark.parametrize(("peer", "client", "scheme"), [
    (("127.0.0.1", 5000), ("203.0.113.7", 0), "https"),  # trusted peer: believed
    (("192.0.2.50", 5000), ("192.0.2.50", 5000), "http"),  # untrusted peer: ignored
    (("fd00::1", 5000), ("203.0.113.7", 0), "https"),
])
def test_only_a_trusted_peer_rewrites_client_and_scheme(peer: tuple[str, int], client: tuple[str, int],
                                                        scheme: str) -> None:
    import asyncio

    scope = asyncio.run(_scope_after(peer, [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]))
    assert scope["client"] == client
    assert scope["scheme"] == scheme


@pytest.fixture
def proxied(settings: Settings, clock: FakeClock) -> Harness:
    app = create_app(dataclasses.replace(settings, trusted_proxies=trusted_proxies(["127.0.0.1"])), clock=clock)
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False, client=("127.0.0.1", 40000))
    return Harness(client.__enter__())


def test_two_customers_behind_the_proxy_are_two_visitors(proxied: Harness) -> None:
    try:
        path = proxied.path(proxied.seed())
        ua = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}
        for ip in ("203.0.113.2", "203.0.113.3", "203.0.113.3"):
            assert proxied.client.get(path, headers={**ua, "X-Forwarded-For": ip}).status_code == 200
        # a forged header from an untrusted peer is the peer's own visit
        keys = [e.visitor_key for e in proxied.events()]
        assert len(keys) == 3 and keys[0] != keys[1] and keys[1] == keys[2]
    finally:
        proxied.client.__exit__(None, None, None)


def test_forged_header_from_an_untrusted_peer_is_ignored(harness: Harness) -> None:
    path = harness.path(harness.seed())
    ua = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}
    for ip in ("203.0.113.2", "203.0.113.3"):
        assert harness.client.get(path, headers={**ua, "X-Forwarded-For": ip}).status_code == 200
    keys = {e.visitor_key for e in harness.events()}
    assert len(keys) == 1
