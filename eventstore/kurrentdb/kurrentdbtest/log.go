package kurrentdbtest

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// firstPosition is where the first visible record starts. Position 0 is a
// record boundary too: it stands for the hidden epoch record a node writes
// first (notes §3: $epoch-information is hidden from $all), so reading
// forwards from 0 or subscribing from 0 both start at the first visible
// record.
const firstPosition = 128

// tombstoneRevision is the revision of a stream's tombstone record in $all.
const tombstoneRevision = math.MaxInt64

// record is one event in the log. Records are immutable once written.
type record struct {
	id          uuid.UUID
	stream      string
	revision    uint64
	position    uint64 // commit and prepare position: the record's byte offset
	eventType   string
	contentType string
	created     int64 // 100-ns ticks since the Unix epoch
	data        []byte
	meta        []byte
}

// proposal is an event an append asks to write.
type proposal struct {
	id          uuid.UUID
	eventType   string
	contentType string
	data        []byte
	meta        []byte
}

// stream is the state of one stream: its records by revision.
type stream struct {
	records    []*record
	tombstoned bool
}

// eventLog is the node's transaction log and index: every record in $all
// order, the streams, and the weak-idempotency cache. Appends hold mu for
// writing; reads copy record pointers under mu held for reading, so an
// append is visible to every read that starts after it returns (notes §3:
// read-your-writes on the leader).
type eventLog struct {
	mu      sync.RWMutex
	records []*record // $all order, positions strictly increasing
	next    uint64    // position of the next record: the log's end
	streams map[string]*stream
	recent  *recentIDs
	changed chan struct{} // closed and replaced by every write
}

func newEventLog(recentIDs int) *eventLog {
	return &eventLog{
		next:    firstPosition,
		streams: make(map[string]*stream),
		recent:  newRecentIDs(recentIDs),
		changed: make(chan struct{}),
	}
}

// writeStartupEvents writes the visible system events a fresh node writes
// (notes §3: $settings, $scavenges and metadata streams appear in $all), so
// that consumers of $all must skip "$" streams.
func (l *eventLog) writeStartupEvents() {
	l.mu.Lock()
	defer l.mu.Unlock()
	json := "application/json"
	l.writeLocked("$settings", []proposal{{id: uuid.New(), eventType: "$update-default-acl", contentType: json,
		data: []byte(`{"$userStreamAcl":{"$r":"$all","$w":"$all"},"$systemStreamAcl":{"$r":"$admins","$w":"$admins"}}`)}})
	l.writeLocked("$$$scavenges", []proposal{{id: uuid.New(), eventType: "$metadata", contentType: json,
		data: []byte(`{"$maxAge":2592000}`)}})
	l.writeLocked("$scavenges", []proposal{{id: uuid.New(), eventType: "$scavengeIndexInitialized", contentType: json,
		data: []byte(`{}`)}})
}

// writeLocked appends ps to the named stream after its current last
// revision and returns the written records. The caller holds mu for
// writing and has checked the expected revision.
func (l *eventLog) writeLocked(name string, ps []proposal) []*record {
	st := l.streams[name]
	if st == nil {
		st = &stream{}
		l.streams[name] = st
	}
	created := time.Now().UnixNano() / 100
	written := make([]*record, 0, len(ps))
	for _, p := range ps {
		r := &record{
			id: p.id, stream: name, revision: uint64(len(st.records)), position: l.next,
			eventType: p.eventType, contentType: p.contentType, created: created, data: p.data, meta: p.meta,
		}
		l.next += recordSize(r)
		l.records = append(l.records, r)
		st.records = append(st.records, r)
		l.recent.add(r)
		written = append(written, r)
	}
	l.notifyLocked()
	return written
}

// tombstoneLocked writes the stream's tombstone record ($streamDeleted at
// revision MaxInt64, visible in $all) and marks the stream deleted for
// ever. The caller holds mu for writing.
func (l *eventLog) tombstoneLocked(name string) *record {
	st := l.streams[name]
	if st == nil {
		st = &stream{}
		l.streams[name] = st
	}
	r := &record{
		id: uuid.New(), stream: name, revision: tombstoneRevision, position: l.next,
		eventType: "$streamDeleted", contentType: "application/octet-stream",
		created: time.Now().UnixNano() / 100, data: []byte{}, meta: []byte{},
	}
	l.next += recordSize(r)
	l.records = append(l.records, r)
	st.tombstoned = true
	l.notifyLocked()
	return r
}

// notifyLocked wakes every subscription waiting for a write.
func (l *eventLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// forgetRecentIDs empties the weak-idempotency cache (a restart).
func (l *eventLog) forgetRecentIDs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recent.clear()
}

// recordSize is how far a record advances the log, in bytes: a fixed
// header plus the variable fields, rounded up to 8. It approximates a
// prepare record's size so that positions are byte offsets, monotonic and
// never contiguous (notes §3); real values differ (notes §5).
func recordSize(r *record) uint64 {
	const header = 96 // flags, positions, ids, revision, timestamp, lengths
	n := header + len(r.stream) + len(r.eventType) + len(r.contentType) + len(r.data) + len(r.meta)
	return uint64((n + 7) &^ 7)
}

// locateLocked finds position p in the log. It returns the index of the
// first record at or after p and whether a record starts exactly at p. p
// is valid when commit == prepare (each record's commit is its prepare,
// notes §3) and p is a record boundary: 0, a record's position or the
// log's end. The caller holds mu.
func (l *eventLog) locateLocked(commit, prepare uint64) (index int, exact bool, ok bool) {
	if commit != prepare || prepare > l.next {
		return 0, false, false
	}
	i := sort.Search(len(l.records), func(i int) bool { return l.records[i].position >= prepare })
	exact = i < len(l.records) && l.records[i].position == prepare
	boundary := exact || prepare == 0 || prepare == l.next
	return i, exact, boundary
}

// page returns up to n records of $all from index on, and the channel the
// next write will close; a caller that got no records waits on it.
func (l *eventLog) page(index, n int) ([]*record, <-chan struct{}) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	end := min(len(l.records), index+n)
	if index >= end {
		return nil, l.changed
	}
	return append([]*record(nil), l.records[index:end]...), l.changed
}
