package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/orders-reference/orders/internal/eventstores"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// database is the one connection of a command to Orders' database, and to
// its event store: each opened on first use, closed when the command ends
// (withDatabase).
type database struct {
	url   string
	conns *pgxpool.Pool
	// esURL is the event store's URL: empty for PostgreSQL in url.
	esURL string
	es    *eventstores.Backend
}

// pool returns the connection pool, opening it the first time.
func (d *database) pool(ctx context.Context) (*pgxpool.Pool, error) {
	if d.conns == nil {
		p, err := pg.Connect(ctx, d.url, 4)
		if err != nil {
			return nil, err
		}
		d.conns = p
	}
	return d.conns, nil
}

// events returns the event store, opening it the first time.
func (d *database) events(ctx context.Context) (*eventstores.Backend, error) {
	if d.es == nil {
		p, err := d.pool(ctx)
		if err != nil {
			return nil, err
		}
		// Errors never hold the URL's password.
		es, err := eventstores.Open(ctx, d.esURL, p, eventstores.Options{})
		if err != nil {
			return nil, fmt.Errorf("event store: %w", err)
		}
		d.es = es
	}
	return d.es, nil
}

func (d *database) close() {
	if d.es != nil {
		d.es.Close()
	}
	if d.conns != nil {
		d.conns.Close()
	}
}

// urls are the database's and the event store's URLs, as the flags
// --database-url and --eventstore-url set them.
type urls struct {
	database   string
	eventStore string
}

// withDatabase runs f with a database for the URLs u holds when the
// command runs (after flags are parsed), and closes it afterwards.
func withDatabase(u *urls, f func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		db := &database{url: u.database, esURL: u.eventStore}
		defer db.close()
		return f(cmd.Context(), db, cmd, args)
	}
}
