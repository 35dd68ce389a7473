-- The control store of production mode: assistants, threads, runs (the same tables as SQLite's, typed).

CREATE TABLE assistants (
    assistant_id TEXT PRIMARY KEY,
    graph_id     TEXT NOT NULL,
    config       JSONB NOT NULL DEFAULT '{}',
    context      JSONB NOT NULL DEFAULT '{}',
    metadata     JSONB NOT NULL DEFAULT '{}',
    name         TEXT NOT NULL,
    description  TEXT,
    version      INTEGER NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX assistants_graph ON assistants (graph_id);
CREATE INDEX assistants_metadata ON assistants USING gin (metadata jsonb_path_ops);

CREATE TABLE assistant_versions (
    assistant_id TEXT NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    graph_id     TEXT NOT NULL,
    config       JSONB NOT NULL DEFAULT '{}',
    context      JSONB NOT NULL DEFAULT '{}',
    metadata     JSONB NOT NULL DEFAULT '{}',
    name         TEXT NOT NULL,
    description  TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (assistant_id, version)
);

CREATE TABLE threads (
    thread_id        TEXT PRIMARY KEY,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    state_updated_at TIMESTAMPTZ NOT NULL,
    metadata         JSONB NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT 'idle',
    state_values     JSONB,
    interrupts       JSONB NOT NULL DEFAULT '{}',
    config           JSONB NOT NULL DEFAULT '{}',
    error            JSONB
);
CREATE INDEX threads_created ON threads (created_at);
CREATE INDEX threads_updated ON threads (updated_at);
CREATE INDEX threads_metadata ON threads USING gin (metadata jsonb_path_ops);

CREATE TABLE runs (
    run_id             TEXT PRIMARY KEY,
    thread_id          TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    assistant_id       TEXT NOT NULL,
    graph_id           TEXT NOT NULL,
    status             TEXT NOT NULL,
    metadata           JSONB NOT NULL DEFAULT '{}',
    multitask_strategy TEXT NOT NULL,
    request            JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    available_at       TIMESTAMPTZ NOT NULL,
    attempt            INTEGER NOT NULL DEFAULT 0,
    lease_owner        TEXT,
    lease_expires_at   TIMESTAMPTZ,
    cancel_action      TEXT,
    output             JSONB,
    error              JSONB
);
CREATE INDEX runs_pending ON runs (thread_id, created_at, run_id) WHERE status = 'pending';
CREATE INDEX runs_running ON runs (thread_id) WHERE status = 'running';
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_thread ON runs (thread_id, created_at);
