// Package kurrentdbtest is a protocol double of a KurrentDB (EventStoreDB)
// node: a gRPC server on a local TCP port that speaks the client protocol
// of github.com/EventStore/EventStore-Client-Go/v4, so that the real v4
// client, and adapters built on it, run over real gRPC where no node can.
//
// It is written from the behaviour of a node as described in the
// KurrentDB research notes of issue 14 (kurrentdb-notes.md; "notes §N" in
// the doc comments names their section), never from the server's source.
//
// # What it serves
//
//   - Streams.Append: expected revision (exact, no_stream, any,
//     stream_exists), strong idempotency (exact revision below the current
//     one, or no_stream on an existing stream), weak idempotency (any,
//     stream_exists) through an in-memory cache of recent ids per stream
//     that Restart forgets, no global uniqueness of event ids, the max
//     append size, required "type" and "content-type" metadata.
//   - Streams.Read: stream reads and $all reads, forwards and backwards,
//     with a count; catch-up subscriptions to $all (optionally filtered by
//     stream name or event type, by prefixes or a regex, with checkpoints)
//     and to a stream.
//   - Streams.Tombstone (hard delete). Delete (soft delete), BatchAppend
//     and persistent subscriptions answer Unimplemented.
//   - ServerFeatures.GetSupportedMethods (version DefaultServerVersion by
//     default) and Gossip.Read, for esdb+discover:// connections.
//
// The log is in memory. Positions are byte offsets: commit == prepare for
// every event, strictly increasing by the record's encoded size, never
// contiguous. Reading $all forwards from a position includes the event
// there, reading backwards from it excludes it, and a subscription from it
// starts after it; a position that is not a record boundary is
// InvalidArgument. Every event read carries the "type", "content-type"
// and "created" metadata (100-ns ticks since the Unix epoch).
//
// On start the double writes the visible system events a fresh node has:
// one each in "$settings", "$$$scavenges" and "$scavenges". Consumers of
// $all must skip "$" streams, as on a real node.
//
// # Faults
//
// DropSubscriptions ends open subscriptions with Unavailable; FailNext
// fails the next Streams calls with a chosen code; RedirectToLeader turns
// the double into a follower that answers NotLeader with the leader's
// endpoint; Restart drops every connection and the weak-idempotency cache
// but keeps the log; Close ends it. The keepalive policy tolerates the
// client's pings every 10 s without open streams, which grpc-go's default
// policy answers with GOAWAY (notes §2).
//
// # Conformance tests against a real node
//
// The package's conformance tests use only the v4 client (and raw gRPC
// for trailers), so they run unchanged against a real node. Start a
// throw-away node and point the tests at it:
//
//	docker run --rm -p 2113:2113 docker.kurrent.io/kurrent-latest/kurrentdb:<tag> --insecure --mem-db
//	KURRENTDB_URL='esdb://localhost:2113?tls=false' go test ./eventstore/kurrentdb/kurrentdbtest/
//
// Any node started with --mem-db --insecure does. Each test writes to
// streams of its own namespace; tests of the double's fault injection
// skip. Nodes from v25.1 on accept appends up to 256 MiB: set
// KURRENTDB_MAX_APPEND_SIZE to the node's limit in bytes.
//
// # Where the double may diverge from a node
//
// These are unverified against a node (notes §5) and are what the
// conformance tests are for: the position in an append reply (the last
// event) and in an idempotent reply (the original last matched event);
// the weak cache's size and eviction (ids, first in first out, here); a
// partially matching idempotent retry (wrong expected version here); the
// text of wrong-expected-version errors across versions and the trailers
// of a failed tombstone; when caught_up and checkpoints come, and the
// checkpoint positions (the last considered event here, plus one before
// caught_up); how live subscribers that fall behind are handled (here
// they simply read on, at their own pace); which "$" streams appear in
// $all; real position values and the invalid-position error; reading
// $all backwards from a position (exclusive here); size limits per
// version and how the size is counted (encoded proposed messages here; a
// node may also abort the request stream early, where the double reads it
// to its end); NotLeader redirects and reads on followers; ACLs and TLS;
// .NET regex syntax and culture-sensitive prefixes in filters (Go's regexp
// and byte prefixes here); keepalive with large reads; read-your-writes
// through a follower. Link events are stored as any other event: reads
// do not resolve them.
package kurrentdbtest
