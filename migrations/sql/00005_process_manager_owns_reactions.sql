-- The process manager becomes the one owner of every reaction to events
-- (it replaces the boot-time Recovery): it completes interrupted
-- placements, releases the stock of rejected and canceled orders, and
-- releases reservations that arrive after their order's placement was
-- decided.

-- +goose Up
-- A step may concern one product of an order (release_reservation); steps
-- are unique per kind, order and product (the nil id when the step is about
-- the whole order).
ALTER TABLE process_tasks
    ADD COLUMN product_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    -- Set when the scheduler schedules a step again while a worker runs it:
    -- the running attempt then does not delete the row, and the step runs
    -- once more (it is idempotent), so no event's reaction is lost.
    ADD COLUMN rerun boolean NOT NULL DEFAULT false;
ALTER TABLE process_tasks DROP CONSTRAINT process_tasks_kind_order_key;
ALTER TABLE process_tasks ADD CONSTRAINT process_tasks_kind_order_product_key UNIQUE (kind, order_id, product_id);

-- Placements the scheduler has seen placed and not yet decided (reserved,
-- rejected or canceled): a reservation for an order not in this table
-- arrived after its placement was decided and is released. Its size is the
-- number of placements in flight, not the history.
CREATE TABLE process_open_placements (
    order_id  uuid        PRIMARY KEY,
    placed_at timestamptz NOT NULL,
    -- A reservation was made for it: if it is rejected, its stock must be
    -- released (a rejection that reserved nothing needs no step).
    reserved  boolean     NOT NULL DEFAULT false
);

-- Placements left undecided before this version (the scheduler's
-- checkpoint may already be past their order.placed): track them and have
-- them completed at once, as Recovery would have done at its next start.
INSERT INTO process_open_placements (order_id, placed_at, reserved)
SELECT substr(p.stream_id, 7)::uuid, p.recorded_at, true
  FROM events p
 WHERE p.event_type = 'order.placed.v1' AND p.stream_id LIKE 'order-%'
   AND NOT EXISTS (SELECT 1 FROM events o WHERE o.stream_id = p.stream_id AND o.stream_version > p.stream_version)
ON CONFLICT DO NOTHING;
INSERT INTO process_tasks (id, kind, order_id, due_at)
SELECT gen_random_uuid(), 'complete_placement', order_id, now() FROM process_open_placements
ON CONFLICT DO NOTHING;

-- Reservations still open for orders whose placement is decided: Recovery
-- used to look at them at every start (a rejected or canceled order's stock
-- a crash left held, a reservation that arrived after its order closed).
-- Each gets a release_reservation step: the step releases a stray one
-- (made after the decision), the stock of a rejected or canceled order with
-- the order's reason, and leaves the reservations of live orders alone.
INSERT INTO process_tasks (id, kind, order_id, product_id, due_at)
SELECT gen_random_uuid(), 'release_reservation', h.order_id, h.product_id, now()
  FROM (SELECT (data->>'order_id')::uuid AS order_id, substr(stream_id, 9)::uuid AS product_id
          FROM events
         WHERE stream_id LIKE 'product-%'
           AND event_type IN ('product.stock_reserved.v1', 'product.reservation_released.v1', 'product.reservation_committed.v1')
         GROUP BY 1, 2
        HAVING count(*) FILTER (WHERE event_type = 'product.stock_reserved.v1')
             > count(*) FILTER (WHERE event_type <> 'product.stock_reserved.v1')) h
 WHERE EXISTS (SELECT 1 FROM events o WHERE o.stream_id = 'order-' || h.order_id AND o.stream_version >= 1)
ON CONFLICT DO NOTHING;

-- +goose Down
DROP TABLE process_open_placements;
DELETE FROM process_tasks WHERE kind IN ('complete_placement', 'release_reservation');
ALTER TABLE process_tasks DROP CONSTRAINT process_tasks_kind_order_product_key;
ALTER TABLE process_tasks ADD CONSTRAINT process_tasks_kind_order_key UNIQUE (kind, order_id);
ALTER TABLE process_tasks DROP COLUMN rerun, DROP COLUMN product_id;
