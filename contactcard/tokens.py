"""Link-token crypto: pure functions, no I/O.

A card row stores a random nonce and the SHA-256 digest of its token. The token itself is
HMAC(server secret, nonce), cut to 120 bits and base64url-encoded (20 characters), so:
- the server can show the link again (QR on /me, `card qr`) without ever storing it;
- a copy of the database alone opens nothing: the nonce needs the secret, the digest is one-way;
- lookup is by digest, and the final check is a constant-time comparison.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 15  # 120 bits, a multiple of 3 so base64 needs no padding
TOKEN_LENGTH = 20
NONCE_BYTES = 16
TOKEN_PATTERN = rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def token_for(secret: bytes, nonce: bytes) -> str:
    mac = hmac.new(secret, b"contactcard/link/v1\x00" + nonce, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:TOKEN_BYTES]).decode("ascii")


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def is_well_formed(token: str) -> bool:
    return _TOKEN_RE.fullmatch(token) is not None


def verify(secret: bytes, nonce: bytes, token: str) -> bool:
    """Constant-time check that ``token`` is the one this nonce yields under this secret."""
    return hmac.compare_digest(token_for(secret, nonce).encode("ascii"), token.encode("ascii"))


def visitor_key(secret: bytes, day: str, ip: str, user_agent: str) -> str:
    """A pseudonym for one visitor on one day; the raw IP never leaves this function.

    The key is derived from the secret and the day (the caller passes the company's local date), so it
    rotates daily and is never stored: yesterday's pseudonyms cannot be linked to today's.
    """
    mac = _day_mac(secret, day).copy()
    mac.update(ip.encode("utf-8", "replace") + b"\x00" + user_agent.encode("utf-8", "replace"))
    return mac.hexdigest()[:32]


@functools.lru_cache(maxsize=8)
def _day_mac(secret: bytes, day: str) -> hmac.HMAC:
    """An HMAC keyed with the day's visitor key, copied per use (the key is the same all day)."""
    day_key = hmac.digest(secret, b"contactcard/visitor/v1\x00" + day.encode("ascii"), "sha256")
    return hmac.new(day_key, digestmod=hashlib.sha256)
