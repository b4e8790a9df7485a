// Package postgres keeps snapshots in PostgreSQL, in their own table
// (snapshots: one row per stream), beside the event store's.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/snapshot"
)

// Store is a snapshot.Store in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ snapshot.Store = (*Store)(nil)

// New returns a Store over pool (migrated: see migrations).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Load implements snapshot.Store.
func (s *Store) Load(ctx context.Context, stream string) (snapshot.Snapshot, error) {
	out := snapshot.Snapshot{Stream: stream}
	var commit, prepare int64
	err := s.pool.QueryRow(ctx, `SELECT version, schema_version, position_commit, position_prepare, data, taken_at
	     FROM snapshots WHERE stream_id = $1`, stream).Scan(&out.Version, &out.Schema, &commit, &prepare, &out.Data, &out.TakenAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return snapshot.Snapshot{}, fmt.Errorf("%s: %w", stream, snapshot.ErrNotFound)
	}
	if err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("load snapshot of %s: %w", stream, err)
	}
	out.Position = eventstore.Position{Commit: uint64(commit), Prepare: uint64(prepare)}
	return out, nil
}

// Save implements snapshot.Store: an upsert that only moves forward.
func (s *Store) Save(ctx context.Context, snap snapshot.Snapshot) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO snapshots (stream_id, version, schema_version, position_commit, position_prepare, data, taken_at)
	     VALUES ($1, $2, $3, $4, $5, $6, now())
	     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, schema_version = excluded.schema_version,
	        position_commit = excluded.position_commit, position_prepare = excluded.position_prepare,
	        data = excluded.data, taken_at = excluded.taken_at
	     WHERE snapshots.version < excluded.version
	        OR (snapshots.version = excluded.version
	            AND (snapshots.schema_version <> excluded.schema_version OR snapshots.data <> excluded.data))`,
		snap.Stream, snap.Version, snap.Schema, int64(snap.Position.Commit), int64(snap.Position.Prepare), snap.Data)
	if err != nil {
		return fmt.Errorf("save snapshot of %s: %w", snap.Stream, err)
	}
	return nil
}
