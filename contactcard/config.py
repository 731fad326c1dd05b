"""Settings, read from the environment in one place, and the server secret on disk."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .models import ValidationError
from .oidc import SIGN_OUT_METHODS, check_issuer

_PACKAGE_DIR = Path(__file__).resolve().parent
SECRET_BYTES = 32
LOG_FORMATS = ("text", "json")
DEFAULT_HSTS = "max-age=63072000"  # two years; includeSubDomains is the operator's choice (CONTACTCARD_HSTS)
_HSTS = re.compile(r"max-age=\d{1,10}(?:\s*;\s*(?:includeSubDomains|preload))*", re.IGNORECASE)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _resource_dir(name: str) -> Path:
    """A wheel carries templates/ and static/ inside the package; a source checkout keeps them at the top."""
    packaged = _PACKAGE_DIR / name
    return packaged if packaged.is_dir() else _PACKAGE_DIR.parent / name


TEMPLATES_DIR = _resource_dir("templates")
STATIC_DIR = _resource_dir("static")


_CLAIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True)
class OidcSettings:
    """The company's OpenID provider: its issuer URL, our client id, and the file holding our client secret."""

    issuer: str
    client_id: str
    client_secret_file: Path
    name: str = ""  # shown on the sign-in button; the issuer's host when empty
    # A claim the provider vouches for as the person's work email, for providers that send no email_verified
    # (Microsoft Entra ID: preferred_username or email); empty: the email claim with email_verified true.
    email_claim: str = ""
    # How the browser is sent to the provider's sign-out: "post" (the ID token in a form, never in a URL; what
    # RP-Initiated Logout requires every provider to accept) or "get" for a provider that refuses the POST.
    sign_out: str = "post"

    @property
    def display_name(self) -> str:
        return self.name or (urlsplit(self.issuer).hostname or self.issuer)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> OidcSettings | None:
        names = ("CONTACTCARD_OIDC_ISSUER", "CONTACTCARD_OIDC_CLIENT_ID", "CONTACTCARD_OIDC_CLIENT_SECRET_FILE")
        given = [env.get(name, "").strip() for name in names]
        if not any(given):
            return None
        if not all(given):
            missing = ", ".join(name for name, value in zip(names, given, strict=True) if not value)
            raise ValidationError(f"single sign-on needs all of {', '.join(names)}; missing {missing}")
        try:
            issuer = check_issuer(given[0])
        except ValueError as err:
            raise ValidationError(f"CONTACTCARD_OIDC_ISSUER: {err}") from None
        if len(given[1]) > 255:
            raise ValidationError("CONTACTCARD_OIDC_CLIENT_ID is longer than 255 characters")
        email_claim = env.get("CONTACTCARD_OIDC_EMAIL_CLAIM", "").strip()
        if email_claim and not _CLAIM_NAME.fullmatch(email_claim):
            raise ValidationError("CONTACTCARD_OIDC_EMAIL_CLAIM must be a claim name such as preferred_username")
        sign_out = env.get("CONTACTCARD_OIDC_SIGN_OUT", "").strip().lower() or "post"
        if sign_out not in SIGN_OUT_METHODS:
            raise ValidationError("CONTACTCARD_OIDC_SIGN_OUT must be post (the default) or get")
        return cls(issuer=issuer, client_id=given[1], client_secret_file=Path(given[2]),
                    name=env.get("CONTACTCARD_OIDC_NAME", "").strip()[:100], email_claim=email_claim,
                    sign_out=sign_out)


@dataclass(frozen=True)
class Settings:
    db_path: Path
    base_url: str
    secret_file: Path
    host: str = "127.0.0.1"
    port: int = 8000
    templates_dir: Path = TEMPLATES_DIR
    static_dir: Path = STATIC_DIR
    scan_queue_size: int = 4096
    scan_batch_size: int = 512
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For/-Proto or Forwarded are believed
    log_format: str = "text"  # "text" or "json" (one object per line)
    hsts: str = DEFAULT_HSTS  # Strict-Transport-Security value sent with an https base URL; "" sends none
    metrics_token_file: Path | None = None  # without one, /metrics answers loopback peers only
    scan_deadline: float = 2.0  # seconds; a scan not recorded by then is answered 503 and never stored
    oidc: OidcSettings | None = None  # single sign-on with the company's OpenID provider, when configured
    webhook_allow_private: bool = False  # webhooks may go to loopback/private addresses and over http (destinations)
    webhook_worker: bool = True  # deliver webhooks in the background (tests drive ``Deliverer.run_once`` instead)
    api_rate_limit: int = 600  # requests a minute per API token (bursts up to as many); past it, 429

    @property
    def secure_cookies(self) -> bool:
        """An https base URL: cookies are Secure with the __Host- prefix, and every response carries HSTS."""
        return self.base_url.startswith("https://")

    def card_url(self, token: str) -> str:
        return f"{self.base_url}/c/{token}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        data_dir = Path(env.get("CONTACTCARD_DATA_DIR", "data"))
        port = _int(env.get("CONTACTCARD_PORT", "8000"), "CONTACTCARD_PORT")
        host = env.get("CONTACTCARD_HOST", "127.0.0.1")
        base_url = env.get("CONTACTCARD_BASE_URL", f"http://{host}:{port}")
        token_file = env.get("CONTACTCARD_METRICS_TOKEN_FILE")
        return cls(
            db_path=Path(env.get("CONTACTCARD_DB", str(data_dir / "contactcard.sqlite3"))),
            base_url=normalise_base_url(base_url),
            secret_file=Path(env.get("CONTACTCARD_SECRET_FILE", str(data_dir / "secret.key"))),
            host=host,
            port=port,
            trusted_proxies=trusted_proxies(env.get("CONTACTCARD_TRUSTED_PROXIES", "").split(",")),
            log_format=log_format(env.get("CONTACTCARD_LOG_FORMAT", "text")),
            hsts=hsts_value(env.get("CONTACTCARD_HSTS", DEFAULT_HSTS)),
            metrics_token_file=Path(token_file) if token_file else None,
            oidc=OidcSettings.from_env(env),
            webhook_allow_private=flag(env.get("CONTACTCARD_WEBHOOK_ALLOW_PRIVATE", ""),
                                       "CONTACTCARD_WEBHOOK_ALLOW_PRIVATE"),
            api_rate_limit=_positive(env.get("CONTACTCARD_API_RATE_LIMIT", "600"), "CONTACTCARD_API_RATE_LIMIT"),
        )


def trusted_proxies(specs: list[str]) -> tuple[Network, ...]:
    """Addresses and CIDR networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``); empty entries are skipped."""
    networks = []
    for spec in specs:
        text = spec.strip()
        if text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValidationError(f"trusted proxy must be an IP address or CIDR network, got {text!r}") from None
    return tuple(networks)


def flag(value: str, name: str) -> bool:
    """``1``/``true``/``yes`` or ``0``/``false``/``no``/empty, any case."""
    text = value.strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("", "0", "false", "no"):
        return False
    raise ValidationError(f"{name} must be 1 or 0, got {value!r}")


def log_format(value: str) -> str:
    if value not in LOG_FORMATS:
        raise ValidationError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value


def hsts_value(value: str) -> str:
    """``max-age=N`` with optional ``; includeSubDomains`` / ``; preload``, or ``off`` (e.g. the proxy sends it)."""
    value = value.strip()
    if value.lower() == "off":
        return ""
    if not _HSTS.fullmatch(value):
        raise ValidationError(f"CONTACTCARD_HSTS must look like {DEFAULT_HSTS!r} (optionally with "
                              f"'; includeSubDomains'), or 'off'; got {value!r}")
    return value


def normalise_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not (url.startswith("https://") or url.startswith("http://")) or " " in url:
        raise ValidationError(f"base URL must start with https:// or http://, got {url!r}")
    return url


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number, got {value!r}") from None


def _positive(value: str, name: str) -> int:
    if (number := _int(value, name)) < 1:
        raise ValidationError(f"{name} must be at least 1, got {value!r}")
    return number


def read_secret(path: Path) -> bytes | None:
    """The server secret from its file, or None when there is no file.

    The secret keys every link token and the daily visitor key, so it is refused when others can read it.
    Whether it is the secret the database was created with is ``keycheck``'s question.
    """
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise ValidationError(f"secret file {path} is readable by others (mode {mode:o}); run chmod 600 on it")
    data = path.read_bytes().strip()
    try:
        secret = bytes.fromhex(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValidationError(f"secret file {path} must hold hex digits") from None
    if len(secret) < 16:
        raise ValidationError(f"secret file {path} holds fewer than 16 bytes")
    return secret


def read_token_file(path: Path, what: str = "token file") -> bytes:
    """A bearer token (e.g. for /metrics) or a client secret from its file: at least 16 characters, not readable
    by others."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        raise ValidationError(f"{what} {path} does not exist") from None
    if mode & 0o077:
        raise ValidationError(f"{what} {path} is readable by others (mode {mode:o}); run chmod 600 on it")
    token = path.read_bytes().strip()
    if len(token) < 16:
        raise ValidationError(f"{what} {path} holds fewer than 16 characters")
    return token


def create_secret(path: Path) -> bytes:
    """Write a new random secret (mode 0600); if another process just created the file, read that one instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = read_secret(path)
        if existing is None:  # created and removed again in between: nothing sensible to do
            raise
        return existing
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return secret


def load_secret(path: Path) -> bytes:
    """Read the secret, creating it when missing. Only for a database known to be new (tests, benchmarks):
    servers and the CLI go through ``keycheck.bind_secret``, which refuses to replace a lost secret."""
    existing = read_secret(path)
    return create_secret(path) if existing is None else existing
