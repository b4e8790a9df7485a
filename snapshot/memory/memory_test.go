package memory_test

import (
	"testing"

	"github.com/orders-reference/orders/snapshot"
	"github.com/orders-reference/orders/snapshot/memory"
	"github.com/orders-reference/orders/snapshot/snapshottest"
)

func TestAcceptance(t *testing.T) {
	snapshottest.Run(t, func(*testing.T) snapshot.Store { return memory.New() })
}
