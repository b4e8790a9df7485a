// Package memory keeps snapshots in memory, for tests.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/orders-reference/orders/snapshot"
)

// Store is an in-memory snapshot.Store.
type Store struct {
	mu    sync.Mutex
	items map[string]snapshot.Snapshot
}

var _ snapshot.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store { return &Store{items: map[string]snapshot.Snapshot{}} }

// Load implements snapshot.Store.
func (s *Store) Load(ctx context.Context, stream string) (snapshot.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("load snapshot of %s: %w", stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, ok := s.items[stream]
	if !ok {
		return snapshot.Snapshot{}, fmt.Errorf("%s: %w", stream, snapshot.ErrNotFound)
	}
	got.Data = slices.Clone(got.Data)
	return got, nil
}

// Save implements snapshot.Store.
func (s *Store) Save(ctx context.Context, snap snapshot.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save snapshot of %s: %w", snap.Stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.items[snap.Stream]; ok && (old.Version > snap.Version || old.Version == snap.Version && old.Schema == snap.Schema && bytes.Equal(old.Data, snap.Data)) {
		return nil
	}
	snap.Data, snap.TakenAt = slices.Clone(snap.Data), time.Now().UTC()
	s.items[snap.Stream] = snap
	return nil
}

// Delete drops every snapshot.
func (s *Store) Delete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.items)
}
