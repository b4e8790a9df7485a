-- The work list's unique key leads with the order: every statement that
-- looks steps up names orders (the scheduler drops the steps of orders that
-- ended or whose placement was decided; a claim checks an order's other
-- steps), never a kind alone. Led by kind, the key let the planner answer
-- "these orders' payment steps" by reading every payment step's entry,
-- dead ones included: thousands per statement on a busy work list.

-- +goose Up
ALTER TABLE process_tasks DROP CONSTRAINT process_tasks_kind_order_product_key;
ALTER TABLE process_tasks ADD CONSTRAINT process_tasks_order_kind_product_key UNIQUE (order_id, kind, product_id);
-- The key serves lookups by order.
DROP INDEX process_tasks_order;

-- +goose Down
CREATE INDEX process_tasks_order ON process_tasks (order_id);
ALTER TABLE process_tasks DROP CONSTRAINT process_tasks_order_kind_product_key;
ALTER TABLE process_tasks ADD CONSTRAINT process_tasks_kind_order_product_key UNIQUE (kind, order_id, product_id);
