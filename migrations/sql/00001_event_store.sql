-- The event store: one append-only table of events and the function that
-- appends to it. See docs/ARCHITECTURE.md ("Global order without gaps") for
-- why events are ordered by (tx_id, seq) and read only below the snapshot
-- xmin.

-- +goose Up
CREATE TABLE events (
    -- Id of the appending transaction: the "commit" part of a position.
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- Increases within a transaction: the "prepare" part of a position.
    -- Only order within one transaction matters, so backends may cache.
    seq            bigint      NOT NULL GENERATED ALWAYS AS IDENTITY (CACHE 64),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL,
    event_type     text        NOT NULL,
    -- json, not jsonb: the store keeps the writer's bytes exactly.
    data           json        NOT NULL,
    metadata       json        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (tx_id, seq),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_check CHECK (stream_version >= 0)
);

COMMENT ON TABLE events IS 'Event store: append-only; read in (tx_id, seq) order below pg_snapshot_xmin.';

-- es_append appends events to one stream if its version matches
-- p_expected: -1 any, -2 no stream, -3 stream exists, >= 0 exact version.
--
-- It returns one row: outcome 'appended', 'idempotent' (the same event ids
-- are already stored where this append would put them; nothing written),
-- 'wrong_version' (stream_version is then the actual version, -1 for none) or
-- 'duplicate' (the first event id is stored in this stream but the rest do not
-- line up).
--
-- The per-stream advisory lock is taken before the transaction writes
-- anything, so before it has a transaction id: a later append to the same
-- stream therefore always gets a larger tx_id, which keeps the global order
-- consistent with every stream's order. Appends to different streams do not
-- wait for each other.
-- +goose StatementBegin
CREATE FUNCTION es_append(
    p_stream   text,
    p_expected bigint,
    p_ids      uuid[],
    p_types    text[],
    p_data     json[],
    p_metadata json[]
) RETURNS TABLE (outcome text, stream_version bigint, tx_id xid8, seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_n       int := cardinality(p_ids);
    v_current bigint;
    v_first   bigint;
    v_matched int;
    v_last    bigint;
BEGIN
    -- 1163084612 = 'ESAP': keeps these keys apart from other advisory locks.
    PERFORM pg_advisory_xact_lock(1163084612, hashtext(p_stream));

    SELECT e.stream_version INTO v_current
      FROM events e WHERE e.stream_id = p_stream
     ORDER BY e.stream_version DESC LIMIT 1;
    IF NOT FOUND THEN
        v_current := -1;
    END IF;

    -- Where would a previous attempt of this append have put the events?
    IF p_expected >= 0 OR p_expected = -2 THEN
        IF v_current <> greatest(p_expected, -1) THEN
            v_first := greatest(p_expected, -1) + 1;
        END IF;
    ELSE
        SELECT e.stream_version INTO v_first
          FROM events e WHERE e.event_id = p_ids[1] AND e.stream_id = p_stream;
    END IF;

    IF v_first IS NOT NULL THEN
        SELECT count(*), max(e.stream_version) INTO v_matched, v_last
          FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
          JOIN events e ON e.stream_id = p_stream
                       AND e.stream_version = v_first + u.ord - 1
                       AND e.event_id = u.id;
        IF v_matched = v_n THEN
            RETURN QUERY
            SELECT 'idempotent'::text, e.stream_version, e.tx_id, e.seq
              FROM events e WHERE e.stream_id = p_stream AND e.stream_version = v_last;
            RETURN;
        END IF;
        IF p_expected = -1 OR p_expected = -3 THEN
            RETURN QUERY SELECT 'duplicate'::text, v_current, NULL::xid8, NULL::bigint;
        ELSE
            RETURN QUERY SELECT 'wrong_version'::text, v_current, NULL::xid8, NULL::bigint;
        END IF;
        RETURN;
    END IF;

    IF p_expected = -3 AND v_current = -1 THEN
        RETURN QUERY SELECT 'wrong_version'::text, v_current, NULL::xid8, NULL::bigint;
        RETURN;
    END IF;

    WITH ins AS (
        INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
        SELECT u.id, p_stream, v_current + u.ord, u.typ, u.dat, u.meta
          FROM unnest(p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS u(id, typ, dat, meta, ord)
         ORDER BY u.ord
        RETURNING events.seq
    )
    SELECT max(ins.seq) INTO v_last FROM ins;

    RETURN QUERY SELECT 'appended'::text, v_current + v_n, pg_current_xact_id(), v_last;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION es_append(text, bigint, uuid[], text[], json[], json[]);
DROP TABLE events;
