package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/orders-reference/orders/process"
)

// newDLQCmd is "ordersctl dlq": the process manager's dead letters.
func newDLQCmd(u *urls) *cobra.Command {
	dlq := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, retry or discard parked payment saga steps (dead letters)",
		Long: "A step of the payment saga that failed on every retry is parked here with its attempts and last error.\n" +
			"retry runs it once more (a running ordersd picks it up within a second; if it fails again it is parked again);\n" +
			"discard drops it for good.",
	}
	var (
		asJSON bool
		limit  int
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List parked steps, oldest first",
		Args:  cobra.NoArgs,
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			return listDeadLetters(ctx, db, limit, asJSON, cmd.OutOrStdout())
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	list.Flags().IntVar(&limit, "limit", 100, "list at most this many")
	dlq.AddCommand(list)
	dlq.AddCommand(&cobra.Command{
		Use:   "retry ID",
		Short: "Run a parked step once more",
		Args:  cobra.ExactArgs(1),
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error {
			return actOnDeadLetter(ctx, db, args[0], cmd.OutOrStdout(), func(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (string, error) {
				if err := process.RetryDeadLetter(ctx, pool, id, time.Now()); err != nil {
					return "", err
				}
				return "retrying " + id.String(), nil
			})
		}),
	})
	dlq.AddCommand(&cobra.Command{
		Use:   "discard ID",
		Short: "Drop a parked step for good",
		Args:  cobra.ExactArgs(1),
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error {
			return actOnDeadLetter(ctx, db, args[0], cmd.OutOrStdout(), func(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (string, error) {
				d, err := process.DiscardDeadLetter(ctx, pool, id)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("discarded %s (%s of order %s)", d.ID, cell(d.Kind), d.OrderID), nil
			})
		}),
	})
	return dlq
}

func listDeadLetters(ctx context.Context, db *database, limit int, asJSON bool, out io.Writer) error {
	pool, err := db.pool(ctx)
	if err != nil {
		return err
	}
	list, err := process.DeadLetters(ctx, pool, limit)
	if err != nil {
		return err
	}
	if asJSON {
		if list == nil {
			list = []process.DeadLetter{}
		}
		// Escaped as the table is (terminalText), still JSON.
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, terminalText(string(b)))
		return err
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(out, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTEP\tORDER\tATTEMPTS\tPARKED\tCORRELATION\tLAST ERROR")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, cell(d.Kind), d.OrderID, d.Attempts,
			d.ParkedAt.UTC().Format("2006-01-02 15:04:05Z"), cell(d.CorrelationID), cell(d.LastError))
	}
	return tw.Flush()
}

func actOnDeadLetter(ctx context.Context, db *database, rawID string, out io.Writer, act func(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (string, error)) error {
	id, err := parseID("dead letter id", rawID)
	if err != nil {
		return fmt.Errorf("%w (see ordersctl dlq list)", err)
	}
	pool, err := db.pool(ctx)
	if err != nil {
		return err
	}
	msg, err := act(ctx, pool, id)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, msg)
	return err
}
