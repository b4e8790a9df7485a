// Package projections turns the event stream into PostgreSQL read models: a
// runner subscribes to all events from a checkpoint and applies them in
// batches, writing rows and checkpoint in one transaction.
//
// See docs/ARCHITECTURE.md for where it sits.
package projections
