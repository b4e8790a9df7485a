package projections_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
)

// appendLegacy appends events as an earlier version's write side did,
// straight to the event store: no API validation stands in the way.
func (e *env) appendLegacy(t *testing.T, stream string, evs ...events.Event) eventstore.AppendResult {
	t.Helper()
	data := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		raw, err := events.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: uuid.New(), Type: ev.EventType(), Data: raw, Metadata: customer}
	}
	res, err := e.store.Append(ctxT(t), stream, eventstore.Any, data...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// An event store written by earlier versions may hold text with NUL
// (stored as the JSON escape \u0000) in any text field. The projections
// store it with U+FFFD instead, warn naming the event, and keep going:
// they catch up (no backlog, still running), a rebuild of each succeeds
// and shows the same text, and events after the odd ones are applied.
func TestLegacyTextDoesNotStopAProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	laptop, renamed, order := uuid.New(), uuid.New(), uuid.New()
	nul := func(s string) *string { return &s }
	e.appendLegacy(t, events.ProductStream(laptop),
		events.ProductCreated{ProductID: laptop, Name: "Lap\x00top", Description: "one\x00\x01two", Price: 1000, Stock: 5, IsActive: true},
		events.ProductDetailsChanged{Description: nul("new\x00description\nsecond line")})
	e.appendLegacy(t, events.ProductStream(renamed),
		events.ProductCreated{ProductID: renamed, Name: "fine", Price: 1000, Stock: 5, IsActive: true},
		events.ProductDetailsChanged{Name: nul("\x00re\x00named\x00")})
	e.appendLegacy(t, events.OrderStream(order),
		events.OrderPlaced{OrderID: order, UserEmail: "nul\x00@example.com", Currency: "US\x00D", Total: 1000,
			Items: []events.OrderItem{{ProductID: laptop, Quantity: 1, UnitPrice: 1000, LineTotal: 1000}}},
		events.OrderPaymentRequested{PaymentID: "pay\x00one"},
		events.OrderCanceled{Reason: "customer\x00"})
	odd := e.appendLegacy(t, events.ProductStream(renamed), events.ProductStockAdjusted{Available: 7, Delta: 2})

	var logs logtest.Sink
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, p := range []projections.Projector{products.Projector{}, orders.Projector{}} {
		run(t, projections.NewRunner(e.pool, e.store, p, projections.Options{Logger: log, RetryDelay: 10 * time.Millisecond}))
	}
	after := uuid.New()
	e.appendLegacy(t, events.ProductStream(after), events.ProductCreated{ProductID: after, Name: "after", Price: 100, Stock: 1, IsActive: true})
	for _, name := range []string{products.Name, orders.Name} {
		e.waitCaughtUp(t, name)
		if cp, state, msg := e.checkpoint(t, name); state != projections.StateRunning || cp.Less(odd.Position) {
			t.Fatalf("%s at %s, %s: %s", name, cp, state, msg)
		}
	}
	// Both reach the head (the event appended after the legacy ones
	// included) and report no backlog: what /readyz checks.
	eventually.True(t, "both projections running with no backlog", func() bool {
		behind, err := projections.Behind(ctxT(t), e.pool, e.store, "", []string{products.Name, orders.Name}, 1000)
		return err == nil && len(behind) == 2 && behind[products.Name] == 0 && behind[orders.Name] == 0
	})

	want := func(t *testing.T) {
		t.Helper()
		pr := products.NewReader(e.pool)
		for id, w := range map[uuid.UUID][2]string{
			laptop:  {"Lap\uFFFDtop", "new\uFFFDdescription\nsecond line"},
			renamed: {"\uFFFDre\uFFFDnamed\uFFFD", ""},
			after:   {"after", ""},
		} {
			p, err := pr.Get(ctxT(t), id)
			if err != nil || p.Name != w[0] || p.Description != w[1] {
				t.Errorf("product %s: %q %q (%v), want %q %q", id, p.Name, p.Description, err, w[0], w[1])
			}
		}
		o, err := orders.NewReader(e.pool).Get(ctxT(t), order)
		if err != nil {
			t.Fatal(err)
		}
		if o.UserEmail != "nul\uFFFD@example.com" || o.Currency != "US\uFFFDD" || o.Status != orders.StatusCanceled ||
			o.PaymentID == nil || *o.PaymentID != "pay\uFFFDone" || o.CancelReason == nil || *o.CancelReason != "customer\uFFFD" ||
			o.TotalAmount != money.Amount(1000) {
			t.Errorf("order: %+v", o)
		}
	}
	want(t)

	// Each replacement was logged with the event it was in.
	warned := logs.String()
	for _, s := range []string{`"stream":"` + events.ProductStream(laptop) + `"`, `"field":"description"`, `"field":"user_email"`,
		`"field":"cancel_reason"`, `"stream":"` + events.OrderStream(order) + `"`, `"position":"`} {
		if !strings.Contains(warned, s) {
			t.Errorf("no warning with %s in:\n%s", s, warned)
		}
	}
	if strings.Contains(warned, `"level":"ERROR"`) {
		t.Errorf("an error was logged:\n%s", warned)
	}

	// A rebuild meets the same events and succeeds with the same result.
	for _, p := range []projections.Rebuildable{products.Projector{}, orders.Projector{}} {
		if _, err := projections.Rebuild(ctxT(t), e.pool, e.store, p, projections.RebuildOptions{Logger: log}); err != nil {
			t.Fatalf("rebuild %s: %v", p.Name(), err)
		}
	}
	want(t)
	for _, name := range []string{products.Name, orders.Name} {
		e.waitCaughtUp(t, name)
	}
	eventually.True(t, "no backlog after the rebuilds", func() bool {
		behind, err := projections.Behind(context.Background(), e.pool, e.store, "", []string{products.Name, orders.Name}, 1000)
		return err == nil && len(behind) == 2 && behind[products.Name] == 0 && behind[orders.Name] == 0
	})
}

// StorableText replaces exactly what a column cannot hold, and the text
// it returns is accepted by PostgreSQL's text, text[] and jsonb.
func TestStorableText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var logs logtest.Sink
	ctx := projections.WithLogger(ctxT(t), slog.New(slog.NewTextHandler(&logs, nil)))
	rec := eventstore.RecordedEvent{StreamID: "product-x", Version: 3, Position: eventstore.Position{Commit: 7, Prepare: 2},
		Type: events.TypeProductCreated}
	for in, want := range map[string]string{
		"plain":              "plain",
		"":                   "",
		"tab\tand\nnewline":  "tab\tand\nnewline",
		"bell\a esc\x1b":     "bell\a esc\x1b",
		"\x00":               "\uFFFD",
		"a\x00\x00b":         "a\uFFFD\uFFFDb",
		"bad \xff\xfe bytes": "bad \uFFFD bytes",
		"\xed\xa0\x80":       "\uFFFD",
		"é 😀 \u202e":         "é 😀 \u202e",
	} {
		got := projections.StorableText(ctx, rec, "name", in)
		if got != want {
			t.Errorf("StorableText(%q) = %q, want %q", in, got, want)
		}
		var back string
		var doc map[string]any
		if warned := strings.Count(logs.String(), "level=WARN"); (got == in) != (warned == 0) {
			t.Errorf("StorableText(%q) logged %d warnings", in, warned)
		} else if warned > 0 && !strings.Contains(logs.String(), "stream=product-x version=3 position=7/2") {
			t.Errorf("the warning does not name the event: %s", logs.String())
		}
		logs.Reset()
		if err := e.pool.QueryRow(ctx, `SELECT $1::text, jsonb_build_object('v', ($2::text[])[1])`, got, []string{got}).Scan(&back, &doc); err != nil || back != got {
			t.Errorf("PostgreSQL did not hold %q: %q %v", got, back, err)
		}
	}
}
