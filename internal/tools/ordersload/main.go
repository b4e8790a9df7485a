// Command ordersload is the project's load and benchmark tool. It lives in
// its own module, so the service depends neither on vegeta nor on it.
//
//	ordersload [load] -url http://localhost:8000 -conns 64 -duration 30s
//	ordersload [load] -url http://localhost:8000 -rate 200 -duration 30s
//	ordersload history -orders 100000 -database-url postgres://…/orders_hist
//	ordersload place -url http://127.0.0.1:8731 -hot PRODUCT-ID -duration 10s
//	ordersload settle -database-url postgres://… -after COMMIT/PREPARE
//
// load drives a running ordersd over HTTP and measures, in one run, the
// placement rate, the end-to-end rate (orders whose payment saga ended, per
// second, until the last one ends), the maximum backlog, POST /orders
// p50/p95/p99 and the paid/canceled split, and prints them as text and as
// a markdown table row for docs/benchmarks.md. Its flags:
//
//	-url URL            ordersd base URL (default http://localhost:8000)
//	-admin-secret S     X-Admin-Secret for the admin API (default dev-admin-secret)
//	-conns N            closed loop, the default mode: N clients each placing
//	                    orders back to back (default 64)
//	-rate R             open loop: R orders a second with vegeta, whatever the
//	                    latency (default 0: closed loop; not with -conns)
//	-duration D         how long to place orders (default 30s)
//	-products N         products created through the admin API to spread the
//	                    orders over (default 1000)
//	-settle D           how long to wait after the load for every saga to end
//	                    (default 5m)
//	-metrics URL[,URL]  /metrics of every instance counting paid and canceled
//	                    orders (orders_paid_total, orders_canceled_total), for
//	                    the backlog sampled every 500 ms (default -url/metrics)
//	-timeout D          timeout of one POST /orders (default 30s)
//	-read-model         also count paid and canceled orders in the read model
//	                    at the end (default true)
//
// history builds a large history straight through the event store (for the
// growth benchmark, history_bench.sh); place and settle are the two halves
// of that benchmark's crash measurement. Run "ordersload COMMAND -h" for
// each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/orders-reference/orders/internal/redact"
)

const usage = `Usage: ordersload [COMMAND] [flags]

Commands:
  load      HTTP load on POST /orders, closed loop (-conns, the default) or
            open loop (-rate, vegeta), then the wait for every payment saga
            to end; prints placement and end-to-end rates, their ratio, the
            maximum backlog, POST latency and the paid/canceled split, with a
            markdown table row (the default when no command is given)
  history   build a history of -orders orders in an empty database, straight
            through the event store, with read models built and the process
            manager at the head (no server needed, and none may run on it)
  place     closed-loop POST /orders from -conns clients against a running
            ordersd, half on a hot product (the crash benchmark's load)
  settle    wait until no order placed after a position is left undecided and
            their stock is conserved, reading the event store itself
  head      print the event store's head position (settle's -after)

"ordersload COMMAND -h" describes each command's flags. DATABASE_URL, if set,
is the default of -database-url. Database URLs are printed with their
passwords masked.
`

// defaultDatabaseURL is what ordersd and ordersctl use without DATABASE_URL.
const defaultDatabaseURL = "postgres://postgres@localhost:5432/orders?sslmode=disable"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	cmd := "load"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	databaseURL := os.Getenv("DATABASE_URL")
	if databaseURL == "" {
		databaseURL = defaultDatabaseURL
	}
	var err error
	switch cmd {
	case "load":
		err = loadMain(ctx, args, os.Stdout, os.Stderr)
	case "history":
		err = historyMain(ctx, args, databaseURL, os.Stdout, os.Stderr)
	case "place":
		err = placeMain(ctx, args, os.Stdout, os.Stderr)
	case "settle":
		err = settleMain(ctx, args, databaseURL, os.Stdout, os.Stderr)
	case "head":
		err = headMain(ctx, args, databaseURL, os.Stdout, os.Stderr)
	case "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "ordersload: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintf(os.Stderr, "ordersload %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// redacted is a URL or DSN fit to print: its passwords and tokens masked.
func redacted(raw string) string { return redact.URL(raw) }

// flagUsage sets fs's usage: the text, then the flags.
func flagUsage(fs *flag.FlagSet, stderr io.Writer, text string) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text+"\nFlags:\n")
		fs.PrintDefaults()
	}
}
