package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	pg "github.com/orders-reference/orders/internal/postgres"
)

const settleUsage = `Usage: ordersload settle -after COMMIT/PREPARE [flags]

Waits until every order placed after position -after (the head before a load
began) is decided and its stock is conserved, and prints how long that took
from -since (a Unix time in nanoseconds, e.g. "date +%s%N" taken just before
a restart; default: when settle starts).

It reads the event store itself (the events table, read-only), because that is
where the truth is: the read model read_orders follows it only as fast as its
projection runs, and ordersctl shows one order at a time. For the orders
placed after -after:

  - undecided: order.placed is all its stream holds (status created);
  - stock conserved: no order that is rejected or canceled still holds a
    reservation on any product, and no reservation was released or committed
    more than it was reserved.

Paid orders whose commit is still to come, and orders waiting for their
payment, hold stock legitimately. Once both hold it also waits (up to the
same deadline) until read_orders shows no order created and the orders
projection has reached the log's head, and reports when.
`

func settleMain(ctx context.Context, args []string, databaseURL string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordersload settle", flag.ContinueOnError)
	flagUsage(fs, stderr, settleUsage)
	dbURL := fs.String("database-url", "", "PostgreSQL URL of the service's database (default: DATABASE_URL, else "+defaultDatabaseURL+")")
	after := fs.String("after", "", "position (commit/prepare) before the orders to watch (required)")
	since := fs.Int64("since", 0, "Unix time in nanoseconds to measure from (default: now)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	poll := fs.Duration("poll", 100*time.Millisecond, "time between two looks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbURL == "" {
		*dbURL = databaseURL
	}
	from, err := eventstore.ParsePosition(*after)
	if err != nil {
		return fmt.Errorf("-after: %w", err)
	}
	t0 := time.Now()
	if *since != 0 {
		t0 = time.Unix(0, *since)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	pool, err := pg.Connect(ctx, *dbURL, 2)
	if err != nil {
		return fmt.Errorf("database %s: %w", redacted(*dbURL), err)
	}
	defer pool.Close()

	first := true
	var decidedAt time.Duration
	for {
		s, err := lookAtOrders(ctx, pool, from)
		if err != nil {
			return err
		}
		at := time.Since(t0)
		if first {
			fmt.Fprintf(stdout, "settle: first look after %s: %d orders placed after %s, %d undecided, %d reservations held by closed orders\n",
				sec(at), s.placed, from, s.undecided, s.heldByClosed)
			first = false
		}
		if s.overSettled > 0 {
			return fmt.Errorf("stock not conserved: %d reservations released or committed more than reserved", s.overSettled)
		}
		if s.undecided == 0 && decidedAt == 0 {
			decidedAt = at
		}
		if s.undecided == 0 && s.heldByClosed == 0 {
			fmt.Fprintf(stdout, "settle: no order undecided after %s; stock conserved after %s (%d orders placed after %s)\n",
				sec(decidedAt), sec(at), s.placed, from)
			break
		}
		if err := wait(ctx, *poll); err != nil {
			return fmt.Errorf("after %s: %d orders undecided, %d reservations held by closed orders: %w", sec(at), s.undecided, s.heldByClosed, err)
		}
	}
	settled := time.Since(t0)

	for {
		agrees, err := readModelAgrees(ctx, pool)
		if err != nil {
			return err
		}
		if agrees {
			fmt.Fprintf(stdout, "settle: read model agreed after %s (read_orders: none created, orders projection at the head)\n", sec(time.Since(t0)))
			break
		}
		if err := wait(ctx, *poll); err != nil {
			return fmt.Errorf("the read model still shows created orders or lags: %w", err)
		}
	}
	fmt.Fprintf(stdout, "settled after %.3f s\n", settled.Seconds())
	return nil
}

type orderLook struct {
	placed, undecided, heldByClosed, overSettled int64
}

// lookAtOrders reads, from the events table, the orders placed after from
// and their stock events (a range scan of the primary key from that point).
func lookAtOrders(ctx context.Context, pool *pgxpool.Pool, from eventstore.Position) (orderLook, error) {
	var l orderLook
	err := pool.QueryRow(ctx, `
WITH placed AS (
  SELECT p.stream_id,
         NOT EXISTS (SELECT 1 FROM events d WHERE d.stream_id = p.stream_id AND d.stream_version > 0) AS undecided,
         EXISTS (SELECT 1 FROM events c WHERE c.stream_id = p.stream_id AND c.event_type IN ($3, $4)) AS closed
    FROM events p
   WHERE (p.tx_id, p.seq) > ($1::bigint::text::xid8, $2::bigint) AND p.event_type = $5
), stock AS (
  SELECT $9 || (s.data->>'order_id') AS stream_id, s.stream_id AS product,
         coalesce(sum((s.data->>'quantity')::bigint) FILTER (WHERE s.event_type = $6), 0) AS reserved,
         coalesce(sum((s.data->>'quantity')::bigint) FILTER (WHERE s.event_type IN ($7, $8)), 0) AS settled
    FROM events s
   WHERE (s.tx_id, s.seq) > ($1::bigint::text::xid8, $2::bigint) AND s.event_type IN ($6, $7, $8)
   GROUP BY 1, 2
)
SELECT (SELECT count(*) FROM placed),
       (SELECT count(*) FROM placed WHERE undecided),
       (SELECT count(*) FROM stock JOIN placed USING (stream_id) WHERE placed.closed AND stock.reserved > stock.settled),
       (SELECT count(*) FROM stock JOIN placed USING (stream_id) WHERE stock.settled > stock.reserved)`,
		int64(from.Commit), int64(from.Prepare), events.TypeOrderRejected, events.TypeOrderCanceled, events.TypeOrderPlaced,
		events.TypeProductStockReserved, events.TypeProductReservationReleased, events.TypeProductReservationCommitted,
		events.OrderStreamPrefix).
		Scan(&l.placed, &l.undecided, &l.heldByClosed, &l.overSettled)
	if err != nil {
		return l, fmt.Errorf("look at the orders: %w", err)
	}
	return l, nil
}

// readModelAgrees reports whether read_orders shows no created order and
// the orders projection has reached the head of the log.
func readModelAgrees(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var created int64
	var behind bool
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+ordersTable+` WHERE status = $2),
	        EXISTS (SELECT 1 FROM events e, projection_checkpoints c
	                 WHERE c.name = $1 AND (e.tx_id, e.seq) > (c.position_commit::text::xid8, c.position_prepare))`,
		ordersProjection, statusCreated).Scan(&created, &behind)
	if err != nil {
		return false, fmt.Errorf("look at the read model: %w", err)
	}
	return created == 0 && !behind, nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errors.New("timed out")
		}
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
