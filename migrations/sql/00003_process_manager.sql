-- The payment process manager's work list. Each row is one step of one
-- order's saga, scheduled by an event (inserted in the same transaction
-- that moves the process manager's checkpoint, so no event is lost or
-- scheduled twice) and deleted when the step has run. Retries and timeouts
-- are rows with a due time, not sleeping goroutines: they survive restarts.

-- +goose Up
CREATE TABLE process_tasks (
    id             uuid        PRIMARY KEY,
    -- initiate_payment, payment_timeout, commit_stock, release_stock, refund
    kind           text        NOT NULL,
    order_id       uuid        NOT NULL,
    -- pending (waiting for due_at) or parked (out of attempts: the
    -- dead-letter list, acted on with ordersctl dlq).
    state          text        NOT NULL DEFAULT 'pending',
    due_at         timestamptz NOT NULL,
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text        NOT NULL DEFAULT '',
    -- Set while a worker runs the step; a step whose lease is gone is not
    -- finished by its old worker.
    lease_id       uuid,
    lease_until    timestamptz,
    correlation_id text        NOT NULL DEFAULT '',
    causation_id   text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT process_tasks_kind_order_key UNIQUE (kind, order_id)
);
-- The worker's query: due pending steps, oldest first.
CREATE INDEX process_tasks_due ON process_tasks (due_at) WHERE state = 'pending';
-- The dead-letter list.
CREATE INDEX process_tasks_parked ON process_tasks (updated_at) WHERE state = 'parked';

-- +goose Down
DROP TABLE process_tasks;
