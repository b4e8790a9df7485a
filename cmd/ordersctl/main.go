// Command ordersctl is the operator's tool for Orders: it applies and lists
// database migrations (and, as the product grows, rebuilds projections,
// shows order histories and handles dead letters).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/orders-reference/orders/internal/config"
	pg "github.com/orders-reference/orders/internal/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd(os.Getenv("DATABASE_URL"))
	if err := cmd.ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

const defaultDatabaseURL = "postgres://postgres@localhost:5432/orders?sslmode=disable"

// newRootCmd builds the command tree; databaseURL is the DATABASE_URL
// environment variable, the default of --database-url.
func newRootCmd(databaseURL string) *cobra.Command {
	if databaseURL == "" {
		databaseURL = defaultDatabaseURL
	}
	root := &cobra.Command{
		Use:           "ordersctl",
		Short:         "Operate an Orders deployment",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.PersistentFlags().StringVar(&databaseURL, "database-url", databaseURL, "PostgreSQL URL (default from DATABASE_URL)")

	migrate := &cobra.Command{Use: "migrate", Short: "Apply or inspect database migrations"}
	migrate.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Create the database if missing and apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return migrateUp(cmd.Context(), databaseURL, cmd.OutOrStdout())
		},
	})
	migrate.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return migrateStatus(cmd.Context(), databaseURL, cmd.OutOrStdout())
		},
	})
	root.AddCommand(migrate)
	return root
}

func migrateUp(ctx context.Context, url string, out io.Writer) error {
	if err := pg.EnsureDatabase(ctx, url); err != nil {
		return fmt.Errorf("database %s: %w", config.Redacted(url), err)
	}
	pool, err := pg.Connect(ctx, url, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, closeDB, err := pg.Migrator(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer closeDB()
	applied, err := m.Up(ctx)
	for _, v := range applied {
		fmt.Fprintf(out, "applied %05d\n", v)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(out, "no pending migrations")
	}
	return nil
}

func migrateStatus(ctx context.Context, url string, out io.Writer) error {
	pool, err := pg.Connect(ctx, url, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, closeDB, err := pg.Migrator(pool, nil)
	if err != nil {
		return err
	}
	defer closeDB()
	list, err := m.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, s := range list {
		state, at := "pending", "-"
		if s.Applied {
			state, at = "applied", s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Version, s.Name, state, at)
	}
	return tw.Flush()
}
