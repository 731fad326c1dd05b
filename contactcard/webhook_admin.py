"""The webhook use cases, called alike by the console, ``/me`` and the CLI: endpoints (add, list, remove, enable),
the delivery log, redeliver, send a test event, employees' chat opt-ins. Each change is one transaction with its
audit row, like ``Accounts``. What events exist and how they are signed: ``webhooks``; sending: ``delivery``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import audit as audit_trail
from . import destinations
from . import webhooks as hooks
from .models import Clock, Conflict, NotFound, ValidationError
from .service import DASHBOARD_TTL
from .store import Store

MAX_NAME = 100


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: hooks.Endpoint
    secret: str  # ``whsec_…``: shown once, when the endpoint is added


class WebhookAdmin:
    def __init__(self, store: Store, clock: Clock, *, secret: bytes, allow_private: bool,
                 resolver: destinations.Resolver = destinations.system_resolver) -> None:
        self._store = store
        self._secret = secret  # derives each endpoint's signing secret; never leaves this module and delivery
        self.clock = clock
        self.allow_private = allow_private
        self.resolver = resolver
        self._alerts: tuple[datetime, tuple[hooks.Endpoint, ...]] | None = None  # read at, disabled endpoints

    async def _audit(self, now: datetime, actor: str, action: str, target: str,
                     before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        await audit_trail.write(self._store, now, actor, action, target, before, after)

    # --- endpoints ----------------------------------------------------------------------------

    async def add_endpoint(self, url: str, events: list[str] | tuple[str, ...], *, kind: str = hooks.STANDARD,
                           name: str = "", actor: str) -> NewEndpoint:
        """Check the destination (scheme, form, and where its name resolves now: see ``destinations``) and add
        it. The signing secret is returned here once; it can be derived again but is never shown again."""
        subscribed = hooks.check_events(list(events), kind)
        dest = destinations.parse(url, allow_private=self.allow_private)
        # A name that does not resolve yet may later: every attempt checks it again.
        with contextlib.suppress(destinations.Unresolved):
            await destinations.checked_address(dest, allow_private=self.allow_private, resolver=self.resolver)
        name = name.strip()
        if len(name) > MAX_NAME or any(not c.isprintable() for c in name):
            raise ValidationError("the name must be printable and at most %(most)d characters", most=MAX_NAME)
        nonce = hooks.new_nonce()
        now = self.clock()
        async with self._store.transaction():
            endpoint_id = await self._store.add_webhook_endpoint(kind, dest.url, name, subscribed, nonce, now)
            await self._audit(now, actor, "webhook.add", f"webhook:{endpoint_id}", None,
                              {"kind": kind, "url": _shown(kind, dest.url), "name": name, "events": list(subscribed)})
        endpoint = await self.endpoint(endpoint_id)
        return NewEndpoint(endpoint, hooks.endpoint_secret(self._secret, nonce))

    async def endpoints(self) -> list[hooks.Endpoint]:
        return await self._store.webhook_endpoints()

    async def endpoint(self, endpoint_id: int) -> hooks.Endpoint:
        found = await self._store.webhook_endpoint(endpoint_id)
        if found is None:
            raise NotFound("no webhook endpoint %(id)s", id=endpoint_id)
        return found

    async def remove_endpoint(self, endpoint_id: int, *, actor: str) -> hooks.Endpoint:
        """The endpoint and its queue go; employees who chose it for chat notifications are opted out."""
        endpoint = await self.endpoint(endpoint_id)
        now = self.clock()
        async with self._store.transaction():
            await self._store.remove_webhook_endpoint(endpoint_id)
            await self._audit(now, actor, "webhook.remove", f"webhook:{endpoint_id}",
                              {"kind": endpoint.kind, "url": _shown(endpoint.kind, endpoint.url),
                               "events": list(endpoint.events)}, None)
        self._alerts = None
        return endpoint

    async def enable_endpoint(self, endpoint_id: int, *, actor: str) -> hooks.Endpoint:
        """Back in service after it was disabled for sustained failure; its pending deliveries resume in order."""
        endpoint = await self.endpoint(endpoint_id)
        if endpoint.enabled:
            raise Conflict("webhook endpoint %(id)s is enabled already", id=endpoint_id)
        now = self.clock()
        async with self._store.transaction():
            await self._store.enable_webhook_endpoint(endpoint_id)
            await self._audit(now, actor, "webhook.enable", f"webhook:{endpoint_id}",
                              {"enabled": False, "disabled_reason": endpoint.disabled_reason}, {"enabled": True})
        self._alerts = None
        return await self.endpoint(endpoint_id)

    async def alerts(self) -> tuple[hooks.Endpoint, ...]:
        """Endpoints disabled after sustained failure: the console shows each until it is enabled or removed.

        Read at most once per ``DASHBOARD_TTL``, like the dashboard's figures (an admin holding reload down costs
        the scans no read per reload); enabling or removing one here drops it at once.
        """
        now = self.clock()
        if self._alerts is not None and self._alerts[0] <= now < self._alerts[0] + DASHBOARD_TTL:
            return self._alerts[1]
        found = tuple(e for e in await self.endpoints() if not e.enabled)
        self._alerts = (now, found)
        return found

    # --- deliveries ---------------------------------------------------------------------------

    async def log(self, endpoint_id: int, *, limit: int = 100) -> list[hooks.LogEntry]:
        await self.endpoint(endpoint_id)
        return await self._store.webhook_log(endpoint_id, limit=limit)

    async def send_test(self, endpoint_id: int, *, actor: str) -> None:
        """A ``webhook.test`` event to this endpoint only, queued behind what it has pending."""
        endpoint = await self.endpoint(endpoint_id)
        now = self.clock()
        async with self._store.transaction():
            await self._store.enqueue_webhook_to(endpoint.id, now, hooks.TEST_EVENT, {"endpoint_id": endpoint.id})
            await self._audit(now, actor, "webhook.test", f"webhook:{endpoint_id}", None, None)

    async def redeliver(self, endpoint_id: int, delivery_id: int, *, actor: str) -> None:
        """The same message again (same webhook-id, same body) to the same endpoint, behind what is pending."""
        await self.endpoint(endpoint_id)
        now = self.clock()
        async with self._store.transaction():
            if await self._store.redeliver(endpoint_id, delivery_id, now) is None:
                raise NotFound("no delivery %(delivery)s for webhook endpoint %(id)s", delivery=delivery_id,
                               id=endpoint_id)
            await self._audit(now, actor, "webhook.redeliver", f"webhook:{endpoint_id}", None,
                              {"delivery_id": delivery_id})

    # --- chat notifications for employees -----------------------------------------------------

    async def chat_destinations(self) -> list[hooks.Endpoint]:
        """The chat endpoints an admin allows, which an employee may choose on /me."""
        return [e for e in await self.endpoints() if e.kind == hooks.CHAT and e.enabled]

    async def chat_optin(self, employee_id: int) -> int | None:
        return await self._store.chat_optin(employee_id)

    async def set_chat_optin(self, employee_id: int, endpoint_id: int | None, *, actor: str) -> None:
        """Tell this employee in that chat when a customer taps one of their channels or saves their contact
        (None: stop). Only a chat endpoint the admin added is accepted."""
        if endpoint_id is not None and endpoint_id not in {e.id for e in await self.chat_destinations()}:
            raise NotFound("no such chat destination")
        before = await self._store.chat_optin(employee_id)
        now = self.clock()
        async with self._store.transaction():
            await self._store.set_chat_optin(employee_id, endpoint_id)
            await self._audit(now, actor, "webhook.chat_optin", f"employee:{employee_id}",
                              {"endpoint_id": before}, {"endpoint_id": endpoint_id})


def _shown(kind: str, url: str) -> str:
    """A chat incoming-webhook URL is itself the credential to post there: the audit trail keeps its host only."""
    return url if kind == hooks.STANDARD else url.split("/", 3)[2] + "/…"
