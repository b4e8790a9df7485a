package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
)

// GapScenario describes the concurrent-writers test: Writers goroutines each
// make AppendsPerWriter appends of one to three events, mostly to a stream
// of their own and sometimes to one of a few streams they all share, while a
// subscription started before them collects everything. Run it on a store
// whose BeforeCommit hook delays commits at random (RandomDelay), so that
// transactions commit in a different order than they were assigned
// positions.
type GapScenario struct {
	Writers          int
	AppendsPerWriter int
}

// GapReport is what the subscription saw compared with what was appended.
type GapReport struct {
	Appended   int
	Delivered  int
	Missing    int // appended but never delivered
	Duplicates int // delivered more than once
	Unexpected int // delivered but never appended
	// OutOfOrder counts deliveries whose position was not after the
	// previous one, or whose stream version was not the next one due.
	OutOfOrder int
	// TimedOut: the subscription did not reach the head in time.
	TimedOut bool
	Examples []string
}

// Err returns nil if every event was delivered exactly once and in order.
func (r GapReport) Err() error {
	if r.Missing == 0 && r.Duplicates == 0 && r.Unexpected == 0 && r.OutOfOrder == 0 && !r.TimedOut && r.Delivered == r.Appended {
		return nil
	}
	return fmt.Errorf("subscription broke its guarantees: appended %d, delivered %d, missing %d, duplicates %d, unexpected %d, out of order %d, timed out %v; e.g. %s",
		r.Appended, r.Delivered, r.Missing, r.Duplicates, r.Unexpected, r.OutOfOrder, r.TimedOut, strings.Join(r.Examples, "; "))
}

// RunGapScenario runs sc against s and reports what the subscription saw.
// Append failures fail t; delivery problems are only reported, so that a
// test can also show that a deliberately broken store is caught.
func RunGapScenario(t *testing.T, s eventstore.Store, sc GapScenario) GapReport {
	t.Helper()
	ctx := ctxT(t)
	from, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	c, _, _ := subscribe(t, s, from, eventstore.SubscribeOptions{BatchSize: 50})

	shared := []string{newStream("shared"), newStream("shared"), newStream("shared")}
	var (
		mu       sync.Mutex
		appended = map[uuid.UUID]string{}
		lastPos  eventstore.Position
		wg       sync.WaitGroup
		errs     = make(chan error, sc.Writers)
	)
	for w := range sc.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := newStream(fmt.Sprintf("writer%d", w))
			version := eventstore.NoVersion
			for i := range sc.AppendsPerWriter {
				batch := make([]eventstore.EventData, 1+rand.IntN(3))
				for j := range batch {
					batch[j] = event("gap.test", map[string]int{"writer": w, "append": i, "event": j})
				}
				stream, expected := own, eventstore.Exact(version)
				if rand.IntN(4) == 0 {
					stream, expected = shared[rand.IntN(len(shared))], eventstore.Any
				}
				res, err := s.Append(ctx, stream, expected, batch...)
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d to %s: %w", w, i, stream, err)
					return
				}
				if stream == own {
					version = res.Version
				}
				mu.Lock()
				lastPos = eventstore.MaxPosition(lastPos, res.Position)
				for _, e := range batch {
					appended[e.ID] = stream
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		t.Fatal(err)
	}

	report := GapReport{Appended: len(appended)}
	// Every append has returned; wait for the subscription to pass the last.
	head := lastPos
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
wait:
	for {
		if _, cp := c.snapshot(); !cp.Less(head) {
			break
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			report.TimedOut = true
			break wait
		}
	}

	delivered, _ := c.snapshot()
	report.Delivered = len(delivered)
	seen := map[uuid.UUID]int{}
	nextVersion := map[string]int64{}
	last := from
	example := func(format string, args ...any) {
		if len(report.Examples) < 5 {
			report.Examples = append(report.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, e := range delivered {
		seen[e.ID]++
		if seen[e.ID] == 2 {
			report.Duplicates++
			example("event %s delivered twice", e.ID)
		}
		if _, ok := appended[e.ID]; !ok {
			report.Unexpected++
			example("event %s was never appended", e.ID)
		}
		if !last.Less(e.Position) {
			report.OutOfOrder++
			example("position %s delivered after %s", e.Position, last)
		}
		last = e.Position
		want, ok := nextVersion[e.StreamID]
		if !ok {
			want = 0
		}
		if e.Version != want {
			report.OutOfOrder++
			example("%s@%d delivered when version %d was due", e.StreamID, e.Version, want)
		}
		nextVersion[e.StreamID] = e.Version + 1
	}
	for id, stream := range appended {
		if seen[id] == 0 {
			report.Missing++
			example("event %s of %s never delivered", id, stream)
		}
	}
	return report
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}
