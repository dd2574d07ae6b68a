-- What the replicas running the Discord and Slack adapters share: which
-- replicas are alive, the Discord gateway shards each holds, the pacing of
-- Discord's IDENTIFYs, and the Slack Socket Mode connections.

-- A replica running Discord, alive while its row is renewed and its
-- process holds its liveness lock (see easel_holder_alive, in the next
-- migration): a replica killed outright loses that lock at once, a frozen
-- one its row when the row expires.
CREATE TABLE discord_replicas (
    holder     text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- The replica holding each gateway shard, until its lease ends; token
-- grows with every grant (from lease_tokens) and fences a replica that
-- lost the shard while frozen.
CREATE TABLE discord_shards (
    shard      integer PRIMARY KEY,
    holder     text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);

-- The first moment each max_concurrency bucket may IDENTIFY again.
CREATE TABLE discord_identify (
    bucket  integer PRIMARY KEY,
    next_at timestamptz NOT NULL
);

-- Discord's daily session_start_limit as last read, less the IDENTIFYs
-- reserved since; one row.
CREATE TABLE discord_identify_budget (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    remaining integer NOT NULL,
    reset_at  timestamptz NOT NULL
);

-- Slack allows 10 Socket Mode connections per app: a replica holds one of
-- these rows while its connection is open.
CREATE TABLE slack_connections (
    slot       integer PRIMARY KEY,
    holder     text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
