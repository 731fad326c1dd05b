"""Link-token crypto: pure functions, no I/O.

A card row stores a random nonce and the SHA-256 digest of its token. The token itself is
HMAC(server secret, nonce), cut to 120 bits and base64url-encoded (20 characters), so:
- the server can show the link again (QR on /me, `card qr`) without ever storing it;
- a copy of the database alone opens nothing: the nonce needs the secret, the digest is one-way;
- lookup is by digest, and the final check is a constant-time comparison.
"""

from __future__ import annotations

import base64
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


class DailyPseudonyms:
    """Visitor pseudonyms: HMAC(day key, client address ‖ user agent), where the day key is random, made when
    the company's day begins and held only in this process's memory (never written anywhere).

    So a backup of the database and the secret together cannot turn a stored pseudonym back into an address
    by trying them all, and yesterday's pseudonyms cannot be linked to today's. The cost: a restart in the
    middle of a day gives a returning visitor a second pseudonym for the rest of that day (counted twice among
    the day's unique visitors).
    """

    def __init__(self) -> None:
        self._day = ""
        self._mac = hmac.new(secrets.token_bytes(32), digestmod=hashlib.sha256)

    def key(self, day: str, ip: str, user_agent: str) -> str:
        """``day``: the company's local date. A new day drops the previous day's key for good."""
        if day != self._day:
            self._day, self._mac = day, hmac.new(secrets.token_bytes(32), digestmod=hashlib.sha256)
        mac = self._mac.copy()  # the keyed state is computed once a day, copied per use
        mac.update(ip.encode("utf-8", "replace") + b"\x00" + user_agent.encode("utf-8", "replace"))
        return mac.hexdigest()[:32]
