package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/orders-reference/orders/eventstore/postgres"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// database is the one connection of a command to Orders' database: opened
// on first use, closed when the command ends (withDatabase).
type database struct {
	url   string
	conns *pgxpool.Pool
	es    *postgres.Store
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

// store returns the event store over the pool.
func (d *database) store(ctx context.Context) (*postgres.Store, error) {
	if d.es == nil {
		p, err := d.pool(ctx)
		if err != nil {
			return nil, err
		}
		d.es = postgres.New(p, postgres.Options{})
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

// withDatabase runs f with a database for the URL *url names when the
// command runs (after flags are parsed), and closes it afterwards.
func withDatabase(url *string, f func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		db := &database{url: *url}
		defer db.close()
		return f(cmd.Context(), db, cmd, args)
	}
}
