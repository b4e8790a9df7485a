-- A step keeps the W3C trace context (traceparent, tracestate) of the
-- event that scheduled it, so that its run continues that event's trace:
-- the saga of one order is one trace across requests, steps, webhooks and
-- instances. Steps scheduled before (or by an instance that does not
-- trace) have none and start traces of their own.

-- +goose Up
ALTER TABLE process_tasks
    ADD COLUMN traceparent text NOT NULL DEFAULT '',
    ADD COLUMN tracestate text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE process_tasks DROP COLUMN traceparent, DROP COLUMN tracestate;
