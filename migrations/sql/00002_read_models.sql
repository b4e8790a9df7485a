-- Read models and projection checkpoints. Projectors own these tables: the
-- query API only reads them.

-- +goose Up
CREATE TABLE projection_checkpoints (
    name             text        PRIMARY KEY,
    -- Position of the last event applied (see eventstore.Position).
    position_commit  bigint      NOT NULL DEFAULT 0,
    position_prepare bigint      NOT NULL DEFAULT 0,
    -- running, or failed (a poison event stopped it; error says why).
    state            text        NOT NULL DEFAULT 'running',
    error            text        NOT NULL DEFAULT '',
    -- Bumped when a rebuild swaps the table in: runners of the previous
    -- generation can no longer move the checkpoint.
    generation       bigint      NOT NULL DEFAULT 0,
    -- For a rebuild's own row: the shadow table it builds.
    shadow_table     text        NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE read_products (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL,
    price       bigint      NOT NULL, -- minor units
    stock       bigint      NOT NULL, -- available to reserve
    reserved    bigint      NOT NULL,
    is_active   boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL  -- number of events applied
);
-- GET /products?is_active=…: keyset pagination in id order.
CREATE INDEX read_products_active_id ON read_products (is_active, id);

CREATE TABLE read_orders (
    id            uuid        PRIMARY KEY,
    user_email    text        NOT NULL,
    status        text        NOT NULL,
    items         jsonb       NOT NULL,
    total_amount  bigint      NOT NULL, -- minor units
    currency      text        NOT NULL,
    payment_id    text,
    cancel_reason text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint      NOT NULL
);
-- GET /admin/orders?email=&status=: newest first, keyset on (created_at, id).
CREATE INDEX read_orders_created ON read_orders (created_at DESC, id DESC);
CREATE INDEX read_orders_email_created ON read_orders (user_email, created_at DESC, id DESC);
CREATE INDEX read_orders_status_created ON read_orders (status, created_at DESC, id DESC);

-- +goose Down
DROP TABLE read_orders;
DROP TABLE read_products;
DROP TABLE projection_checkpoints;
