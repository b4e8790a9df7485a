package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/eventstore/storetest"
)

// naiveStore appends like the real store but reads the global log the way a
// plain BIGSERIAL store would: "seq greater than the last one seen". It exists
// to prove that the gap scenario catches that bug.
type naiveStore struct {
	*postgres.Store
	pool *pgxpool.Pool
}

// Append reports positions in the naive store's terms: the sequence alone.
func (n naiveStore) Append(ctx context.Context, stream string, exp eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := n.Store.Append(ctx, stream, exp, events...)
	res.Position = eventstore.Position{Commit: res.Position.Prepare, Prepare: res.Position.Prepare}
	return res, err
}

func (n naiveStore) ReadAll(ctx context.Context, from eventstore.Position, limit int, _ eventstore.Filter) (eventstore.Page, error) {
	rows, err := n.pool.Query(ctx, `SELECT seq, event_id, stream_id, stream_version, event_type, data, metadata, recorded_at
	     FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(from.Prepare), limit)
	if err != nil {
		return eventstore.Page{}, err
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
		var (
			e    eventstore.RecordedEvent
			seq  int64
			meta []byte
		)
		err := row.Scan(&seq, &e.ID, &e.StreamID, &e.Version, &e.Type, &e.Data, &meta, &e.RecordedAt)
		e.Position = eventstore.Position{Commit: uint64(seq), Prepare: uint64(seq)}
		if err == nil {
			err = json.Unmarshal(meta, &e.Metadata)
		}
		return e, err
	})
	if err != nil {
		return eventstore.Page{}, err
	}
	p := eventstore.Page{Events: events, Next: from, Scanned: len(events), AtEnd: len(events) < limit}
	if len(events) > 0 {
		p.Next = events[len(events)-1].Position
	}
	return p, nil
}

func (n naiveStore) Head(ctx context.Context) (eventstore.Position, error) {
	var seq int64
	err := n.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq)
	return eventstore.Position{Commit: uint64(seq), Prepare: uint64(seq)}, err
}

func (n naiveStore) Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error {
	for {
		p, err := n.ReadAll(ctx, from, opts.BatchSize, opts.Filter)
		if err != nil {
			return err
		}
		if len(p.Events) > 0 {
			if err := handle(ctx, eventstore.Batch{Events: p.Events, Checkpoint: p.Next}); err != nil {
				return err
			}
		}
		from = p.Next
		if p.AtEnd {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond): // a naive poller
			}
		}
	}
}

// The gap scenario must be able to fail: against a store that orders by a
// sequence alone it reports lost events.
func TestGapScenarioCatchesNaiveOrdering(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, postgres.WithBeforeCommit(postgres.Options{}, storetest.RandomDelay(3*time.Millisecond)))
	// A plain BIGSERIAL hands out numbers in order: without the cache that
	// the real store allows itself, only commits overtaking each other can
	// make the naive reader lose events.
	if _, err := pool.Exec(context.Background(), `ALTER TABLE events ALTER COLUMN seq SET CACHE 1`); err != nil {
		t.Fatal(err)
	}
	naive := naiveStore{Store: s, pool: pool}
	// Losing an event needs a commit to overtake another while the poller
	// reads between them; over 640 appends that is all but certain, and three
	// rounds make a miss of the miss negligible.
	for round := range 3 {
		report := storetest.RunGapScenario(t, naive, storetest.GapScenario{Writers: 16, AppendsPerWriter: 40})
		if report.Missing > 0 {
			t.Logf("round %d: the naive store lost %d of %d events, as expected", round, report.Missing, report.Appended)
			return
		}
	}
	t.Fatal("the gap scenario did not notice that a sequence-ordered poller skips late commits")
}
