-- The order_stock index: where each stock event of an order is in the event
-- store, so that an order's audit trail reads exactly its own events instead
-- of its products' whole streams. Projector projections.OrderStock fills it
-- (the event stays in the event store; a row only points at it). The table
-- starts empty: the projection catches up from the first event, which also
-- indexes the stock events written before this migration.

-- +goose Up
CREATE TABLE read_order_stock_events (
    order_id         uuid   NOT NULL,
    -- The event's place in the global order (see eventstore.Position): the
    -- audit merges by it.
    position_commit  bigint NOT NULL,
    position_prepare bigint NOT NULL,
    -- The event's address, read back with ReadStream.
    stream_id        text   NOT NULL,
    stream_version   bigint NOT NULL,
    -- One row per event; the audit reads an order's rows in global order
    -- from this index alone.
    PRIMARY KEY (order_id, position_commit, position_prepare)
);

-- +goose Down
DROP TABLE read_order_stock_events;
DELETE FROM projection_checkpoints WHERE name IN ('order_stock', 'order_stock#rebuild');
