"""CLI handlers for SCIM provisioning's bearer tokens: ``scim token create|list|revoke``.

A token is printed once (only its SHA-256 is stored): give it to the identity provider with the base URL
``<CONTACTCARD_BASE_URL>/scim/v2``. Creating a token leaves the older ones valid, so a provider can be moved to
a new token before the old one is revoked.
"""

from __future__ import annotations

import argparse

from ..service import Service
from .base import ACTOR, JSON, Command, arg, emit, uses_service, whole


async def token_create(service: Service, args: argparse.Namespace) -> int:
    token = await service.create_scim_token(actor=ACTOR)
    emit(args, {"token": token}, [token, f"give it to the identity provider with the SCIM URL "
                                         f"{service.base_url}/scim/v2; it is not shown again"])
    return 0


async def token_list(service: Service, args: argparse.Namespace) -> int:
    tokens = (await service.scim_state()).tokens
    emit(args, [{"id": t.id, "created_at": t.created_at.isoformat(), "created_by": t.created_by,
                 "revoked_at": t.revoked_at and t.revoked_at.isoformat(),
                 "last_used_at": t.last_used_at and t.last_used_at.isoformat()} for t in tokens],
         [f"{t.id}\tcreated {t.created_at.isoformat(timespec='minutes')} by {t.created_by}\t"
          + ("revoked " + t.revoked_at.isoformat(timespec="minutes") if t.revoked_at else "live")
          + ("\tlast used " + t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "\tnever used")
          for t in tokens] or ["no SCIM token"])
    return 0


async def token_revoke(service: Service, args: argparse.Namespace) -> int:
    revoked = await service.revoke_scim_tokens(args.id, actor=ACTOR)
    emit(args, {"revoked": revoked},
         [f"revoked SCIM token {', '.join(map(str, revoked))}" if revoked else "no live SCIM token to revoke"])
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(("scim", "token", "create"), "print a new SCIM bearer token, once (older tokens stay valid)",
            uses_service(token_create), (JSON,)),
    Command(("scim", "token", "list"), "list the SCIM tokens: created, revoked, last used",
            uses_service(token_list), (JSON,)),
    Command(("scim", "token", "revoke"), "revoke every live SCIM token, or the one given with --id",
            uses_service(token_revoke),
            (arg("--id", type=whole, metavar="N", help="only this token (see scim token list)"), JSON)),
)
