-- Sessions, as JSON documents of core.Session; the thread bindings; the job
-- index of their turns; usage counters; the inbox of deliveries; dedupe
-- marks; and the starts of things such as gateway sessions.

CREATE TABLE sessions (
    id         text PRIMARY KEY,
    doc        jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX sessions_updated ON sessions (updated_at DESC, id);

CREATE TABLE threads (
    platform   text NOT NULL,
    thread     text NOT NULL,
    session_id text NOT NULL REFERENCES sessions (id),
    PRIMARY KEY (platform, thread)
);

CREATE TABLE jobs (
    session_id text NOT NULL,
    turn_id    integer NOT NULL,
    status     text NOT NULL,
    kind       text NOT NULL,
    user_id    text NOT NULL,
    attempts   integer NOT NULL,
    pending    boolean NOT NULL,
    queued_at  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
CREATE INDEX jobs_pending ON jobs (queued_at, session_id, turn_id) WHERE pending;

CREATE TABLE usage (
    key      text PRIMARY KEY,
    turns    bigint NOT NULL,
    images   bigint NOT NULL,
    cost_usd double precision NOT NULL
);

CREATE TABLE inbox (
    key     text PRIMARY KEY,
    kind    text NOT NULL,
    payload bytea NOT NULL,
    at      timestamptz NOT NULL
);

CREATE TABLE events (
    key        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX events_expiry ON events (expires_at);

CREATE TABLE starts (
    name text NOT NULL,
    at   timestamptz NOT NULL
);
CREATE INDEX starts_name ON starts (name, at);
