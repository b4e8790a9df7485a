package command_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
)

// cancelAfterPlaced cancels the placing caller's context as soon as its
// order.placed is stored, as a client that disconnects then would.
type cancelAfterPlaced struct {
	command.EventStore
	cancel context.CancelFunc
}

func (s cancelAfterPlaced) Append(ctx context.Context, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := s.EventStore.Append(ctx, stream, exp, evs...)
	if err == nil && exp == eventstore.NoStream && strings.HasPrefix(stream, "order-") {
		s.cancel()
	}
	return res, err
}

// A caller that gives up once its order is stored does not leave the order
// placed but undecided (holding its customer until the process manager's
// grace ends): the placement reserves and decides on its own.
func TestPlacementOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	admin := command.NewService(store, command.Options{})
	p := newProduct(t, admin, 5)

	ctx, cancel := context.WithCancel(ctxT(t))
	svc := command.NewService(cancelAfterPlaced{EventStore: store, cancel: cancel}, command.Options{})
	v, err := place(svc, ctx, "key-1", "gone@example.com", order.Line{ProductID: p, Quantity: 2})
	if err != nil {
		t.Fatalf("placement whose caller left after order.placed: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context was not canceled: the test proves nothing")
	}
	if st := orderOf(t, store, v.ID); st.Status != order.StatusReserved {
		t.Fatalf("order is %s, want %s", st.Status, order.StatusReserved)
	}
	if st := stockOf(t, store, p); st.Available != 3 || st.Reserved != 2 {
		t.Fatalf("product: available %d, reserved %d; want 3 and 2", st.Available, st.Reserved)
	}
}

// holdPlacement holds the append of every new order until release is
// closed, as a database that stalls would.
type holdPlacement struct {
	command.EventStore
	release chan struct{}
}

func (s holdPlacement) Append(ctx context.Context, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if exp == eventstore.NoStream && strings.HasPrefix(stream, "order-") {
		select {
		case <-s.release:
		case <-ctx.Done():
			return eventstore.AppendResult{}, ctx.Err()
		}
	}
	return s.EventStore.Append(ctx, stream, exp, evs...)
}

// A caller with a deadline (an HTTP request) is answered by then, with an
// outcome-unknown error, even while its order's append is held; the
// placement goes on and completes once the store answers, and the same
// key then finds the order.
func TestCallerDeadlineEndsTheWaitNotThePlacement(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	admin := command.NewService(store, command.Options{})
	p := newProduct(t, admin, 5)
	held := holdPlacement{EventStore: store, release: make(chan struct{})}
	svc := command.NewService(held, command.Options{})
	t.Cleanup(func() { svc.Close(context.Background()) })

	ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := place(svc, ctx, "key-1", "late@example.com", order.Line{ProductID: p, Quantity: 2})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("placement held past the caller's deadline: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("answered after %s, want about 200ms", took)
	}
	close(held.release)
	var v command.OrderView
	eventually.True(t, "the placement to complete", func() bool {
		v, err = place(svc, ctxT(t), "key-1", "late@example.com", order.Line{ProductID: p, Quantity: 2})
		return err == nil && v.Status == order.StatusReserved
	})
	if st := stockOf(t, store, p); st.Available != 3 || st.Reserved != 2 {
		t.Fatalf("product: available %d, reserved %d; want 3 and 2", st.Available, st.Reserved)
	}
}
