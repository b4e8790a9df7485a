// Command ordersctl is the operator's tool for Orders: it applies and lists
// database migrations, lists and rebuilds projections (and moves them to
// another event store), shows an order's audit trail, and lists, retries
// or discards the process manager's dead letters. Like ordersd it reads
// the events from the event store EVENTSTORE_URL selects (--eventstore-url):
// PostgreSQL in DATABASE_URL when empty, or KurrentDB.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/httpx"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/orderstock"
	"github.com/orders-reference/orders/query/readmodels"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd(os.Getenv("DATABASE_URL"), os.Getenv("EVENTSTORE_URL"))
	if err := execute(ctx, cmd); err != nil {
		os.Exit(1)
	}
}

// maxError bounds the error ordersctl prints, in bytes of its escaped text.
const maxError = 1000

// execute runs cmd and prints its error as cobra would, "Error: …", but
// escaped and bounded (an error may repeat an argument, a flag's value or
// stored text: cobra's own repeat them whole). The newlines of a message
// of several lines are kept.
func execute(ctx context.Context, cmd *cobra.Command) error {
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		text, cut := escapeText(err.Error(), true, maxError)
		if cut {
			text += "…"
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "Error:", text)
	}
	return err
}

const defaultDatabaseURL = "postgres://postgres@localhost:5432/orders?sslmode=disable"

// newRootCmd builds the command tree; databaseURL and eventStoreURL are
// the DATABASE_URL and EVENTSTORE_URL environment variables, the defaults
// of --database-url and --eventstore-url.
func newRootCmd(databaseURL, eventStoreURL string) *cobra.Command {
	if databaseURL == "" {
		databaseURL = defaultDatabaseURL
	}
	u := &urls{database: databaseURL, eventStore: eventStoreURL}
	root := &cobra.Command{
		Use:           "ordersctl",
		Short:         "Operate an Orders deployment",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.PersistentFlags().StringVar(&u.database, "database-url", databaseURL, "PostgreSQL URL (default from DATABASE_URL)")
	root.PersistentFlags().StringVar(&u.eventStore, "eventstore-url", eventStoreURL,
		"event store: empty for PostgreSQL in --database-url, or esdb://… / kurrentdb://… for KurrentDB (default from EVENTSTORE_URL)")
	// Help shows the defaults without their passwords.
	root.PersistentFlags().Lookup("database-url").DefValue = config.Redacted(databaseURL)
	if eventStoreURL != "" {
		root.PersistentFlags().Lookup("eventstore-url").DefValue = config.Redacted(eventStoreURL)
	}

	migrate := &cobra.Command{Use: "migrate", Short: "Apply or inspect database migrations"}
	migrate.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Create the database if missing and apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, _ []string) error {
			return migrateUp(ctx, db, cmd.OutOrStdout())
		}),
	})
	migrate.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, _ []string) error {
			return migrateStatus(ctx, db, cmd.OutOrStdout())
		}),
	})
	root.AddCommand(migrate)

	projectionsCmd := &cobra.Command{Use: "projections", Short: "Inspect read-model projections"}
	projectionsCmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List projections: checkpoint, events behind, state",
		Args:  cobra.NoArgs,
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, _ []string) error {
			return listProjections(ctx, db, cmd.OutOrStdout())
		}),
	})
	var restart bool
	var batch int
	rebuild := &cobra.Command{
		Use:   "rebuild NAME",
		Short: "Rebuild a projection's read model without downtime (resumes an interrupted rebuild)",
		Long: "Rebuild a read model without downtime: a shadow table catches up from the first event, then takes the live\n" +
			"table's place in one transaction. An interrupted rebuild resumes. The events come from the event store\n" +
			"--eventstore-url names, and the rebuilt read model's checkpoint belongs to it: this is also how a read model\n" +
			"moves to another event store. Read models: " + strings.Join(readmodels.Names(), ", ") + ".",
		Args: cobra.ExactArgs(1),
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error {
			return rebuildProjection(ctx, db, args[0], projections.RebuildOptions{Restart: restart, BatchSize: batch},
				cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	rebuild.Flags().BoolVar(&restart, "restart", false, "drop an interrupted rebuild's work and start from the first event")
	rebuild.Flags().IntVar(&batch, "batch", 5000, "events per transaction")
	rebuild.PreRunE = func(*cobra.Command, []string) error {
		if batch < 1 {
			return fmt.Errorf("--batch %d: must be at least 1", batch)
		}
		return nil
	}
	projectionsCmd.AddCommand(&cobra.Command{
		Use:   "resume NAME",
		Short: "Let a failed projection (or the process manager) try its failing event again, keeping its checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error {
			pool, err := db.pool(ctx)
			if err != nil {
				return err
			}
			if err := projections.Resume(ctx, pool, args[0]); err != nil {
				if errors.Is(err, projections.ErrNotFailed) { // says the name: quoted, bounded
					return fmt.Errorf("%w: %s", projections.ErrNotFailed, httpx.Quote(args[0]))
				}
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s resumes from its checkpoint\n", args[0])
			return err
		}),
	})
	projectionsCmd.AddCommand(rebuild)
	projectionsCmd.AddCommand(&cobra.Command{
		Use:   "switch " + process.Name,
		Short: "Move the process manager to the head of the configured event store, after the events were moved there",
		Long: "Move the process manager's checkpoint, a position in another event store, to the head of the configured one\n" +
			"(--eventstore-url) without running any saga again. Only after switching event stores: the process manager must\n" +
			"have scheduled every event of the old store (projections list showed it 0 behind there), and the configured store\n" +
			"must hold the same events, with nothing written since. Read models are rebuilt instead (projections rebuild).",
		Args: cobra.ExactArgs(1),
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error {
			return switchProjection(ctx, db, args[0], cmd.OutOrStdout())
		}),
	})
	root.AddCommand(projectionsCmd)

	var asJSON bool
	var wait time.Duration
	history := &cobra.Command{
		Use:   "history ORDER_ID",
		Short: "Show an order's full audit trail from the event store",
		Long: "Show an order's full audit trail from the event store. Its stock events are found through the order_stock\n" +
			"index: the command first waits (up to --wait) for the index to reach the end of the event store, and says\n" +
			"so on stderr if it did not (stock events after the index's checkpoint are then missing).",
		Args: cobra.ExactArgs(1),
		RunE: withDatabase(u, func(ctx context.Context, db *database, cmd *cobra.Command, args []string) error {
			if err := checkDuration("wait", wait); err != nil {
				return err
			}
			return orderHistory(ctx, db, args[0], asJSON, wait, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	history.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	history.Flags().DurationVar(&wait, "wait", 5*time.Second, "how long to wait for the order_stock index to catch up")
	ordersCmd := &cobra.Command{Use: "orders", Short: "Inspect orders"}
	ordersCmd.AddCommand(history)
	root.AddCommand(ordersCmd)
	root.AddCommand(newDLQCmd(u))
	root.AddCommand(newProbeCmd())
	return root
}

// listProjections prints every checkpoint with the event store it belongs
// to and how far behind that store it is: "-" for a checkpoint of another
// event store than the configured one (rebuild it, or switch the process
// manager), "N+" when the count stopped at its cap.
func listProjections(ctx context.Context, db *database, out io.Writer) error {
	es, err := db.events(ctx)
	if err != nil {
		return err
	}
	pool, _ := db.pool(ctx)
	list, err := projections.Statuses(ctx, pool, es.Store, projections.StatusOptions{EventStore: es.Kind, MaxBehind: es.MaxCount})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tEVENT STORE\tCHECKPOINT\tBEHIND\tSTATE\tUPDATED\tERROR")
	for _, s := range list {
		behind := strconv.FormatInt(s.Behind, 10)
		switch {
		case s.EventStore != es.Kind:
			behind = "-"
		case s.Behind >= int64(es.MaxCount):
			behind += "+"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(s.Name), s.EventStore, s.Checkpoint, behind, cell(s.State),
			s.UpdatedAt.UTC().Format("2006-01-02 15:04:05Z"), cell(s.Error))
	}
	return tw.Flush()
}

func rebuildProjection(ctx context.Context, db *database, name string, opts projections.RebuildOptions, out, errOut io.Writer) error {
	proj, ok := readmodels.Lookup(name)
	if !ok {
		if name == process.Name {
			return fmt.Errorf("%s is the payment process manager, not a read model: rebuilding it would run every saga again (a failed one continues with ordersctl projections resume %s)", name, name)
		}
		return fmt.Errorf("no projection %s (have %s)", httpx.Quote(name), strings.Join(readmodels.Names(), ", "))
	}
	es, err := db.events(ctx)
	if err != nil {
		return err
	}
	pool, _ := db.pool(ctx)
	progress := newProgress(errOut, "rebuild "+name, es.MaxCount)
	opts.Progress, opts.MaxCount, opts.EventStore = progress.update, es.MaxCount, es.Kind
	res, err := projections.Rebuild(ctx, pool, es.Store, proj, opts)
	progress.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rebuilt %s: %d events in %s (%.0f events/s); live from %s in the %s event store\n", name, res.Events,
		res.Duration.Round(time.Millisecond), float64(res.Events)/res.Duration.Seconds(), res.Checkpoint, es.Kind)
	return nil
}

// switchProjection moves the process manager to the head of the
// configured event store (see projections.Switch).
func switchProjection(ctx context.Context, db *database, name string, out io.Writer) error {
	if name != process.Name {
		if _, ok := readmodels.Lookup(name); ok {
			return fmt.Errorf("%s is a read model: rebuild it from the configured event store instead (ordersctl projections rebuild %s)", name, name)
		}
		return fmt.Errorf("only %s is switched (read models are rebuilt): no projection %s", process.Name, httpx.Quote(name))
	}
	es, err := db.events(ctx)
	if err != nil {
		return err
	}
	pool, _ := db.pool(ctx)
	sw, err := projections.Switch(ctx, pool, es.Store, name, es.Kind)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s moved from %s in the %s event store to the head of the %s event store, %s\n",
		name, sw.From, sw.FromEventStore, es.Kind, sw.To)
	return err
}

// progress reports a rebuild's progress: a bar on a terminal, a plain line
// every few seconds otherwise (logs, CI). When the rebuild did not count
// the events to read (more than maxCount), it shows how many it has read,
// a spinner rather than a bar, and no ETA.
type progress struct {
	w        io.Writer
	title    string
	maxCount int
	bar      *progressbar.ProgressBar
	tty      bool
	start    time.Time
	last     time.Time
	// printedFinal: the line for the last event read is out.
	printedFinal bool
}

func newProgress(w io.Writer, title string, maxCount int) *progress {
	f, isFile := w.(*os.File)
	return &progress{w: w, title: title, maxCount: maxCount, tty: isFile && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

// update is told the events read so far and how many there are in all, -1
// while that is unknown.
func (p *progress) update(done, total int64) {
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.title),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"),
				progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond))
		}
		p.bar.ChangeMax64(total)
		_ = p.bar.Set64(done)
		return
	}
	final := total >= 0 && done >= total
	if (time.Since(p.last) < 2*time.Second && !final) || (final && p.printedFinal) {
		return
	}
	p.last, p.printedFinal = time.Now(), final
	elapsed := time.Since(p.start).Seconds()
	rate := float64(done) / max(elapsed, 0.001)
	if total < 0 {
		fmt.Fprintf(p.w, "%s: %d events of more than %d, %.0f events/s\n", p.title, done, p.maxCount, rate)
		return
	}
	eta := "-"
	if rate > 0 && total > done {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "%s: %d/%d events, %.0f events/s, ETA %s\n", p.title, done, total, rate, eta)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// orderHistory prints an order's audit trail to out, after waiting up to
// wait for the order_stock index to reach the event store's head; a note on
// errOut says when it did not.
func orderHistory(ctx context.Context, db *database, rawID string, asJSON bool, wait time.Duration, out, errOut io.Writer) error {
	id, err := parseID("order id", rawID)
	if err != nil {
		return err
	}
	es, err := db.events(ctx)
	if err != nil {
		return err
	}
	store := es.Store
	pool, _ := db.pool(ctx)
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	caughtUp := projections.NewProgress(pool, 50*time.Millisecond).WaitFor(waitCtx, orderstock.Name, head) == nil
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	h, err := query.OrderHistory(ctx, store, orderstock.NewReader(pool), id)
	if err != nil {
		return err
	}
	if !caughtUp && h.StockThrough.Less(head) {
		fmt.Fprintf(errOut, "note: the %s index is at %s, the event store at %s: stock events after %s are not shown "+
			"(is a projector running? see ordersctl projections list)\n", orderstock.Name, h.StockThrough, head, h.StockThrough)
	}
	if asJSON { // escaped as the table is (terminalText), still JSON
		b, err := json.MarshalIndent(h, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, terminalText(string(b)))
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tRECORDED\tSTREAM\tVERSION\tTYPE\tACTOR\tCORRELATION\tCAUSATION\tDATA")
	for _, e := range h.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Position, e.RecordedAt.UTC().Format("2006-01-02 15:04:05.000Z"),
			cell(e.Stream), e.Version, cell(e.Type), cell(e.Metadata.Actor), cell(e.Metadata.CorrelationID),
			cell(e.Metadata.CausationID), cell(string(e.Data)))
	}
	return tw.Flush()
}

func migrateUp(ctx context.Context, db *database, out io.Writer) error {
	created, err := pg.EnsureDatabase(ctx, db.url)
	if err != nil {
		return fmt.Errorf("database %s: %w", config.Redacted(db.url), err)
	}
	if created {
		fmt.Fprintf(out, "created database %s\n", config.Redacted(db.url))
	}
	pool, err := db.pool(ctx)
	if err != nil {
		return err
	}
	m, closeDB, err := pg.Migrator(pool, nil) // the versions applied are printed below
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

func migrateStatus(ctx context.Context, db *database, out io.Writer) error {
	pool, err := db.pool(ctx)
	if err != nil {
		return err
	}
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
