"""The server secret bound to its database: a missing or different secret file is refused, never replaced.

Every link token is HMAC(secret, nonce), so a new secret silently kills every printed card. The database keeps
a keyed check value of its secret from the first start (``check_value``); a database made before that was
stored is checked against one of its cards instead. A new secret is created only for a database that holds
neither, i.e. a new one.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from . import config, tokens
from .models import ContactcardError
from .store import Store

CHECK_LABEL = b"contactcard secret check"


class SecretMismatch(ContactcardError):
    """The secret file is missing or is not the one the database's links are keyed with."""


def check_value(secret: bytes) -> bytes:
    return hmac.digest(secret, CHECK_LABEL, hashlib.sha256)


def matches(secret: bytes, stored_check: bytes | None, sample_card: tuple[bytes, bytes] | None) -> bool | None:
    """Whether ``secret`` is the database's: True or False when it can tell, None for a database with neither a
    check value nor a card (a new one). ``sample_card`` is a card's (nonce, token digest)."""
    if stored_check is not None:
        return hmac.compare_digest(stored_check, check_value(secret))
    if sample_card is not None:
        nonce, token_digest = sample_card
        return hmac.compare_digest(tokens.digest(tokens.token_for(secret, nonce)), token_digest)
    return None


async def bind_secret(store: Store, secret_file: Path, db_path: Path) -> bytes:
    """The secret for this database: read and verified, or created when both the file and the database are new."""
    stored, sample = await store.secret_check(), await store.sample_card_key()
    secret = config.read_secret(secret_file)
    if secret is None:
        if stored is not None or sample is not None:
            raise SecretMismatch(
                f"secret file {secret_file} is missing, but the database {db_path} holds links keyed by its "
                "secret; set CONTACTCARD_SECRET_FILE to that file (a new secret would break every issued link)")
        secret = config.create_secret(secret_file)
    elif matches(secret, stored, sample) is False:
        raise SecretMismatch(
            f"secret file {secret_file} is not the one the database {db_path} was created with; set "
            "CONTACTCARD_SECRET_FILE to the original file (this one would break every issued link)")
    # a concurrent first start may have stored its own value first: the one that won is checked again
    if stored is None and not hmac.compare_digest(await store.set_secret_check(check_value(secret)),
                                                  check_value(secret)):
        raise SecretMismatch(f"secret file {secret_file} was replaced while the database {db_path} was being "
                             "set up; start again")
    return secret
