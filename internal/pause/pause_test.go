package pause_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/pause"
)

func TestFor(t *testing.T) {
	t.Parallel()
	if err := pause.For(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a whole wait: %v", err)
	}
	if err := pause.For(context.Background(), -time.Second); err != nil {
		t.Errorf("no wait: %v", err)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pause.For(ended, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("an ended context: %v, want it to end the wait", err)
	}
	if err := pause.For(ended, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("an ended context, no wait: %v", err)
	}
	wake := make(chan struct{})
	close(wake)
	if err := pause.ForOrWake(context.Background(), time.Hour, wake); err != nil {
		t.Errorf("woken: %v, want nil at once", err)
	}
}
