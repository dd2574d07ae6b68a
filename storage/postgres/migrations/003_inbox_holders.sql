-- Which process holds each delivery waiting in the inbox, and until when:
-- the process that recorded it, or the one that took it up after that one
-- died or froze. A hold is renewed while its process runs, and the turn a
-- delivery asks for is recorded only by its holder.
ALTER TABLE inbox ADD COLUMN holder text;
ALTER TABLE inbox ADD COLUMN held_until timestamptz;
