"""Passwords and secret tokens: pure functions, no I/O.

Passwords are hashed with scrypt (``cryptography``), a random 16-byte salt per hash, and stored as
``scrypt$n$r$p$salt_b64$hash_b64`` so the cost can be raised later: a hash made with older parameters
still verifies, and ``needs_rehash`` tells the caller to store a fresh one at the next sign-in.

Session ids and invitation tokens are 32 random bytes; only their SHA-256 is stored, so a copy of the database
opens no session and accepts no invitation. A session's CSRF token is derived from its id
(``csrf_token``), so it is not stored at all. What a session must keep but a copy of the database must not
reveal (the identity provider's ID token) is sealed with a key derived from the id the same way (``seal``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets

from cryptography.exceptions import InvalidKey, InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .models import ValidationError

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD = 10
MAX_PASSWORD = 200
TOKEN_BYTES = 32
# Refuse absurd stored parameters (a tampered row must not make us allocate gigabytes).
_MAX_N = 2**20

# A hash of a random password, verified against when the email is unknown so that both paths cost the same.
_DUMMY_HASH: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_password(password: str) -> str:
    """The password as given, or ValidationError with a message fit for the form."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError("the password must be at least %(least)d characters", least=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise ValidationError("the password must be at most %(most)d characters", most=MAX_PASSWORD)
    return password


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    check_password(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = Scrypt(salt=salt, length=HASH_BYTES, n=n, r=r, p=p).derive(password.encode("utf-8"))
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check; False (never an exception) for a malformed or missing hash."""
    if stored is None:
        verify_password(password, dummy_hash())  # same cost as a real check
        return False
    try:
        scheme, n_s, r_s, p_s, salt_s, key_s = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, key = _unb64(salt_s), _unb64(key_s)
    except ValueError:
        return False
    if scheme != "scrypt" or not (2 <= n <= _MAX_N and 1 <= r <= 32 and 1 <= p <= 16) or len(key) < 16:
        return False
    if len(password) > MAX_PASSWORD:
        return False
    try:
        Scrypt(salt=salt, length=len(key), n=n, r=r, p=p).verify(password.encode("utf-8"), key)
    except (InvalidKey, ValueError):
        return False
    return True


def needs_rehash(stored: str) -> bool:
    try:
        scheme, n, r, p, *_ = stored.split("$")
        return (scheme, int(n), int(r), int(p)) != ("scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except ValueError:
        return True


def dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(24))
    return _DUMMY_HASH


def new_token() -> str:
    """32 random bytes, URL-safe, for a session id, an invitation link or a signed-out form's CSRF token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: an HMAC keyed with its id, so it is not stored and ends with the session.

    No server secret is needed: the id is 32 random bytes that only the browser holds (the database has its
    SHA-256), so neither a cross-site page nor a copy of the database can compute the token.
    """
    mac = hmac.new(session_token.encode("utf-8", "replace"), b"contactcard/csrf/v1", hashlib.sha256)
    return _b64(mac.digest())


def _sealing_key(session_token: str) -> bytes:
    return hmac.new(session_token.encode("utf-8", "replace"), b"contactcard/seal/v1", hashlib.sha256).digest()


def seal(session_token: str, value: str) -> bytes:
    """``value`` encrypted and authenticated (AES-GCM) under a key derived from a session id, as ``csrf_token``
    is: only the browser holding the session can have it opened, not a copy of the database."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_sealing_key(session_token)).encrypt(nonce, value.encode("utf-8"), None)


def unseal(session_token: str, sealed: bytes) -> str | None:
    """What ``seal`` sealed with this session id; None for another id or altered bytes."""
    try:
        return AESGCM(_sealing_key(session_token)).decrypt(sealed[:12], sealed[12:], None).decode("utf-8")
    except (InvalidTag, ValueError):
        return None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


# Keys the client pseudonym. Random per process and never written anywhere, so the pseudonyms stored in the
# throttle table and the audit log cannot be turned back into addresses, even with the server secret. The
# cost: a restart forgets which client failed how often (the per-account count, which is stored, remains).
_CLIENT_KEY = secrets.token_bytes(32)


def client_key(ip: str) -> str:
    """A pseudonym for the client, used only to count sign-in failures; the IP is not stored.

    An IPv6 client is its /64: every home line gets at least that many addresses, so one host could otherwise
    be a new client (a fresh password guess, a fresh audit row) on every attempt. An IPv4-mapped address is the
    IPv4 address it carries.
    """
    mac = hmac.new(_CLIENT_KEY, b"contactcard/client/v1\x00" + _client_of(ip).encode("utf-8", "replace"),
                   hashlib.sha256)
    return "client:" + mac.hexdigest()[:32]


def _client_of(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # not an address (a test client, a Unix socket): itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def account_key(email: str) -> str:
    """Failures are counted per typed address, known or not, so throttling reveals nothing about accounts."""
    return "account:" + hashlib.sha256(email.strip().casefold().encode("utf-8", "replace")).hexdigest()[:32]


def pair_key(account: str, client: str) -> str:
    """One client on one account: the key that holds back whoever is guessing, and nobody else."""
    return "pair:" + hashlib.sha256(f"{account}\x00{client}".encode()).hexdigest()[:32]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))
