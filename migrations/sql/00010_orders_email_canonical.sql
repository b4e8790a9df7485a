-- The admin filter (GET /admin/orders?email=) matches an address by its
-- canonical form (order.CanonicalEmail: PRECIS for the local part, the
-- IDNA lookup form for the domain), which versions before it did not
-- store: their orders keep the form they stored, trimmed and lower-cased
-- with the domain as typed (user@bücher.example, not
-- user@xn--bcher-kva.example). The orders read model now keeps, beside
-- the address as the event has it, its canonical form computed when the
-- event is projected (order.NormalizeEmail: the canonical form, or the
-- stored value trimmed and lower-cased if it has none), and the filter
-- uses that.
--
-- Here, rows of ASCII addresses get it at once: for them the canonical
-- form is the stored one (FuzzCanonicalEmail holds every version to it).
-- Rows of other addresses need Go's PRECIS and IDNA, which SQL does not
-- have: they stay NULL until the projector writes them again (the order's
-- next event) or `ordersctl projections rebuild orders`, which converts
-- them all without downtime. Meanwhile the filter finds them by the form
-- they were stored in, and so it does rows that instances of the previous
-- version still insert during a rolling upgrade.

-- +goose Up
ALTER TABLE read_orders ADD COLUMN email_canonical text;
UPDATE read_orders SET email_canonical = user_email WHERE user_email ~ '^[[:ascii:]]*$';
CREATE INDEX read_orders_email_canonical_created ON read_orders (email_canonical, created_at DESC, id DESC);
-- Rows not converted yet, by their stored form: empty once converted.
CREATE INDEX read_orders_email_unconverted ON read_orders (user_email) WHERE email_canonical IS NULL;
DROP INDEX read_orders_email_created;

-- +goose Down
CREATE INDEX read_orders_email_created ON read_orders (user_email, created_at DESC, id DESC);
DROP INDEX read_orders_email_unconverted;
DROP INDEX read_orders_email_canonical_created;
ALTER TABLE read_orders DROP COLUMN email_canonical;
