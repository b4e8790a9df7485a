package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
)

// readAllSQL reads the next page of the global log.
//
// Only events of transactions below the snapshot's xmin are read: every
// transaction with a smaller id has ended, so no event can still appear
// below that fence, and ordering by (tx_id, seq) is final up to it. The
// fence and the page come from the same statement, hence the same snapshot.
//
// The first row always exists (LEFT JOIN) and carries the fence and whether
// committed events wait above it (held back by an older open transaction),
// even when the page is empty. That is asked as "is the newest event at or
// above the fence", a backward scan of the primary key that reads one entry:
// written as EXISTS (… WHERE tx_id >= fence), the planner cannot estimate the
// fence and scans the whole table, whose cost grows with the history
// (TestReadsDoNotScanTheHistory). Events that do not match the filter come
// back with their position only, so the reader can move past them.
const readAllSQL = `
SELECT f.xmin, f.held_back,
       e.tx_id, e.seq, e.matched, e.event_id, e.stream_id, e.stream_version,
       e.event_type, e.data, e.metadata, e.recorded_at
  FROM (SELECT x.xmin,
               COALESCE((SELECT max(h.tx_id) FROM events h) >= x.xmin, false) AS held_back
          FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) x) f
  LEFT JOIN LATERAL (
        SELECT p.tx_id, p.seq, p.matched, p.event_id,
               CASE WHEN p.matched THEN p.stream_id END AS stream_id,
               p.stream_version,
               CASE WHEN p.matched THEN p.event_type END AS event_type,
               CASE WHEN p.matched THEN p.data END AS data,
               CASE WHEN p.matched THEN p.metadata END AS metadata,
               p.recorded_at
          FROM (SELECT ev.*,
                       ($4::text[] IS NULL OR ev.stream_id LIKE ANY ($4::text[]))
                   AND ($5::text[] IS NULL OR ev.event_type = ANY ($5::text[])) AS matched
                  FROM events ev
                 WHERE (ev.tx_id, ev.seq) > ($1::xid8, $2::bigint)
                   AND ev.tx_id < f.xmin
                 ORDER BY ev.tx_id, ev.seq
                 LIMIT $3) p
       ) e ON true
 ORDER BY e.tx_id, e.seq`

// page is a ReadAll page plus what the subscription loop needs to pace
// itself.
type page struct {
	eventstore.Page
	// heldBack: committed events exist above the fence, waiting for an
	// older transaction to end.
	heldBack bool
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	p, err := s.readAll(ctx, from, limit, filter)
	return p.Page, err
}

func (s *Store) readAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (page, error) {
	if limit <= 0 {
		return page{}, fmt.Errorf("read all: limit must be positive")
	}
	if from.Commit > math.MaxInt64 { // beyond any transaction id: nothing follows
		return page{Page: eventstore.Page{Next: from, AtEnd: true}}, nil
	}
	if from.Prepare > math.MaxInt64 { // seq is a bigint: (c, huge) is (c+1, 0)
		from = eventstore.Position{Commit: from.Commit + 1}
	}
	var prefixes, types []string
	for _, p := range filter.StreamPrefixes {
		prefixes = append(prefixes, likePrefix(p))
	}
	types = append(types, filter.EventTypes...)

	rows, err := s.pool.Query(ctx, readAllSQL, from.Commit, int64(from.Prepare), limit, prefixes, types)
	if err != nil {
		return page{}, fmt.Errorf("read all from %s: %w", from, err)
	}
	defer rows.Close()

	out := page{Page: eventstore.Page{Next: from}}
	var fence uint64
	for rows.Next() {
		var (
			txID         *uint64
			seq, version *int64
			matched      *bool
			e            eventstore.RecordedEvent
			stream, typ  *string
			data, meta   []byte
			id           *uuid.UUID
			recordedAt   *time.Time
		)
		if err := rows.Scan(&fence, &out.heldBack, &txID, &seq, &matched, &id, &stream, &version,
			&typ, &data, &meta, &recordedAt); err != nil {
			return page{}, fmt.Errorf("read all from %s: %w", from, err)
		}
		if txID == nil { // empty page: only the fence row
			break
		}
		out.Scanned++
		out.Next = eventstore.Position{Commit: *txID, Prepare: uint64(*seq)}
		if !*matched {
			continue
		}
		e.ID, e.StreamID, e.Version, e.Type, e.Data, e.RecordedAt = *id, *stream, *version, *typ, data, *recordedAt
		e.Position = out.Next
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return page{}, fmt.Errorf("read all: event %s: metadata: %w", e.ID, err)
		}
		out.Events = append(out.Events, e)
	}
	if err := rows.Err(); err != nil {
		return page{}, fmt.Errorf("read all from %s: %w", from, err)
	}
	if out.Scanned < limit {
		// Everything below the fence has been read: continue from there.
		out.AtEnd = true
		out.Next = eventstore.MaxPosition(out.Next, eventstore.Position{Commit: fence})
	}
	return out, nil
}

// likePrefix turns a stream prefix into a LIKE pattern matching it literally.
func likePrefix(prefix string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(prefix) + "%"
}
