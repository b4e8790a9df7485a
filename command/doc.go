// Package command is the write side of Orders: event-sourced products and
// orders, stock reservation and the command API. It appends to the event
// store through the eventstore port and never reads read models.
//
// It is built on the event store from the foundation issue; see
// docs/ARCHITECTURE.md for where it sits.
package command
