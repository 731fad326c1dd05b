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


# --- the card contact form's token (see leads.py) -------------------------------------------------------------

FORM_NONCE_BYTES = 12
FORM_MAC_BYTES = 16
MAX_FORM_TOKEN = 96


def form_key(secret: bytes) -> bytes:
    """The key of contact-form tokens, derived from the server secret (which never signs anything else)."""
    return hmac.new(secret, b"contactcard card contact form v1", hashlib.sha256).digest()


def form_token(key: bytes, subject: str, issued: int, nonce: bytes) -> str:
    """``<issued>.<nonce>.<mac>``: when the form was served (Unix seconds), a random nonce, and a MAC over both
    and ``subject`` (the card), so a token works for one card only and says truthfully when it was made."""
    body = f"{issued}.{base64.urlsafe_b64encode(nonce).decode('ascii')}"
    return f"{body}.{_form_mac(key, subject, body)}"


def read_form_token(key: bytes, subject: str, token: str) -> tuple[int, bytes] | None:
    """(issued, nonce) of a token this key made for ``subject``; None for anything else (constant-time MAC check)."""
    if len(token) > MAX_FORM_TOKEN or not token.isascii():
        return None
    issued, _, rest = token.partition(".")
    encoded, _, mac = rest.partition(".")
    if not issued.isdigit() or len(issued) > 12:
        return None
    if not hmac.compare_digest(_form_mac(key, subject, f"{issued}.{encoded}").encode("ascii"), mac.encode("ascii")):
        return None
    return int(issued), base64.urlsafe_b64decode(encoded)


def _form_mac(key: bytes, subject: str, body: str) -> str:
    mac = hmac.new(key, f"{subject}\x00{body}".encode(), hashlib.sha256).digest()[:FORM_MAC_BYTES]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")
