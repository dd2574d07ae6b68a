-- Which process holds each delivery waiting in the inbox, and until when:
-- the process that recorded it, or the one that took it up after that one
-- died or froze. A hold is renewed while its process runs, and the turn a
-- delivery asks for is recorded only by its holder.
ALTER TABLE inbox ADD COLUMN holder text;
ALTER TABLE inbox ADD COLUMN held_until timestamptz;

-- Whether the process named h is alive: each Easel process holds, on a
-- connection of its own, the advisory lock (1164014437, hashtext(its
-- name)) for as long as it runs. A killed process's connection closes and
-- its lock goes with it, so what it held is free at once, without waiting
-- for its leases to run out; a frozen process keeps its lock, and loses
-- what it holds only when its leases run out.
CREATE FUNCTION easel_holder_alive(h text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = 1164014437 AND objid = hashtext(h)::oid AND objsubid = 2
    )
$$;
