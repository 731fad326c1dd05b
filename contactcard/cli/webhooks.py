"""webhook add|list|remove|enable|test: endpoints that receive signed events (see ``webhooks``)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from .. import webhooks as hooks
from ..webhook_admin import WebhookAdmin
from . import format as fmt
from .base import ACTOR, JSON, Command, Runner, arg, emit, uses_opened, whole

Handler = Callable[[WebhookAdmin, argparse.Namespace], Awaitable[int]]


def uses_webhooks(handler: Handler) -> Runner:
    return uses_opened(lambda opened, args: handler(opened.webhooks, args))


def _json(endpoint: hooks.Endpoint) -> fmt.Json:
    return {"id": endpoint.id, "kind": endpoint.kind, "url": endpoint.url, "name": endpoint.name,
            "events": list(endpoint.events), "enabled": endpoint.enabled, "created_at": fmt.iso(endpoint.created_at),
            "disabled_at": fmt.iso(endpoint.disabled_at), "disabled_reason": endpoint.disabled_reason}


def _line(endpoint: hooks.Endpoint) -> str:
    state = "enabled" if endpoint.enabled else f"DISABLED ({fmt.printable(endpoint.disabled_reason)})"
    what = "chat" if endpoint.kind == hooks.CHAT else ",".join(endpoint.events)
    name = f" {fmt.printable(endpoint.name)!r}" if endpoint.name else ""
    return f"{endpoint.id}\t{state}\t{what}\t{endpoint.url}{name}"


def _events(args: argparse.Namespace) -> list[str]:
    if args.chat:
        return [e for given in args.events or [] for e in given.split(",") if e.strip()]
    given = [e.strip() for text in args.events or ["all"] for e in text.split(",") if e.strip()]
    return list(hooks.EVENT_TYPES) if given == ["all"] else given


async def _add(webhooks: WebhookAdmin, args: argparse.Namespace) -> int:
    added = await webhooks.add_endpoint(args.url, _events(args), kind=hooks.CHAT if args.chat else hooks.STANDARD,
                                        name=args.name or "", actor=ACTOR)
    lines = [_line(added.endpoint)]
    if added.endpoint.kind == hooks.STANDARD:
        lines.append(f"secret: {added.secret}  (shown once: give it to the receiver to verify signatures)")
    emit(args, {**_json(added.endpoint), "secret": added.secret if added.endpoint.kind == hooks.STANDARD else None},
         lines)
    return 0


async def _list(webhooks: WebhookAdmin, args: argparse.Namespace) -> int:
    endpoints = await webhooks.endpoints()
    emit(args, [_json(e) for e in endpoints], [_line(e) for e in endpoints])
    return 0


async def _remove(webhooks: WebhookAdmin, args: argparse.Namespace) -> int:
    removed = await webhooks.remove_endpoint(args.id, actor=ACTOR)
    emit(args, _json(removed), [f"removed webhook {removed.id}: {removed.url}"])
    return 0


async def _enable(webhooks: WebhookAdmin, args: argparse.Namespace) -> int:
    endpoint = await webhooks.enable_endpoint(args.id, actor=ACTOR)
    emit(args, _json(endpoint), [_line(endpoint)])
    return 0


async def _test(webhooks: WebhookAdmin, args: argparse.Namespace) -> int:
    await webhooks.send_test(args.id, actor=ACTOR)
    emit(args, {"id": args.id, "queued": hooks.TEST_EVENT},
         [f"queued a {hooks.TEST_EVENT} event for webhook {args.id} (the server sends it)"])
    return 0


ID = arg("id", type=whole, metavar="ID", help="the endpoint's number (see: contactcard webhook list)")

COMMANDS: tuple[Command, ...] = (
    Command(("webhook", "add"), "add an endpoint; prints its signing secret once", uses_webhooks(_add), (
        arg("url", metavar="URL", help="https:// address that receives the events"),
        arg("--events", action="append", metavar="TYPE[,TYPE]",
            help=f"event types, comma-separated or repeated (default: all): {', '.join(hooks.EVENT_TYPES)}"),
        arg("--chat", action="store_true",
            help="a Slack/Teams incoming-webhook URL employees may choose on /me for tap and save notifications"),
        arg("--name", metavar="TEXT", help="a name for admins (shown to employees for a chat endpoint)"),
        JSON)),
    Command(("webhook", "list"), "list endpoints, enabled or disabled (and why)", uses_webhooks(_list), (JSON,)),
    Command(("webhook", "remove"), "remove an endpoint and its queue", uses_webhooks(_remove), (ID, JSON)),
    Command(("webhook", "enable"), "enable an endpoint disabled after sustained failure", uses_webhooks(_enable),
            (ID, JSON)),
    Command(("webhook", "test"), "queue a webhook.test event for an endpoint", uses_webhooks(_test), (ID, JSON)),
)
