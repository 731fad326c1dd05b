"""Where a webhook may be sent (the SSRF guard) and the one HTTP POST that sends it.

A destination is an ``https://`` URL naming a host (read as a browser would, ``urls.parse_https``). Its name is
resolved when the endpoint is added and again before every attempt, and the request goes to the very address
that was checked (the connection is pinned to it; TLS still verifies the certificate for the name), so a
name that later resolves to an inside address (DNS rebinding) is refused at send time too. Refused: loopback,
private (RFC 1918, unique-local), link-local (the cloud metadata service at 169.254.169.254 included), shared
(100.64/10), multicast, reserved and unspecified addresses, and IPv4 addresses mapped into IPv6 that are any of
those. Redirects are never followed: a 3xx is a failed attempt.

``Settings.webhook_allow_private`` (``CONTACTCARD_WEBHOOK_ALLOW_PRIVATE=1``) lifts the address rule and admits
``http://`` for an operator whose CRM is on the inside network (and for the tests, which receive on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .models import ValidationError
from .urls import normalise_host, parse_https

TIMEOUT = 10.0  # seconds for the connection and for each read of the answer
MAX_URL = 2000
MAX_ANSWER = 64 * 1024  # read (and discard) at most this much of an answer before closing
USER_AGENT = "contactcard-webhooks/1"
Resolver = Callable[[str, int], Awaitable[list[str]]]  # host, port -> addresses


class Refused(ValidationError):
    """The destination is not allowed (scheme, form, or an address inside the network)."""


class Unresolved(Refused):
    """The name has no address now (an endpoint may still be added: every attempt resolves it again)."""


@dataclass(frozen=True)
class Destination:
    url: str  # canonical
    scheme: str  # "https", or "http" where private destinations are allowed
    host: str  # a name (ASCII) or, where private destinations are allowed, an IP address
    port: int
    target: str  # path and query sent in the request line


def parse(url: str, *, allow_private: bool) -> Destination:
    """The destination ``url`` names; Refused (a ValidationError) says why it cannot be one."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise Refused("the webhook URL is too long")
    if url.lower().startswith("https://"):
        web = parse_https(url)
        if web.fragment is not None:
            raise Refused("a webhook URL has no #fragment")
        target = web.path + ("" if web.query is None else "?" + web.query)
        return Destination(web.text, "https", web.host, web.port or 443, target)
    if not url.lower().startswith("http://"):
        raise Refused("a webhook URL must start with https://")
    if not allow_private:
        raise Refused("a webhook URL must start with https:// (http:// only with CONTACTCARD_WEBHOOK_ALLOW_PRIVATE=1)")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or not parts.hostname or "\\" in url:
        raise Refused("not a usable webhook URL")
    try:
        port = parts.port or 80
    except ValueError:
        raise Refused("not a port number in the webhook URL") from None
    host = parts.hostname if _address(parts.hostname) is not None else normalise_host(parts.hostname)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    shown = f"[{host}]" if ":" in host else host
    return Destination(f"http://{shown}:{port}{target}", "http", host, port, target)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forbidden(address: str) -> bool:
    """An address no webhook may reach unless private destinations are allowed."""
    ip = _address(address.split("%", 1)[0])
    if ip is None:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (not ip.is_global or ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def checked_address(dest: Destination, *, allow_private: bool, resolver: Resolver) -> str:
    """The address to connect to; Refused when any address the name has is inside, or it has none."""
    if _address(dest.host) is not None:
        addresses = [dest.host]
    else:
        try:
            addresses = await resolver(dest.host, dest.port)
        except OSError:
            raise Unresolved("%(host)s does not resolve", host=dest.host) from None
    if not addresses:
        raise Unresolved("%(host)s does not resolve", host=dest.host)
    if not allow_private:
        inside = [a for a in addresses if forbidden(a)]
        if inside:
            raise Refused("%(host)s resolves to %(address)s, an address inside the network (loopback, private, "
                          "link-local, multicast or reserved)", host=dest.host, address=inside[0])
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, dest: Destination, address: str) -> None:
        super().__init__(dest.host, dest.port, timeout=TIMEOUT)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), TIMEOUT)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, dest: Destination, address: str) -> None:
        super().__init__(dest.host, dest.port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), TIMEOUT)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)  # the certificate is checked for the name


def post(dest: Destination, address: str, body: bytes, headers: dict[str, str]) -> int:
    """POST ``body`` to ``dest`` over a connection to ``address``; the status code (a 3xx is not followed).
    Blocking: run it in a worker thread. OSError or http.client.HTTPException when no answer came."""
    conn: http.client.HTTPConnection = (_PinnedHTTPS(dest, address) if dest.scheme == "https"
                                        else _PinnedHTTP(dest, address))
    try:
        conn.request("POST", dest.target, body=body, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
        response = conn.getresponse()
        response.read(MAX_ANSWER)
        return response.status
    finally:
        conn.close()
