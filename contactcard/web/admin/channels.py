"""Channel editing shared by an employee's page and the company's general channels (owner None).

The owner comes from the URL, and a channel id from the URL must belong to that owner, or it is a 404:
changing the id in a form cannot reach another employee's channel.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from ...models import ChannelKind, User, ValidationError
from ...service import Service
from .base import field

KINDS = tuple(ChannelKind)


async def _owned(service: Service, owner: int | None, channel_id: int) -> None:
    channel = await service.channel(channel_id)
    if channel is None or channel.employee_id != owner:
        raise HTTPException(404)


async def add(service: Service, owner: int | None, form: FormData, user: User) -> None:
    """Raises ValidationError (PolicyError) with the reason; nothing is written then."""
    kind = field(form, "kind")
    if kind not in {k.value for k in KINDS}:
        raise ValidationError("choose the kind of channel")
    await service.add_channel(owner, kind, field(form, "target"), field(form, "label"), actor=user.email)


async def remove(service: Service, owner: int | None, channel_id: int, user: User) -> None:
    await _owned(service, owner, channel_id)
    await service.remove_channel(channel_id, owner, actor=user.email)


async def move(service: Service, owner: int | None, channel_id: int, form: FormData, user: User) -> None:
    await _owned(service, owner, channel_id)
    step = {"up": -1, "down": 1}.get(field(form, "direction"))
    if step is None:
        raise ValidationError("choose up or down")
    await service.move_channel(channel_id, owner, step, actor=user.email)
