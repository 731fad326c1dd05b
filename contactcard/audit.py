"""The audit trail: one helper that writes a row, to be called inside the transaction that makes the change.

Rows are append-only (triggers in the schema refuse UPDATE and DELETE). ``before`` and ``after`` hold the
changed values as JSON, keys sorted, so a viewer or an export can show exactly what changed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .store import Store

MAX_ACTOR = 254


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # secrets (nonces, digests) never go into the trail
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(values: Mapping[str, Any] | None) -> str | None:
    if values is None:
        return None
    return json.dumps(_plain(values), ensure_ascii=False, sort_keys=True)


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, from each side."""
    keys = [k for k in after if _plain(before.get(k)) != _plain(after.get(k))]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


async def write(store: Store, at: datetime, actor: str, action: str, target: str,
                before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    """Append one row; the caller holds the transaction that makes the change."""
    await store.add_audit(at, actor[:MAX_ACTOR] or "unknown", action, target, to_json(before), to_json(after))
