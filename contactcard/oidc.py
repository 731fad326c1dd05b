"""The OpenID Connect relying party: discovery, the provider's keys, PKCE, and the ID token's checks.

No Starlette and no database here: ``sso`` keeps the flow's state and ``accounts`` the sessions. The JOSE work
(JWS signatures, JWK sets, the claims' checks) is joserfc's; this module decides what to ask and what to accept.

- Discovery: ``<issuer>/.well-known/openid-configuration``, kept for an hour. Its ``issuer`` must be the
  configured one exactly (OpenID Connect Discovery 4.3); its endpoints must be https (plain http only on a
  loopback address, for tests and a provider on the same machine).
- Keys: the provider's JWK set, fetched on first use and kept an hour (a key the provider withdrew stops
  being trusted within the hour). A token signed with a key id not in the set fetches the set again, once
  per token and at most once per ``REFETCH_EVERY`` (the provider rotated its keys; a flood of unknown ids
  cannot turn into a flood of fetches).
- The ID token: an asymmetric signature by a key of that set (never ``none``, never HMAC), ``iss`` the
  issuer, ``aud`` our client id (and ``azp`` ours when given), ``exp`` in the future and ``iat`` not in it
  (``LEEWAY`` of clock skew), and the ``nonce`` this sign-in sent.
- Signing out (RP-Initiated Logout 1.0): the discovery document's ``end_session_endpoint``, with the ID token as
  ``id_token_hint``, posted by a form (the specification's POST, which every provider must accept), never in a
  URL: a URL would keep the token, and the person's claims in it, in the browser's history and the provider's
  logs. For a provider that refuses the POST the operator may choose ``get`` (``config.OidcSettings.sign_out``):
  the same parameters as the query of a redirect.
  Only an endpoint on the issuer's own origin is used: the pages' CSP lets forms lead there and nowhere
  else (``web/security``).
- Every request to the provider has a time-out and never follows a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2 as httpx
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from .models import Clock, ContactcardError

SCOPE = "openid email profile"
TIMEOUT = httpx.Timeout(5.0)
DISCOVERY_TTL = timedelta(hours=1)  # the discovery document and the key set are fetched again after this
REFETCH_EVERY = timedelta(seconds=10)
LEEWAY = 60  # seconds of clock skew allowed on exp and iat
MAX_DOCUMENT = 256 * 1024  # a discovery document or key set larger than this is not one
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class ProviderUnavailable(ContactcardError):
    """The provider could not be reached or answered something that is not what OpenID Connect says."""


class TokenRejected(ContactcardError):
    """The provider's answer to our code, or its ID token, failed a check; ``reason`` names which."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    email_claim: str = ""  # see config.OidcSettings.email_claim
    post_logout_redirect_uri: str = ""  # where the provider sends the browser back after signing out
    sign_out: str = "post"  # see config.OidcSettings.sign_out


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, from a checked ID token."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    id_token: str = field(default="", repr=False)  # the token itself, kept (sealed) to sign out with; never logged


@dataclass(frozen=True)
class Metadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    basic_auth: bool  # client_secret_basic, else client_secret_post
    end_session_endpoint: str = ""  # "" when the provider offers no sign-out (Google), or not on its origin


SIGN_OUT_METHODS = ("post", "get")


@dataclass(frozen=True)
class SignOutForm:
    """What the browser sends to sign out at the provider: the end_session_endpoint and the form's fields,
    posted (``method`` "post"), or as the query of a redirect for a provider that refuses the POST."""

    action: str
    fields: Mapping[str, str] = field(repr=False)  # id_token_hint among them: never logged
    method: str = "post"

    @property
    def url(self) -> str:
        """The endpoint with the fields as its query (for ``method`` "get")."""
        return with_query(self.action, self.fields)


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def check_issuer(url: str) -> str:
    """The issuer URL as configured, or ValueError: https, or http on a loopback address; no query or fragment."""
    url = url.strip().rstrip("/")
    if not _allowed_url(url):
        raise ValueError(f"the OpenID issuer must be an https:// URL (http only on 127.0.0.1), got {url!r}")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"the OpenID issuer may not have a query or fragment, got {url!r}")
    if not url.isascii() or any(c.isspace() or c in ";,'\"" for c in url):  # its origin goes into our CSP
        raise ValueError(f"the OpenID issuer must be plain ASCII (a host in its xn-- form), got {url!r}")
    return url


def with_query(endpoint: str, params: Mapping[str, str]) -> str:
    """``endpoint`` with ``params`` added to its query (a provider's endpoint may carry one already)."""
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def origin_of(url: str) -> str:
    """A URL's origin as a CSP source (``scheme://host[:port]``), lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if not host or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OidcClient:
    """One configured provider, for the server's whole life (its discovery and keys are cached here)."""

    def __init__(self, config: ProviderConfig, clock: Clock, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock
        self._http = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, transport=transport,
                                       headers={"accept": "application/json"})
        self._metadata: Metadata | None = None
        self._metadata_at: datetime | None = None
        self._keys: KeySet | None = None
        self._keys_at: datetime | None = None

    async def close(self) -> None:
        await self._http.aclose()

    # --- discovery and keys -------------------------------------------------------------------

    async def metadata(self) -> Metadata:
        """The provider's endpoints from its discovery document (cached); ProviderUnavailable when it fails."""
        now = self.clock()
        if self._metadata is not None and self._metadata_at is not None and now - self._metadata_at < DISCOVERY_TTL:
            return self._metadata
        doc = await self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
        if doc.get("issuer") != self.config.issuer:
            raise ProviderUnavailable(f"the discovery document names the issuer {str(doc.get('issuer'))[:200]!r}, "
                                      f"not {self.config.issuer!r}")
        urls = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or not _allowed_url(value):
                raise ProviderUnavailable(f"the discovery document has no usable {name}")
            urls[name] = value
        methods = doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        basic = not isinstance(methods, list) or "client_secret_basic" in methods or "client_secret_post" not in methods
        end_session = doc.get("end_session_endpoint")
        if not (isinstance(end_session, str) and _allowed_url(end_session)
                and origin_of(end_session) == origin_of(self.config.issuer)):
            end_session = ""  # optional: without it signing out ends our session only
        self._metadata = Metadata(basic_auth=basic, end_session_endpoint=end_session, **urls)
        self._metadata_at = now
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        now = self.clock()
        if self._keys is not None and self._keys_at is not None:
            age = now - self._keys_at
            if age < REFETCH_EVERY or (not refresh and age < DISCOVERY_TTL):
                return self._keys
        doc = await self._get_json((await self.metadata()).jwks_uri)
        try:
            keys = KeySet.import_key_set({"keys": [k for k in doc.get("keys", []) if _signing_key(k)]})
        except (JoseError, ValueError, TypeError) as err:
            raise ProviderUnavailable(f"the provider's key set cannot be read: {err}") from None
        self._keys, self._keys_at = keys, now
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as err:
            raise ProviderUnavailable(f"{url} cannot be reached: {type(err).__name__}") from None
        if response.status_code != 200:
            raise ProviderUnavailable(f"{url} answered {response.status_code}")
        return _json_object(response, url)

    # --- the flow -----------------------------------------------------------------------------

    async def authorization_url(self, *, state: str, nonce: str, challenge: str) -> str:
        """Where to send the browser: the provider's sign-in, for the code flow with PKCE (S256)."""
        return with_query((await self.metadata()).authorization_endpoint, {
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
            "scope": SCOPE, "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256",
        })

    async def end_session_form(self, id_token: str) -> SignOutForm | None:
        """The form that signs the browser out at the provider too; None when it offers no sign-out.

        No ``state``: the page the provider sends the browser back to is the ordinary sign-in page, which has
        nothing to check or restore."""
        endpoint = (await self.metadata()).end_session_endpoint
        if not endpoint:
            return None
        fields = {"id_token_hint": id_token, "client_id": self.config.client_id}
        if self.config.post_logout_redirect_uri:
            fields["post_logout_redirect_uri"] = self.config.post_logout_redirect_uri
        return SignOutForm(endpoint, fields, self.config.sign_out)

    async def redeem(self, code: str, *, verifier: str, nonce: str) -> Identity:
        """Exchange the code at the token endpoint and check the ID token that comes back."""
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                "code_verifier": verifier}
        auth: httpx.BasicAuth | None = None
        if meta.basic_auth:  # RFC 6749 2.3.1: each part form-encoded before Basic
            auth = httpx.BasicAuth(_form_encode(self.config.client_id), _form_encode(self.config.client_secret))
        else:
            form.update(client_id=self.config.client_id, client_secret=self.config.client_secret)
        try:
            if auth is None:
                response = await self._http.post(meta.token_endpoint, data=form)
            else:
                response = await self._http.post(meta.token_endpoint, data=form, auth=auth)
        except httpx.HTTPError as err:
            raise ProviderUnavailable(f"the token endpoint cannot be reached: {type(err).__name__}") from None
        body = _json_object(response, "the token endpoint")
        if response.status_code != 200:
            raise TokenRejected("code_refused", str(body.get("error", response.status_code))[:100])
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRejected("no_id_token")
        return await self.check_id_token(id_token, nonce=nonce)

    async def check_id_token(self, id_token: str, *, nonce: str) -> Identity:
        """The identity in a signed ID token, or TokenRejected naming the check that failed."""
        try:
            token = jwt.decode(id_token, await self._key_set(), algorithms=SIGNING_ALGORITHMS)
        except InvalidKeyIdError:  # signed with a key we have not seen: the provider may have rotated its keys
            try:
                token = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=SIGNING_ALGORITHMS)
            except InvalidKeyIdError:
                raise TokenRejected("unknown_key") from None
            except JoseError as err:
                raise TokenRejected("bad_signature", type(err).__name__) from None
        except JoseError as err:
            raise TokenRejected("bad_signature", type(err).__name__) from None
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock().timestamp()), leeway=LEEWAY,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise TokenRejected("expired") from None
        except JoseError as err:
            raise TokenRejected(f"bad_{getattr(err, 'claim', 'claims')}", type(err).__name__) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise TokenRejected("bad_azp")  # OpenID Connect Core 3.1.3.7, items 4 and 5
        if self.config.email_claim:  # the operator says this provider's claim is the verified work address
            email = claims.get(self.config.email_claim)
            verified = isinstance(email, str) and "@" in email
        else:
            email = claims.get("email")
            verified = claims.get("email_verified") is True
        return Identity(issuer=self.config.issuer, subject=str(claims["sub"])[:255],
                        email=email.strip()[:254] if isinstance(email, str) else "", email_verified=verified,
                        id_token=id_token)


def _signing_key(key: object) -> bool:
    return isinstance(key, dict) and key.get("use", "sig") == "sig" and key.get("kty") in ("RSA", "EC", "OKP")


def _form_encode(value: str) -> str:
    return urlencode({"": value})[1:]


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if len(response.content) > MAX_DOCUMENT:
        raise ProviderUnavailable(f"{what} answered more than {MAX_DOCUMENT} bytes")
    try:
        value = response.json()
    except ValueError:
        raise ProviderUnavailable(f"{what} did not answer JSON ({response.status_code})") from None
    if not isinstance(value, dict):
        raise ProviderUnavailable(f"{what} did not answer a JSON object")
    return value
