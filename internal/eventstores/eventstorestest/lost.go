package eventstorestest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
)

// ErrAnswerLost is what an append whose answer LostAnswers lost returns:
// its events are stored, its caller cannot know it. It wraps
// context.DeadlineExceeded, as a deadline that passes between the store's
// commit and its reply does.
var ErrAnswerLost = fmt.Errorf("the answer was lost after the events were stored: %w", context.DeadlineExceeded)

// LostAnswers is an event store whose appends lose their answers on
// demand: an append it is told to lose is stored, then reported to its
// caller as failed with ErrAnswerLost, as when the connection drops or the
// caller's deadline passes between the commit and the reply. It is the
// unknown outcome every retry path of Orders must survive. Everything else
// goes to the store unchanged.
type LostAnswers struct {
	eventstore.Store

	mu   sync.Mutex
	lose map[string]int // event type -> answers still to lose
	lost int
}

// NewLostAnswers returns store, losing no answer until told to (Lose).
func NewLostAnswers(store eventstore.Store) *LostAnswers {
	return &LostAnswers{Store: store, lose: map[string]int{}}
}

// Lose makes the next n appends that hold an event of type typ, and are
// stored, lose their answers. (An append the store refuses, as a version
// conflict, keeps its answer and does not count.)
func (l *LostAnswers) Lose(typ string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose[typ] += n
}

// Lost returns how many answers were lost so far.
func (l *LostAnswers) Lost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// WantLost fails t unless exactly n answers were lost: a retry test whose
// loss never happened tested nothing.
func (l *LostAnswers) WantLost(t testing.TB, n int) {
	t.Helper()
	if got := l.Lost(); got != n {
		t.Fatalf("%d append answers lost, want %d: the test did not test what it says", got, n)
	}
}

// Append appends, then loses the answer if it was told to.
func (l *LostAnswers) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := l.Store.Append(ctx, stream, expected, events...)
	if err != nil || !l.take(events) {
		return res, err
	}
	return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, ErrAnswerLost)
}

// take consumes one loss of a type among events, if one is due.
func (l *LostAnswers) take(events []eventstore.EventData) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		if l.lose[e.Type] > 0 {
			l.lose[e.Type]--
			l.lost++
			return true
		}
	}
	return false
}

// Reader reads a stream.
type Reader interface {
	ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error)
}

// Stream reads the whole of stream (none: no events) and fails t unless it
// is what a stream must be after any number of retries: versions 0, 1, 2…
// without a gap, and no event id twice.
func Stream(t testing.TB, store Reader, stream string) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recorded, err := store.ReadStream(ctx, stream, eventstore.Forward, 0, 100_000)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	seen := map[uuid.UUID]int64{}
	for i, r := range recorded {
		if r.Version != int64(i) {
			t.Fatalf("%s: event %d has version %d: versions not contiguous", stream, i, r.Version)
		}
		if v, ok := seen[r.ID]; ok {
			t.Fatalf("%s: event id %s at versions %d and %d: stored twice", stream, r.ID, v, r.Version)
		}
		seen[r.ID] = r.Version
	}
	return recorded
}

// Types returns the types of stream's events in order, checked as Stream
// checks them.
func Types(t testing.TB, store Reader, stream string) []string {
	t.Helper()
	recorded := Stream(t, store, stream)
	types := make([]string, len(recorded))
	for i, r := range recorded {
		types[i] = r.Type
	}
	return types
}

// WantTypes fails t unless stream holds exactly events of the types want,
// in that order (and is a well-formed stream, as Stream checks).
func WantTypes(t testing.TB, store Reader, stream string, want ...string) {
	t.Helper()
	if got := Types(t, store, stream); !slices.Equal(got, want) {
		t.Fatalf("%s holds %v, want %v", stream, got, want)
	}
}
