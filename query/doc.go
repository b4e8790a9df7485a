// Package query is the read side's API: it answers from the PostgreSQL read
// models that package projections maintains, never from the event store
// (except an order's audit history).
//
// See docs/ARCHITECTURE.md for where it sits.
package query
