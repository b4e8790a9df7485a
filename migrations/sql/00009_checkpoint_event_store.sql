-- A checkpoint is a position in one event store: PostgreSQL's events table
-- (tx_id, seq) or KurrentDB's $all log (byte offsets). The same numbers
-- mean nothing in the other, so every checkpoint records the kind of event
-- store its position belongs to, and a runner, a rebuild or an ordersd
-- configured with another refuses it instead of reading from a wrong
-- position. Checkpoints written before this migration are PostgreSQL's:
-- no other event store could run then. The default also keeps a previous
-- version's inserts (during a rolling upgrade) correct.
--
-- Only the kind is recorded, not which database of that kind: the event
-- store offers no stable identity of its log (a KurrentDB cluster's hosts
-- change while its log stays the same), and PostgreSQL's events live in
-- the same database as these rows. The other tables that hold positions
-- need no column: read_order_stock_events is the order_stock read model,
-- rebuilt with its checkpoint, and a snapshot is checked against the event
-- it names (its position must be the event's own) before it is used.

-- +goose Up
ALTER TABLE projection_checkpoints ADD COLUMN event_store text NOT NULL DEFAULT 'postgres';

-- +goose Down
ALTER TABLE projection_checkpoints DROP COLUMN event_store;
