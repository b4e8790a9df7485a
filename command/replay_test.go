package command_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
)

// A new Idempotency-Key is not looked up before the placement (the
// NoStream append is the check), so every way a repeated key can arrive
// must still answer with the order it placed: from an instance that never
// saw it, after its product was deactivated, while its customer is over
// the rate limit. A refusal of a key that placed nothing stays a refusal.
func TestRepeatedKeyIsAnsweredFromItsOrder(t *testing.T) {
	store := newStore(t)
	a := command.NewService(store, command.Options{})
	ctx := ctxT(t)
	pid := newProduct(t, a, 100)
	lines := []order.Line{{ProductID: pid, Quantity: 2}}
	first, err := place(a, ctx, "key-1", "replay@example.com", lines...)
	if err != nil {
		t.Fatal(err)
	}
	errLimited := errors.New("rate limited")
	refuse := func(context.Context, uuid.UUID) error { return errLimited }

	cases := []struct {
		name string
		svc  func() *command.Service
		cmd  command.PlaceOrder
	}{
		{"from the instance that placed it", func() *command.Service { return a },
			command.PlaceOrder{IdempotencyKey: "key-1", UserEmail: "replay@example.com", Lines: lines, Meta: customer}},
		{"from an instance that never saw it", func() *command.Service { return command.NewService(store, command.Options{}) },
			command.PlaceOrder{IdempotencyKey: "key-1", UserEmail: "replay@example.com", Lines: lines, Meta: customer}},
		{"while the customer is over the rate limit", func() *command.Service { return command.NewService(store, command.Options{}) },
			command.PlaceOrder{IdempotencyKey: "key-1", UserEmail: "replay@example.com", Lines: lines, Meta: customer, Admit: refuse}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := c.svc().PlaceOrder(ctx, c.cmd)
			if err != nil || v.ID != first.ID || v.Status != order.StatusReserved {
				t.Fatalf("got %s %s %v, want order %s reserved", v.ID, v.Status, err, first.ID)
			}
		})
	}

	t.Run("after its product was deactivated", func(t *testing.T) {
		if _, err := a.UpdateProduct(ctx, pid, product.Details{IsActive: ptr(false)}, customer); err != nil {
			t.Fatal(err)
		}
		b := command.NewService(store, command.Options{})
		v, err := b.PlaceOrder(ctx, command.PlaceOrder{IdempotencyKey: "key-1", UserEmail: "replay@example.com", Lines: lines, Meta: customer})
		if err != nil || v.ID != first.ID {
			t.Fatalf("got %s %v, want order %s", v.ID, err, first.ID)
		}
		// A new key for the inactive product is refused, and places nothing.
		_, err = b.PlaceOrder(ctx, command.PlaceOrder{IdempotencyKey: "key-2", UserEmail: "replay@example.com", Lines: lines, Meta: customer})
		if !errors.Is(err, command.ErrValidation) {
			t.Fatalf("new key for an inactive product: %v, want a validation error", err)
		}
	})

	t.Run("a refused new key places nothing", func(t *testing.T) {
		b := command.NewService(store, command.Options{})
		other := newProduct(t, b, 10)
		cmd := command.PlaceOrder{IdempotencyKey: "key-3", UserEmail: "replay@example.com", Lines: []order.Line{{ProductID: other, Quantity: 1}}, Meta: customer, Admit: refuse}
		if _, err := b.PlaceOrder(ctx, cmd); !errors.Is(err, errLimited) {
			t.Fatalf("got %v, want the limiter's refusal", err)
		}
		if st := orderOf(t, store, b.OrderIDForKey(cmd.UserEmail, cmd.IdempotencyKey)); st.Status != order.StatusNew {
			t.Fatalf("a refused key placed an order (%s)", st.Status)
		}
	})
}
