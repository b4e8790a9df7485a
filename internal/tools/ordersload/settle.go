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
	"github.com/orders-reference/orders/eventstore/postgres"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/projections"
)

const settleUsage = `Usage: ordersload settle -after COMMIT/PREPARE [flags]

Waits until every order placed after position -after (the head before a load
began) is decided and its stock is conserved, and prints how long that took
from -since (a Unix time in nanoseconds, e.g. "date +%s%N" taken just before
a restart; default: when settle starts).

It reads the event store itself (through the event store's port, read-only),
because that is where the truth is: the read model read_orders follows it only as fast as its
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
	store := postgres.New(pool, postgres.Options{})
	defer store.Close()

	first := true
	var decidedAt time.Duration
	for {
		s, err := lookAtOrders(ctx, store, from)
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
		agrees, err := readModelAgrees(ctx, pool, store)
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

// lookAtOrders reads, through the event store's port, the orders placed
// after from and their stock events (the log after from: what the load and
// the restart wrote, not the history).
func lookAtOrders(ctx context.Context, store *postgres.Store, from eventstore.Position) (orderLook, error) {
	type stock struct{ reserved, settled int64 }
	var (
		l       orderLook
		status  = map[string]string{} // order stream -> last type
		holding = map[string]map[string]*stock{}
	)
	filter := eventstore.Filter{EventTypes: []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderRejected,
		events.TypeOrderCanceled, events.TypeOrderPaid, events.TypeOrderPaymentRequested,
		events.TypeProductStockReserved, events.TypeProductReservationReleased, events.TypeProductReservationCommitted}}
	for pos := from; ; {
		page, err := store.ReadAll(ctx, pos, 5000, filter)
		if err != nil {
			return l, fmt.Errorf("look at the orders: %w", err)
		}
		for _, r := range page.Events {
			if _, ok := events.StreamID(r.StreamID, events.OrderStreamPrefix); ok {
				if r.Type == events.TypeOrderPlaced || status[r.StreamID] != "" {
					status[r.StreamID] = r.Type
				}
				continue
			}
			e, err := events.Decode(r.Type, r.Data)
			if err != nil {
				return l, err
			}
			var order string
			var q int64
			settle := true
			switch e := e.(type) {
			case events.ProductStockReserved:
				order, q, settle = events.OrderStream(e.OrderID), e.Quantity, false
			case events.ProductReservationReleased:
				order, q = events.OrderStream(e.OrderID), e.Quantity
			case events.ProductReservationCommitted:
				order, q = events.OrderStream(e.OrderID), e.Quantity
			}
			if holding[order] == nil {
				holding[order] = map[string]*stock{}
			}
			st := holding[order][r.StreamID]
			if st == nil {
				st = &stock{}
				holding[order][r.StreamID] = st
			}
			if settle {
				st.settled += q
			} else {
				st.reserved += q
			}
		}
		pos = page.Next
		if page.AtEnd {
			break
		}
	}
	for order, last := range status {
		l.placed++
		if last == events.TypeOrderPlaced {
			l.undecided++
		}
		closed := last == events.TypeOrderRejected || last == events.TypeOrderCanceled
		for _, st := range holding[order] {
			if closed && st.reserved > st.settled {
				l.heldByClosed++
			}
			if st.settled > st.reserved {
				l.overSettled++
			}
		}
	}
	return l, nil
}

// readModelAgrees reports whether read_orders shows no created order and
// the orders projection has reached the head of the log.
func readModelAgrees(ctx context.Context, pool *pgxpool.Pool, store *postgres.Store) (bool, error) {
	var created int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+ordersTable+` WHERE status = $1`, statusCreated).Scan(&created); err != nil {
		return false, fmt.Errorf("look at the read model: %w", err)
	}
	list, err := projections.Statuses(ctx, pool, store, projections.StatusOptions{})
	if err != nil {
		return false, err
	}
	for _, st := range list {
		if st.Name == ordersProjection {
			return created == 0 && st.Behind == 0, nil
		}
	}
	return false, nil
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

const headUsage = `Usage: ordersload head [flags]

Prints the event store's head position (commit/prepare), the -after of a
later "ordersload settle".
`

func headMain(ctx context.Context, args []string, databaseURL string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordersload head", flag.ContinueOnError)
	flagUsage(fs, stderr, headUsage)
	dbURL := fs.String("database-url", "", "PostgreSQL URL of the service's database (default: DATABASE_URL, else "+defaultDatabaseURL+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbURL == "" {
		*dbURL = databaseURL
	}
	pool, err := pg.Connect(ctx, *dbURL, 1)
	if err != nil {
		return fmt.Errorf("database %s: %w", redacted(*dbURL), err)
	}
	defer pool.Close()
	store := postgres.New(pool, postgres.Options{})
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, head)
	return err
}
