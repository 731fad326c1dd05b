"""Schema migrations, keyed by version. Applied in order at start-up and by ``contactcard migrate``.

A migration, once released, is never edited: a database made by any earlier version must upgrade
through the same steps. Add a new entry instead.
"""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE company (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        name_en TEXT NOT NULL DEFAULT '',
        logo_sha TEXT,
        brand_color TEXT NOT NULL DEFAULT '#06c755',
        business_hours TEXT NOT NULL DEFAULT '',
        business_hours_en TEXT NOT NULL DEFAULT '',
        timezone TEXT NOT NULL DEFAULT 'Asia/Tokyo',
        default_card_days INTEGER NOT NULL DEFAULT 90,
        retention_days INTEGER NOT NULL DEFAULT 400,
        allow_email_domains TEXT NOT NULL DEFAULT '',
        allow_phone_prefixes TEXT NOT NULL DEFAULT '',
        allow_line_ids TEXT NOT NULL DEFAULT '',
        allow_line_works_domains TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE media (
        sha TEXT PRIMARY KEY,
        content_type TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE employees (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        family_name TEXT NOT NULL,
        given_name TEXT NOT NULL DEFAULT '',
        family_kana TEXT NOT NULL DEFAULT '',
        given_kana TEXT NOT NULL DEFAULT '',
        latin_name TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        department TEXT NOT NULL DEFAULT '',
        photo_sha TEXT REFERENCES media(sha),
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'departed')),
        successor_id INTEGER REFERENCES employees(id),
        created_at TEXT NOT NULL
    );
    CREATE TABLE channels (
        id INTEGER PRIMARY KEY,
        employee_id INTEGER REFERENCES employees(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        position INTEGER NOT NULL
    );
    CREATE INDEX channels_by_employee ON channels(employee_id, position);
    CREATE TABLE cards (
        id INTEGER PRIMARY KEY,
        employee_id INTEGER NOT NULL REFERENCES employees(id),
        generation INTEGER NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        nonce BLOB NOT NULL,
        token_digest BLOB NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_reason TEXT,
        UNIQUE (employee_id, generation)
    );
    -- one live (unrevoked) link per employee, enforced by the database itself
    CREATE UNIQUE INDEX one_open_card ON cards(employee_id) WHERE revoked_at IS NULL;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        card_id INTEGER REFERENCES cards(id),
        employee_id INTEGER REFERENCES employees(id),
        outcome TEXT NOT NULL,
        channel_id INTEGER,
        channel_kind TEXT,
        user_agent TEXT NOT NULL DEFAULT '',
        referrer TEXT NOT NULL DEFAULT '',
        accept_language TEXT NOT NULL DEFAULT '',
        visitor_key TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_by_time ON events(time);
    CREATE INDEX events_by_employee ON events(employee_id, time);
    """,
    2: """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'employee')),
        employee_id INTEGER UNIQUE REFERENCES employees(id),
        password_hash TEXT,
        created_at TEXT NOT NULL,
        disabled_at TEXT
    );
    CREATE TABLE sessions (
        id_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions(user_id);
    CREATE TABLE invitations (
        token_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        purpose TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE login_failures (
        key TEXT NOT NULL,
        time TEXT NOT NULL
    );
    CREATE INDEX login_failures_by_key ON login_failures(key, time);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        before TEXT,
        after TEXT
    );
    CREATE INDEX audit_by_time ON audit(time);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # Analytics: the visitor's device and whether it was a bot, per event; daily totals that outlive the
    # purge of raw events; and a per-day count of unknown-token hits dropped by the rate limit.
    3: """
    ALTER TABLE events ADD COLUMN is_bot INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN device TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN os TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN browser TEXT NOT NULL DEFAULT '';
    -- one row per local day (company time zone) and scope: card_id 0 sums the employee's cards,
    -- employee_id 0 and card_id 0 is the whole company (including hits on unknown links)
    CREATE TABLE daily_totals (
        day TEXT NOT NULL,
        employee_id INTEGER NOT NULL,
        card_id INTEGER NOT NULL,
        scans INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0,
        visitors INTEGER NOT NULL DEFAULT 0,
        clicks INTEGER NOT NULL DEFAULT 0,
        clickers INTEGER NOT NULL DEFAULT 0,
        vcards INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, employee_id, card_id)
    ) WITHOUT ROWID;
    CREATE TABLE analytics_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        totals_through TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO analytics_state (id, totals_through) VALUES (1, '');
    CREATE TABLE event_overflow (
        day TEXT NOT NULL,
        outcome TEXT NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, outcome)
    ) WITHOUT ROWID;
    """,
    # The server secret's keyed check value, HMAC(secret, "contactcard secret check"), stored at first start:
    # a missing or different secret file is then refused instead of silently replacing the one every link
    # is keyed with (see keycheck.py). The value reveals nothing about the secret.
    4: """
    CREATE TABLE secret_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        value BLOB NOT NULL
    );
    """,
    # Refused (throttled) sign-in attempts, counted per throttled key and throttle period, so that the audit
    # trail gets one row per period instead of one per attempt.
    5: """
    CREATE TABLE sign_in_throttles (
        key TEXT NOT NULL,
        until TEXT NOT NULL,
        refused INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key, until)
    ) WITHOUT ROWID;
    """,
    # The company's allow-list of hosts for web, booking and custom links (one per line, like the other lists).
    6: """
    ALTER TABLE company ADD COLUMN allow_web_hosts TEXT NOT NULL DEFAULT '';
    """,
    # A session's CSRF token is now derived from its id (auth.csrf_token), so the copy
    # kept in clear goes. Pages rendered before the upgrade carry the old token: their next post is refused once.
    7: """
    ALTER TABLE sessions DROP COLUMN csrf_token;
    """,
    # Daily totals kept live: each batch of scans adds to daily_totals in its own transaction. A visitor key
    # counts once per day and scope: its row here is new or not (only days still receiving scans are kept).
    # Events stored before this version are the backlog the roll-up counts. The scan log's outcome filter and
    # the dashboard's alerts read an index, newest first; a scope's days (a chart) read another.
    8: """
    CREATE TABLE daily_visitors (
        day TEXT NOT NULL,
        employee_id INTEGER NOT NULL,
        card_id INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('scan', 'click')),
        visitor_key TEXT NOT NULL,
        PRIMARY KEY (day, employee_id, card_id, kind, visitor_key)
    ) WITHOUT ROWID;
    ALTER TABLE analytics_state ADD COLUMN live_after_id INTEGER NOT NULL DEFAULT 0;
    UPDATE analytics_state SET live_after_id = (SELECT COALESCE(MAX(id), 0) FROM events) WHERE id = 1;
    CREATE INDEX events_by_outcome ON events(outcome, time);
    CREATE INDEX daily_totals_by_scope ON daily_totals(employee_id, card_id, day);
    """,
    # Single sign-on (OpenID Connect): a user's link to the provider's subject (matched at later sign-ins before
    # any email), the sign-ins in flight (state, nonce, PKCE verifier; single use, minutes long), the company's
    # "SSO only" setting and the provider's last discovery outcome for the console.
    9: """
    ALTER TABLE users ADD COLUMN oidc_issuer TEXT;
    ALTER TABLE users ADD COLUMN oidc_subject TEXT;
    CREATE UNIQUE INDEX users_by_oidc ON users(oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;
    CREATE TABLE oidc_requests (
        state_hash BLOB PRIMARY KEY,
        browser_hash BLOB NOT NULL,
        nonce TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        next_url TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE TABLE sso_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        sso_only INTEGER NOT NULL DEFAULT 0,
        discovered_at TEXT,
        error TEXT NOT NULL DEFAULT '',
        error_at TEXT
    );
    INSERT INTO sso_settings (id) VALUES (1);
""",
    # Webhooks (see store/webhooks.py): endpoints (the signing secret is derived from the server secret and the
    # nonce, never stored), the outbox of messages (one per event, its webhook-id and the exact body) and their
    # deliveries (one per endpoint, delivered in id order per endpoint), and employees' chat opt-ins.
    10: """
    CREATE TABLE webhook_endpoints (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('standard', 'chat')),
        url TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        events TEXT NOT NULL DEFAULT '',
        nonce BLOB NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        disabled_at TEXT,
        disabled_reason TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE webhook_messages (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
        message_id INTEGER NOT NULL REFERENCES webhook_messages(id),
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at TEXT NOT NULL,
        first_failed_at TEXT,
        last_at TEXT,
        last_status INTEGER,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(endpoint_id, state, id);
    CREATE INDEX webhook_deliveries_message ON webhook_deliveries(message_id);
    CREATE TABLE chat_optins (
        employee_id INTEGER PRIMARY KEY REFERENCES employees(id) ON DELETE CASCADE,
        endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE
    );
    """,
    # Lead capture (issue 13): the company's switch for the form on card pages, and the company inbox. A lead
    # keeps the consent text shown and its version, the card it came through (for context; the employee never
    # receives it), the day's visitor pseudonym (per-visitor limits, no address) and a digest of the form's
    # nonce (a form posted twice is stored once).
    11: """
    ALTER TABLE company ADD COLUMN leads_enabled INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE leads (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        card_id INTEGER REFERENCES cards(id),
        employee_id INTEGER REFERENCES employees(id),
        name TEXT NOT NULL,
        organisation TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '' COLLATE NOCASE,
        phone TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL,
        consent_version TEXT NOT NULL,
        consent_text TEXT NOT NULL,
        visitor_key TEXT NOT NULL DEFAULT '',
        form_digest BLOB NOT NULL UNIQUE
    );
    CREATE INDEX leads_by_time ON leads(time);
    CREATE INDEX leads_by_visitor ON leads(visitor_key, time);
    CREATE INDEX leads_by_email ON leads(email);
    """,
    # Link previews may show the employee's photo instead of the company's card image, if the company allows it.
    12: """
    ALTER TABLE company ADD COLUMN preview_photo INTEGER NOT NULL DEFAULT 0;
    """,
    # API tokens (issue 12): only the SHA-256 of each token is kept. A name is never reused, so the audit
    # trail's actor "api:NAME" always means one token.
    13: """
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'scans')),
        token_hash BLOB NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT
    );
    """,
    # SCIM provisioning (issue 11): the identity provider's bearer tokens (only their SHA-256), the SCIM view of
    # each employee it wrote (the document it last wrote; a DELETE hides it), and its latest errors for the
    # settings page. A userName is unique among the resources not deleted.
    14: """
    CREATE TABLE scim_tokens (
        id INTEGER PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
    );
    CREATE TABLE scim_identities (
        employee_id INTEGER PRIMARY KEY REFERENCES employees(id),
        user_name TEXT NOT NULL COLLATE NOCASE,
        document TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE UNIQUE INDEX scim_user_names ON scim_identities(user_name) WHERE deleted_at IS NULL;
    CREATE TABLE scim_errors (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        status INTEGER NOT NULL,
        scim_type TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT ''
    );
    """,
    # Signing out at the identity provider too (OpenID Connect RP-Initiated Logout): a session opened through
    # single sign-on keeps the issuer and the provider's ID token, to send back as id_token_hint at sign-out.
    # The token is sealed with a key derived from the session id, which only the browser holds (auth.seal), so
    # the database or a backup alone cannot read it; it goes with the session row, however the session ends.
    15: """
    ALTER TABLE sessions ADD COLUMN oidc_issuer TEXT;
    ALTER TABLE sessions ADD COLUMN id_token_sealed BLOB;
    """,
    # Several servers on one database (a rolling restart, a second instance): a pending delivery is claimed by
    # one deliverer before it is sent. ``claim`` names that round (host, process, random part), and the claim
    # moves ``next_at`` to the end of its lease: a process that dies mid-delivery leaves it to be sent again after
    # the lease, and a claimer's late outcome, once the lease was taken over, is not recorded (see delivery.py).
    16: """
    ALTER TABLE webhook_deliveries ADD COLUMN claim TEXT;
    """,
}

LATEST = max(MIGRATIONS)
