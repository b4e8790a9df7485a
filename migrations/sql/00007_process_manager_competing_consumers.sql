-- Process manager steps are shared by every instance (competing consumers)
-- rather than run by one leader: a claim takes, of each order, the step
-- whose event came first, and none while another step of that order is
-- leased.

-- +goose Up
-- The order in which the scheduler scheduled the steps (the order of
-- their events): a claim runs an order's due steps lowest seq first.
-- Existing steps are numbered in the order they were scheduled (not in
-- the order the table stores them), then new ones follow.
ALTER TABLE process_tasks ADD COLUMN seq bigint;
UPDATE process_tasks t SET seq = n.seq
  FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS seq FROM process_tasks) n
 WHERE t.id = n.id;
CREATE SEQUENCE process_tasks_seq_seq OWNED BY process_tasks.seq;
SELECT setval('process_tasks_seq_seq', (SELECT count(*) FROM process_tasks) + 1, false);
ALTER TABLE process_tasks ALTER COLUMN seq SET DEFAULT nextval('process_tasks_seq_seq'), ALTER COLUMN seq SET NOT NULL;
-- The lane that runs the step (0: the steps that call the payment
-- provider, 1: the others), and the claim's index: a lane's due steps in
-- the order they are due.
ALTER TABLE process_tasks ADD COLUMN lane smallint NOT NULL DEFAULT 1;
UPDATE process_tasks SET lane = 0 WHERE kind IN ('initiate_payment', 'payment_timeout', 'refund', 'reconcile_payment');
CREATE INDEX process_tasks_lane_due ON process_tasks (lane, due_at) WHERE state = 'pending';
DROP INDEX process_tasks_due;
-- The claim's check for a leased or earlier step of the same order.
CREATE INDEX process_tasks_order ON process_tasks (order_id);
-- A work queue: rows come and go by the thousand a second, so its
-- statistics (the claim's plan) and dead rows are kept up often.
ALTER TABLE process_tasks SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
-- Leases of the previous version's single worker ran for minutes; those
-- workers are gone once this version runs.
UPDATE process_tasks SET lease_id = NULL, lease_until = NULL WHERE lease_id IS NOT NULL;

-- +goose Down
-- The previous version knows no reconcile_payment step.
DELETE FROM process_tasks WHERE kind = 'reconcile_payment';
ALTER TABLE process_tasks RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
DROP INDEX process_tasks_order;
DROP INDEX process_tasks_lane_due;
CREATE INDEX process_tasks_due ON process_tasks (due_at) WHERE state = 'pending';
ALTER TABLE process_tasks DROP COLUMN lane;
ALTER TABLE process_tasks DROP COLUMN seq;
