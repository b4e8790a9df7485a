-- Snapshots of long streams (a product that took a million reservations):
-- one row per stream, the latest. A cache: deleting rows changes nothing but
-- the speed of loading those aggregates. schema_version is the encoding of
-- data; a reader ignores a snapshot of a schema it does not know.

-- +goose Up
CREATE TABLE snapshots (
    stream_id        text        PRIMARY KEY,
    -- the stream version of the last event the state covers
    version          bigint      NOT NULL,
    schema_version   integer     NOT NULL,
    -- the global position of that event
    position_commit  bigint      NOT NULL,
    position_prepare bigint      NOT NULL,
    data             bytea       NOT NULL,
    taken_at         timestamptz NOT NULL
);

-- +goose Down
DROP TABLE snapshots;
