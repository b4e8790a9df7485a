package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/eventstore"
)

const loadUsage = `Usage: ordersload [load] [flags]

Measures in one run how fast a running ordersd takes orders and how fast its
payment sagas end. It creates -products products through the admin API
(stock 100,000,000 each, so none runs out), then places orders for -duration,
each from its own customer, with its own Idempotency-Key, for one unit of a
random product, in one of two modes:

  closed loop (the default): -conns clients each send POST /orders, wait
      for the answer and send the next, as fast as the server answers;
  open loop (-rate R): vegeta sends R POST /orders a second, whatever the
      answers' latency (-conns may not be given with -rate).

Every 500 ms, during the load and after it, it samples the backlog: orders
placed (201s so far) less the orders that reached a terminal state since the
load started, read from orders_paid_total + orders_canceled_total (all
reasons) on the -metrics endpoints, as deltas from a scrape taken just
before the load. Those counters are per process: list every instance that
runs the process manager. Orders of other clients count too, so give the run
a server of its own.

After the load it waits, up to -settle, until the admin API shows no order
created, reserved or payment_pending (reading at or after the last
placement's X-Event-Position, polled every 100 ms), then prints:

  - placement rate: orders placed (201) / the load's time (from its start
    to the last answer);
  - end-to-end rate: orders placed / the time from the load's start until
    no order was left open;
  - ratio: end-to-end rate / placement rate (1 when the sagas keep up);
  - the maximum backlog, and POST /orders p50/p95/p99 over every answer
    (exact: every latency kept and sorted);
  - paid and canceled: the counters' deltas (this run's orders) and, with
    -read-model, the read model's totals (the whole database's);

and last a markdown table row, under its header, to paste into
docs/benchmarks.md. Run the server with RATE_LIMIT_ORDERS_PER_MINUTE high
enough for the load. Progress goes to stderr, the results to stdout.
`

// loadConfig is "ordersload load"'s flags, checked.
type loadConfig struct {
	base, admin        string
	metrics            []string
	conns, rate        int
	products           int
	duration, settle   time.Duration
	timeout            time.Duration
	countReadModel     bool
	samplingInterval   time.Duration
	settlePollInterval time.Duration
}

// closed tells the closed loop (-conns) from the open one (-rate).
func (c loadConfig) closed() bool { return c.rate == 0 }

// loadMain is "ordersload load" (also what ordersload does without a
// command).
func loadMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseLoadFlags(args, stderr)
	if err != nil {
		return err
	}
	return runLoad(ctx, c, stdout, stderr)
}

// parseLoadFlags parses and checks load's flags.
func parseLoadFlags(args []string, stderr io.Writer) (loadConfig, error) {
	fs := flag.NewFlagSet("ordersload load", flag.ContinueOnError)
	flagUsage(fs, stderr, loadUsage)
	c := loadConfig{samplingInterval: 500 * time.Millisecond, settlePollInterval: 100 * time.Millisecond}
	fs.StringVar(&c.base, "url", "http://localhost:8000", "ordersd base URL")
	fs.StringVar(&c.admin, "admin-secret", "dev-admin-secret", "X-Admin-Secret for the admin API")
	fs.IntVar(&c.conns, "conns", 64, "closed loop (the default mode): concurrent clients, each placing orders back to back")
	fs.IntVar(&c.rate, "rate", 0, "open loop: orders per second, sent by vegeta whatever the latency (0: closed loop)")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "how long to place orders")
	fs.IntVar(&c.products, "products", 1000, "products to spread the orders over (created through the admin API)")
	fs.DurationVar(&c.settle, "settle", 5*time.Minute, "how long to wait after the load for every saga to end")
	metrics := fs.String("metrics", "", "comma-separated /metrics URLs of the instances that count paid and canceled orders (default: -url followed by /metrics)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of one POST /orders")
	fs.BoolVar(&c.countReadModel, "read-model", true, "at the end, also count paid and canceled orders in the read model through the admin API (the whole database's; pages of 100)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return c, c.check(given, *metrics, fs.Args())
}

// check validates the flags and fills in the metrics URLs.
func (c *loadConfig) check(given map[string]bool, metrics string, rest []string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q: load takes flags only", rest[0])
	case c.rate < 0:
		return errors.New("-rate must be positive (open loop) or 0 (closed loop, the default)")
	case c.rate > 0 && given["conns"]:
		return errors.New("-conns (closed loop) and -rate (open loop) choose the mode: give one of them, not both")
	case c.conns < 1:
		return errors.New("-conns must be at least 1")
	case c.products < 1:
		return errors.New("-products must be at least 1")
	case c.duration <= 0 || c.settle <= 0 || c.timeout <= 0:
		return errors.New("-duration, -settle and -timeout must be positive")
	}
	if err := checkHTTPURL(c.base); err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	c.base = strings.TrimRight(c.base, "/")
	c.metrics = nil
	for u := range strings.SplitSeq(metrics, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if err := checkHTTPURL(u); err != nil {
			return fmt.Errorf("-metrics: %w", err)
		}
		if slices.Contains(c.metrics, u) {
			return fmt.Errorf("-metrics: %s given twice (its orders would count twice)", u)
		}
		c.metrics = append(c.metrics, u)
	}
	if len(c.metrics) == 0 {
		if given["metrics"] {
			return errors.New("-metrics: no URL given")
		}
		c.metrics = []string{c.base + "/metrics"}
	}
	return nil
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s)://host… URL", raw)
	}
	return nil
}

func runLoad(ctx context.Context, c loadConfig, stdout, stderr io.Writer) error {
	// The admin API and /metrics get a client of their own, so neither
	// waits behind the load's connections.
	side := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: productWorkers}}
	// The metrics are checked first: a wrong -metrics creates no products.
	scrape := func(ctx context.Context) (terminal, error) { return scrapeTerminal(ctx, side, c.metrics) }
	if _, err := scrape(ctx); err != nil {
		return fmt.Errorf("metrics before the load: %w", err)
	}
	fmt.Fprintf(stderr, "creating %d products…\n", c.products)
	ids, err := createProducts(ctx, side, c.base, c.admin, c.products)
	if err != nil {
		return err
	}
	before, err := scrape(ctx)
	if err != nil {
		return fmt.Errorf("metrics before the load: %w", err)
	}

	mode := fmt.Sprintf("closed loop, %d conns", c.conns)
	if !c.closed() {
		mode = fmt.Sprintf("open loop, %d/s", c.rate)
	}
	fmt.Fprintf(stderr, "placing orders for %s (%s) over %d products at %s; metrics from %s…\n",
		c.duration, mode, c.products, redacted(c.base), redactedAll(c.metrics))
	rec := newRecorder()
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	start := time.Now()
	smp := startSampler(ctx, c.samplingInterval, scrape, before, rec.placed.Load, start)
	defer smp.stop() // on the error paths; stopping twice is harmless
	if c.closed() {
		closedLoop(ctx, c, ids, run, rec)
	} else {
		openLoop(ctx, c, ids, run, rec)
	}
	loadTime := time.Since(start)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted during the load: %w", err)
	}
	lat := summarize(rec.latencies)
	placed := rec.placed.Load()
	placementRate := float64(placed) / loadTime.Seconds()
	fmt.Fprintf(stdout, "load: %s for %s over %d products (%s)\n", mode, c.duration, c.products, redacted(c.base))
	fmt.Fprintf(stdout, "POST /orders: %d answers in %s: %d placed (201)%s; %d without an answer%s\n",
		lat.N, loadTime.Round(time.Millisecond), placed, rec.otherCodes(), rec.failed.Load(), rec.lastError())
	fmt.Fprintf(stdout, "POST latency: p50 %s  p95 %s  p99 %s  max %s  mean %s\n",
		ms(lat.P50), ms(lat.P95), ms(lat.P99), ms(lat.Max), ms(lat.Mean))
	fmt.Fprintf(stdout, "placement: %.0f orders/s\n", placementRate)
	if placed == 0 {
		return errors.New("no order placed: nothing to measure")
	}

	minPos := ""
	if rec.hasPos {
		minPos = rec.maxPos.String()
	}
	fmt.Fprintf(stderr, "waiting (up to %s) until no order is created, reserved or payment_pending…\n", c.settle)
	end, err := waitSettled(ctx, side, c, minPos, time.Now().Add(c.settle))
	if err != nil {
		bl, _ := smp.stop()
		return fmt.Errorf("%w (backlog by the counters at the last sample: %d)", err, bl.Last)
	}
	e2eTime := end.Sub(start)
	bl, last := smp.stop()
	e2eRate := float64(placed) / e2eTime.Seconds()
	r := report{
		Mode: "open", Load: strconv.Itoa(c.rate) + "/s", Duration: c.duration,
		Placed: placed, PlacementRate: placementRate, EndToEndRate: e2eRate,
		MaxBacklog: bl.Max, Latency: lat,
		Paid: int64(math.Round(last.delta.Paid)), Canceled: int64(math.Round(last.delta.Canceled)),
		Unsampled: bl.Samples == 0,
	}
	if c.closed() {
		r.Mode, r.Load = "closed", strconv.Itoa(c.conns)+" conns"
	}
	fmt.Fprintf(stdout, "backlog: max %d at %s after the start (%d samples every %s, %d failed scrapes%s)\n",
		bl.Max, bl.MaxAt.Round(10*time.Millisecond), bl.Samples, c.samplingInterval, last.failed, last.lastError())
	fmt.Fprintf(stdout, "end to end: no order open %s after the start: %.0f orders/s\n", e2eTime.Round(10*time.Millisecond), e2eRate)
	fmt.Fprintf(stdout, "outcome by the counters (this run): %d paid, %d canceled", r.Paid, r.Canceled)
	switch ended := r.Paid + r.Canceled; {
	case r.Unsampled:
		fmt.Fprint(stdout, " (unknown: no scrape of -metrics succeeded)")
	case ended > placed:
		fmt.Fprintf(stdout, " (%d ended, %d placed: other clients' orders?)", ended, placed)
	case ended < placed:
		fmt.Fprintf(stdout, " (%d ended, %d placed: an instance missing from -metrics?)", ended, placed)
	}
	fmt.Fprintln(stdout)
	if c.countReadModel {
		paid, err1 := count(ctx, side, c.base, c.admin, statusPaid)
		canceled, err2 := count(ctx, side, c.base, c.admin, statusCanceled)
		if err := errors.Join(err1, err2); err != nil {
			fmt.Fprintf(stdout, "read model: not counted: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "read model (the whole database): %d paid, %d canceled\n", paid, canceled)
		}
	}
	fmt.Fprintf(stdout, "ratio %.2f (end-to-end %.0f orders/s vs placement %.0f orders/s)\n\n", r.ratio(), e2eRate, placementRate)
	fmt.Fprint(stdout, tableHeader, r.row())
	return nil
}

// recorder collects the answers to POST /orders from the load's clients.
type recorder struct {
	placed atomic.Int64 // 201s so far (the sampler reads it during the load)
	failed atomic.Int64 // requests without an answer

	mu        sync.Mutex
	latencies []time.Duration // of every answer
	codes     map[int]int64
	maxPos    eventstore.Position // the furthest X-Event-Position of a 201
	hasPos    bool
	lastErr   string
}

func newRecorder() *recorder { return &recorder{codes: map[int]int64{}} }

// record records one request: its answer's status code (0: none, errMsg
// says why), latency and X-Event-Position.
func (r *recorder) record(code int, latency time.Duration, position, errMsg string) {
	if code == 0 {
		r.failed.Add(1)
		r.mu.Lock()
		r.lastErr = errMsg
		r.mu.Unlock()
		return
	}
	pos, posErr := eventstore.ParsePosition(position)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies = append(r.latencies, latency)
	r.codes[code]++
	if code != http.StatusCreated {
		return
	}
	r.placed.Add(1)
	if posErr == nil && (!r.hasPos || r.maxPos.Less(pos)) {
		r.maxPos, r.hasPos = pos, true
	}
}

// otherCodes lists the answers other than 201, e.g. ", 2 × 503".
func (r *recorder) otherCodes() string {
	s := ""
	for _, code := range slices.Sorted(maps.Keys(r.codes)) {
		if code != http.StatusCreated {
			s += fmt.Sprintf(", %d × %d", r.codes[code], code)
		}
	}
	return s
}

func (r *recorder) lastError() string {
	if r.lastErr == "" {
		return ""
	}
	return " (last: " + r.lastErr + ")"
}

// orderRequest is the n-th order of a run: one unit of a random product, a
// customer of its own and an Idempotency-Key of its own.
func orderRequest(run string, n int64, ids []string) ([]byte, http.Header) {
	body, _ := json.Marshal(map[string]any{
		"user_email": fmt.Sprintf("load-%s-%d@example.com", run, n),
		"items":      []map[string]any{{"product_id": ids[rand.IntN(len(ids))], "quantity": 1}},
	})
	return body, http.Header{
		"Content-Type":    {"application/json"},
		"Idempotency-Key": {fmt.Sprintf("load-%s-%d", run, n)},
	}
}

// closedLoop has c.conns clients each place orders back to back until
// c.duration has passed; the requests under way then are answered and
// counted.
func closedLoop(ctx context.Context, c loadConfig, ids []string, run string, rec *recorder) {
	client := &http.Client{Timeout: c.timeout, Transport: &http.Transport{
		MaxIdleConns: c.conns, MaxIdleConnsPerHost: c.conns, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()
	end := time.Now().Add(c.duration)
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range c.conns {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				body, header := orderRequest(run, seq.Add(1), ids)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/orders", bytes.NewReader(body))
				req.Header = header
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					rec.record(0, 0, "", err.Error())
					time.Sleep(10 * time.Millisecond) // no busy loop on a server that refuses connections
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				rec.record(resp.StatusCode, time.Since(t0), resp.Header.Get("X-Event-Position"), "")
			}
		})
	}
	wg.Wait()
}

// openLoop has vegeta send c.rate orders a second for c.duration.
func openLoop(ctx context.Context, c loadConfig, ids []string, run string, rec *recorder) {
	var seq atomic.Int64
	targeter := func(t *vegeta.Target) error {
		body, header := orderRequest(run, seq.Add(1), ids)
		t.Method, t.URL, t.Body, t.Header = http.MethodPost, c.base+"/orders", body, header
		return nil
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(c.timeout))
	defer context.AfterFunc(ctx, func() { attacker.Stop() })()
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: c.rate, Per: time.Second}, c.duration, "orders") {
		rec.record(int(res.Code), res.Latency, res.Headers.Get("X-Event-Position"), res.Error)
	}
}

// sampler samples the backlog every interval from the load's start until
// stopped.
type sampler struct {
	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}
	// Written by the sampling goroutine, read after done is closed.
	backlog backlog
	last    sample
}

// sample is what the sampler last knew of the terminal counters.
type sample struct {
	delta   terminal // since the scrape before the load
	failed  int      // scrapes that failed
	lastErr error
}

func (s sample) lastError() string {
	if s.lastErr == nil {
		return ""
	}
	return "; last: " + s.lastErr.Error()
}

func startSampler(ctx context.Context, interval time.Duration, scrape func(context.Context) (terminal, error),
	before terminal, placed func() int64, start time.Time) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	take := func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		now, err := scrape(ctx)
		if err != nil {
			s.last.failed++
			s.last.lastErr = err
			return
		}
		s.last.delta = now.sub(before)
		// placed after the scrape: an order counted as ended was placed.
		s.backlog.observe(time.Since(start), placed(), int64(math.Round(s.last.delta.total())))
	}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				take()
			case <-s.stopc:
				take() // the final counts
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// stop takes a last sample, stops the sampler and returns what it saw.
func (s *sampler) stop() (backlog, sample) {
	s.stopOnce.Do(func() { close(s.stopc) })
	<-s.done
	return s.backlog, s.last
}

// scrapeTerminal sums the terminal counters of every URL's exposition.
func scrapeTerminal(ctx context.Context, client *http.Client, urls []string) (terminal, error) {
	var sum terminal
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return terminal{}, err
		}
		// The text format, which parseTerminal reads (not protobuf, not OpenMetrics).
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		resp, err := client.Do(req)
		if err != nil {
			return terminal{}, err
		}
		t, err := parseTerminal(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return terminal{}, fmt.Errorf("%s: %s", redacted(u), resp.Status)
		}
		if err != nil {
			return terminal{}, fmt.Errorf("%s: %w", redacted(u), err)
		}
		sum = sum.add(t)
	}
	return sum, nil
}

// waitSettled polls until no order is created, reserved or payment_pending
// in the read model, and returns when it saw none; an error after deadline.
func waitSettled(ctx context.Context, client *http.Client, c loadConfig, minPos string, deadline time.Time) (time.Time, error) {
	for {
		open, err := anyOpen(ctx, client, c.base, c.admin, minPos)
		now := time.Now()
		switch {
		case err != nil:
			return now, err
		case !open:
			return now, nil
		case now.After(deadline):
			return now, fmt.Errorf("orders still open after -settle %s", c.settle)
		}
		select {
		case <-ctx.Done():
			return now, ctx.Err()
		case <-time.After(c.settlePollInterval):
		}
	}
}

// openStatuses are the statuses of an order whose saga has not ended, in
// the order an order goes through them: anyOpen looks at them in that order,
// so an order moving on while it looks is still seen in a later one.
var openStatuses = []string{statusCreated, statusReserved, statusPaymentPending}

// anyOpen tells whether any order is left in an open status: one page of
// one order per status, at or after position minPos of the orders
// projection if given (a 503, the read model not there yet, counts as
// open).
func anyOpen(ctx context.Context, client *http.Client, base, admin, minPos string) (bool, error) {
	for _, status := range openStatuses {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/orders?limit=1&status="+status, nil)
		req.Header.Set("X-Admin-Secret", admin)
		if minPos != "" {
			req.Header.Set("X-Min-Position", minPos)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable:
			return true, nil
		case resp.StatusCode != http.StatusOK:
			return false, fmt.Errorf("GET /admin/orders: %s", resp.Status)
		case err != nil:
			return false, fmt.Errorf("GET /admin/orders: %w", err)
		case len(page.Items) > 0:
			return true, nil
		}
	}
	return false, nil
}

// productWorkers bounds the concurrent product creations.
const productWorkers = 16

func createProducts(ctx context.Context, client *http.Client, base, admin string, n int) ([]string, error) {
	ids := make([]string, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(productWorkers)
	for i := range n {
		g.Go(func() error {
			body := fmt.Sprintf(`{"name":"Load %d","price":"10.00","stock":100000000}`, i)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/admin/products", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Admin-Secret", admin)
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("create product: %w", err)
			}
			defer resp.Body.Close()
			var p struct{ ID string }
			if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil || p.ID == "" {
				return fmt.Errorf("create product: %s", resp.Status)
			}
			ids[i] = p.ID
			return nil
		})
	}
	return ids, g.Wait()
}

// count counts orders in a status through the admin list (pages of 100).
func count(ctx context.Context, client *http.Client, base, admin, status string) (int, error) {
	n, cursor := 0, ""
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/orders?status="+status+"&limit=100"+cursorParam(cursor), nil)
		req.Header.Set("X-Admin-Secret", admin)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET /admin/orders: %s", resp.Status)
		}
		if err != nil {
			return 0, err
		}
		n += len(page.Items)
		if page.NextCursor == nil {
			return n, nil
		}
		cursor = *page.NextCursor
	}
}

// redactedAll is urls fit to print, passwords masked, comma-separated.
func redactedAll(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redacted(u)
	}
	return strings.Join(out, ", ")
}
