package memory_test

import (
	"testing"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/memory"
	"github.com/orders-reference/orders/eventstore/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, h storetest.Hooks) eventstore.Store {
		var opts []memory.Option
		if h.BeforeCommit != nil {
			opts = append(opts, memory.WithBeforeCommit(h.BeforeCommit))
		}
		if h.DeliveryInterval != 0 {
			opts = append(opts, memory.WithDeliveryInterval(h.DeliveryInterval))
		}
		return memory.New(opts...)
	}, storetest.Full)
}
