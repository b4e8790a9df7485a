package eventstores_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/internal/eventstores"
	"github.com/orders-reference/orders/internal/pgtest"
)

func TestKind(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"":                                      eventstores.Postgres,
		"esdb://127.0.0.1:2113?tls=false":       eventstores.KurrentDB,
		"esdb+discover://cluster.example:2113":  eventstores.KurrentDB,
		"kurrentdb://admin:pw@a:2113,b:2113":    eventstores.KurrentDB,
		"KurrentDB+Discover://cluster:2113":     eventstores.KurrentDB,
		"postgres://u:secret-pw@db/orders":      "",
		"esdb:127.0.0.1:2113":                   "",
		"mysql://admin:secret-pw@db:3306/store": "",
	} {
		got, err := eventstores.Kind(url)
		if got != want || (want == "") != errors.Is(err, eventstores.ErrURL) || (err != nil && strings.Contains(err.Error(), "secret-pw")) {
			t.Errorf("Kind(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
}

// On KurrentDB a filtered subscription still hands over a checkpoint past
// every event it does not deliver, at once, and times are microseconds,
// as a PostgreSQL read model keeps them.
func TestKurrentDBAsOrdersUsesIt(t *testing.T) {
	t.Parallel()
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := eventstores.Open(ctx, srv.URL(), pgtest.NewPool(t, 2), eventstores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Kind != eventstores.KurrentDB || b.Store != b.Requests || b.MaxCount != eventstores.KurrentDBMaxCount {
		t.Fatalf("opened %+v", b)
	}
	batches := make(chan eventstore.Batch, 16)
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = b.Store.Subscribe(subCtx, eventstore.Start, eventstore.SubscribeOptions{Filter: eventstore.Filter{StreamPrefixes: []string{"wanted-"}}},
			func(_ context.Context, batch eventstore.Batch) error {
				batches <- batch
				return nil
			})
	}()
	appendOne := func(stream string) eventstore.AppendResult {
		t.Helper()
		res, err := b.Store.Append(ctx, stream, eventstore.NoStream, eventstore.EventData{Type: "test", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if res.RecordedAt.IsZero() || !res.RecordedAt.Equal(res.RecordedAt.Truncate(time.Microsecond)) {
			t.Fatalf("recorded at %v: not microseconds", res.RecordedAt)
		}
		return res
	}
	// next returns the next batch that moves the checkpoint to at least pos.
	next := func(pos eventstore.Position) []eventstore.RecordedEvent {
		t.Helper()
		var events []eventstore.RecordedEvent
		for {
			select {
			case batch := <-batches:
				events = append(events, batch.Events...)
				if !batch.Checkpoint.Less(pos) {
					return events
				}
			case <-ctx.Done():
				t.Fatalf("no checkpoint at %s", pos)
			}
		}
	}
	skipped := appendOne("other-1")
	if events := next(skipped.Position); len(events) != 0 {
		t.Fatalf("delivered %v", events)
	}
	wanted := appendOne("wanted-1")
	events := next(wanted.Position)
	if len(events) != 1 || events[0].StreamID != "wanted-1" || !events[0].RecordedAt.Equal(wanted.RecordedAt) {
		t.Fatalf("delivered %+v, appended %+v", events, wanted)
	}
	read, err := b.Store.ReadStream(ctx, "wanted-1", eventstore.Forward, 0, 1)
	if err != nil || len(read) != 1 || !read[0].RecordedAt.Equal(wanted.RecordedAt) {
		t.Fatalf("read %+v, %v; appended at %v", read, err, wanted.RecordedAt)
	}
}
