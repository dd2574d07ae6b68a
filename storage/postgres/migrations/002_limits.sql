-- What the turns admitted but not yet ended hold of the shared limits, and
-- who holds the sessions and the provider slots: the limits of every Easel
-- process on this database.

-- One row per admitted, unfinished turn: the user's turns in flight.
CREATE TABLE user_turns (
    session_id text NOT NULL,
    turn_id    integer NOT NULL,
    user_key   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, turn_id)
);
CREATE INDEX user_turns_user ON user_turns (user_key);

-- One row per admitted, unfinished turn under a quota: what it will use.
CREATE TABLE quota_holds (
    session_id    text NOT NULL,
    turn_id       integer NOT NULL,
    user_key      text NOT NULL,
    workspace_key text NOT NULL,
    images        bigint NOT NULL,
    cost_usd      double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, turn_id)
);
CREATE INDEX quota_holds_user ON quota_holds (user_key);
CREATE INDEX quota_holds_workspace ON quota_holds (workspace_key);

-- The process running a session's turns, until its lease ends; token grows
-- with every grant and fences the writes of a process that lost it.
CREATE SEQUENCE lease_tokens;
CREATE TABLE session_leases (
    session_id text PRIMARY KEY,
    holder     text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);

-- engine.max_concurrent rows: a provider call in flight holds one.
CREATE TABLE provider_slots (
    slot       integer PRIMARY KEY,
    holder     text,
    expires_at timestamptz
);
