"""The only place with SQL. Small typed functions, rows mapped to dataclasses; one module per area.

Two paths to the database (customers come first, see DESIGN.md):
- the writer: one aiosqlite connection that commits the scan writer's batches and every other write. Writes
  that must be atomic run inside ``async with store.transaction():``, serialised with the batches.
- readers: a small bounded pool of read-only connections (WAL readers) used from worker threads, off the event
  loop, for every read outside a transaction (console, /me, CLI reports, exports, maintenance). A report,
  however slow, holds no lock the writer needs: a scan's commit never waits for it, and it never waits for one.
Reads inside a transaction use the writer's connection, so they see the transaction's own writes.

``base`` holds the connections and the transaction; each other module adds one area's statements to ``Store``.
"""

from .accounts import AccountStore
from .apitokens import ApiTokenStore
from .base import Readers, parse_ts, ts
from .cards import CardStore
from .company import CompanyStore
from .events import MAX_APPEND, DataChanged, EventStore
from .files import DatabaseLock, DatabaseReport, backup_database, inspect_database, restore_database
from .leads import LeadStore
from .records import CardRecord, EventFilter, EventRow, InvitationRecord, SessionRecord, UserRecord
from .scim import ScimStore
from .sso import SsoStore
from .totals import TotalsStore
from .webhooks import WebhookStore


class Store(CompanyStore, CardStore, EventStore, TotalsStore, AccountStore, SsoStore, WebhookStore,
            LeadStore, ApiTokenStore, ScimStore):
    """The database: every SQL statement of the program, as small typed methods returning ``models`` values.

    One writer connection, serialised by ``transaction()`` (shared with the scan writer's batches), and a pool
    of read-only connections for reads outside a transaction. ``app`` and ``cli.base`` open it and hand it to
    ``Service``, ``Accounts`` and ``ScanWriter``, which alone use it (with ``reports``/``stats``, called by the
    service); handlers never touch it.
    """


__all__ = [
    "MAX_APPEND", "CardRecord", "DataChanged", "DatabaseLock", "DatabaseReport", "EventFilter", "EventRow",
    "InvitationRecord", "Readers", "SessionRecord", "Store", "UserRecord", "backup_database", "inspect_database",
    "parse_ts", "restore_database", "ts",
]
