"""The real client behind a trusted reverse proxy: ``scope["client"]`` and ``scope["scheme"]`` rewritten.

Only when the direct peer is one of the trusted proxies (``CONTACTCARD_TRUSTED_PROXIES``, ``serve --trusted-proxy``)
are forwarding headers read; from anyone else they are ignored, so a client cannot choose its own address. The
chain is read from the right (the hop nearest to us) and the first address that is not itself a trusted proxy is
the client: what a client wrote further left is never reached. A chain that is malformed where it is read is
ignored as a whole (the peer stays the client).

``X-Forwarded-For`` (every such header, in order) is used when present; RFC 7239 ``Forwarded`` only when there is
no ``X-Forwarded-For``. A proxy that writes ``Forwarded`` must therefore drop an ``X-Forwarded-For`` sent by the
client (Caddy and nginx write ``X-Forwarded-For``). Everything that reads the client address (visitor keys, the
unknown-link limiter, sign-in throttling) sees the resolved one, because this runs in front of the whole app.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_HOPS = 32  # a longer chain is read no further than its last 32 entries


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Hop:
    address: Address | None  # None: "unknown", an obfuscated name or garbage
    port: int = 0
    proto: str | None = None


def _forwarded_for_node(value: str) -> tuple[Address | None, int]:
    """RFC 7239 node: ``192.0.2.1``, ``192.0.2.1:80``, ``"[2001:db8::1]:4711"``, ``unknown``, ``_hidden``."""
    value = value.strip().strip('"')
    port = 0
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None, 0
        port_text = rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    if port_text:
        if not port_text.isdigit() or int(port_text) > 65535:
            return None, 0
        port = int(port_text)
    return _address(host), port


def _split_forwarded(value: str) -> list[str]:
    """Split on commas outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def forwarded_hops(value: str) -> list[Hop]:
    """The RFC 7239 ``Forwarded`` header's elements as hops, left (farthest) to right (nearest)."""
    hops = []
    for element in _split_forwarded(value):
        address, port, proto, seen_for = None, 0, None, False
        for pair in element.split(";"):
            name, sep, raw = pair.partition("=")
            name = name.strip().lower()
            if not sep:
                continue
            if name == "for":
                seen_for = True
                address, port = _forwarded_for_node(raw)
            elif name == "proto":
                proto = raw.strip().strip('"').lower()
        hops.append(Hop(address if seen_for else None, port, proto))
    return hops


def x_forwarded_hops(for_value: str, proto_value: str | None) -> list[Hop]:
    """``X-Forwarded-For`` entries (with the ``X-Forwarded-Proto`` entry at the same position, when the two lists
    have the same length; otherwise the last proto, written by the nearest proxy) as hops, left to right."""
    addresses = [part.strip() for part in for_value.split(",")]
    protos = [p.strip().lower() for p in proto_value.split(",")] if proto_value else []
    hops = []
    for i, text in enumerate(addresses):
        address, port = _forwarded_for_node(text) if text.startswith("[") else (_address(text), 0)
        if len(protos) == len(addresses):
            proto: str | None = protos[i]
        else:
            proto = protos[-1] if protos else None
        hops.append(Hop(address, port, proto))
    return hops


def resolve_client(hops: list[Hop], trusted: tuple[Network, ...]) -> Hop | None:
    """The right-most hop that is not a trusted proxy; the left-most when all are trusted; None when the chain is
    malformed before such a hop is found (then the headers are not used at all)."""
    chosen: Hop | None = None
    for hop in reversed(hops[-MAX_HOPS:]):
        if hop.address is None:
            return None
        chosen = hop
        if not _trusted(hop.address, trusted):
            return hop
    return chosen


def _trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def _joined(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in headers if k == name]
    return ",".join(values) if values else None


def client_from_headers(headers: list[tuple[bytes, bytes]], trusted: tuple[Network, ...]) -> Hop | None:
    """The forwarded client named by the headers (the caller has checked that the peer is trusted)."""
    xff = _joined(headers, b"x-forwarded-for")
    if xff is not None:
        hops = x_forwarded_hops(xff, _joined(headers, b"x-forwarded-proto"))
    else:
        forwarded = _joined(headers, b"forwarded")
        if forwarded is None:
            return None
        hops = forwarded_hops(forwarded)
    return resolve_client(hops, trusted)


class ProxyHeaders:
    """Pure ASGI middleware; outermost, so every layer and handler sees the resolved client and scheme."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.resolve(scope)
        await self.app(scope, receive, send)

    def resolve(self, scope: Scope) -> None:
        """Rewrite the scope's client and scheme from the forwarding headers, if the peer is a trusted proxy."""
        if self.trusted:
            peer = scope.get("client")
            peer_address = _address(peer[0]) if peer else None
            if peer_address is not None and _trusted(peer_address, self.trusted):
                hop = client_from_headers(scope["headers"], self.trusted)
                if hop is not None and hop.address is not None:
                    scope["client"] = (str(hop.address), hop.port)
                    if hop.proto in ("http", "https"):
                        scope["scheme"] = hop.proto if scope["type"] == "http" else \
                            {"http": "ws", "https": "wss"}[hop.proto]
