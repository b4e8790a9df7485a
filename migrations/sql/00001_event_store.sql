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

-- es_append_locked appends events to one stream if its version matches
-- p_expected: -1 any, -2 no stream, -3 stream exists, >= 0 exact version.
-- The caller must hold the stream's advisory lock (see es_append_batch).
--
-- It returns one row: outcome 'appended', 'idempotent' (the same event ids
-- are already stored where this append would put them; nothing written),
-- 'wrong_version' (stream_version is then the actual version, -1 for none) or
-- 'duplicate' (the first event id is stored in this stream but the rest do not
-- line up).
-- +goose StatementBegin
CREATE FUNCTION es_append_locked(
    p_stream   text,
    p_expected bigint,
    p_ids      uuid[],
    p_types    text[],
    p_data     json[],
    p_metadata json[]
) RETURNS TABLE (outcome text, stream_version bigint, tx_id xid8, seq bigint)
LANGUAGE plpgsql
-- Never JIT-compile: generic plans guess a thousand rows per array and can
-- cross the JIT threshold for statements that touch a handful of rows.
SET jit = off
AS $$
DECLARE
    v_n       int := cardinality(p_ids);
    v_current bigint;
    v_first   bigint;
    v_matched int;
    v_last    bigint;
BEGIN
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

-- es_append_batch runs several independent appends in one transaction (the
-- client's group commit): append i writes p_counts[i] events, taken in order
-- from the flattened event arrays, to p_streams[i] if p_expected[i] holds.
-- One row per append, numbered by idx; a failed check fails only its append.
--
-- Every stream's advisory lock is taken first, in key order (so concurrent
-- batches cannot deadlock) and before the transaction writes anything, so
-- before it has a transaction id. A later append to a stream therefore
-- always commits under a larger tx_id than the earlier one, which keeps the
-- global (tx_id, seq) order consistent with every stream's order. Appends to
-- different streams do not wait for each other.
--
-- (A set-based variant, one INSERT for the whole batch, was measured and
-- was slower: its statements are re-planned on every call.)
-- +goose StatementBegin
CREATE FUNCTION es_append_batch(
    p_streams  text[],
    p_expected bigint[],
    p_counts   int[],
    p_ids      uuid[],
    p_types    text[],
    p_data     json[],
    p_metadata json[]
) RETURNS TABLE (idx int, outcome text, stream_version bigint, tx_id xid8, seq bigint)
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    v_key  int;
    v_from int := 1;
    v_to   int;
BEGIN
    -- Each statement below must see what committed while it waited for a
    -- lock; a repeatable-read snapshot would not.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'es_append_batch needs READ COMMITTED, not %', current_setting('transaction_isolation')
            USING ERRCODE = '25001'; -- active_sql_transaction: wrong transaction mode
    END IF;

    -- 1163084612 = 'ESAP': keeps these keys apart from other advisory locks.
    FOR v_key IN SELECT DISTINCT hashtext(s) FROM unnest(p_streams) AS s ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1163084612, v_key);
    END LOOP;

    FOR i IN 1 .. cardinality(p_streams) LOOP
        v_to := v_from + p_counts[i] - 1;
        RETURN QUERY
        SELECT i, r.outcome, r.stream_version, r.tx_id, r.seq
          FROM es_append_locked(p_streams[i], p_expected[i],
                                p_ids[v_from : v_to], p_types[v_from : v_to],
                                p_data[v_from : v_to], p_metadata[v_from : v_to]) AS r;
        v_from := v_to + 1;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION es_append_batch(text[], bigint[], int[], uuid[], text[], json[], json[]);
DROP FUNCTION es_append_locked(text, bigint, uuid[], text[], json[], json[]);
DROP TABLE events;
