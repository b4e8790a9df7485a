package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

const adminSecret = "e2e-admin-secret"

// server is ordersd running in process on a fresh database.
type server struct {
	url      string
	contract *contract
	// stop stops the server and checks that it shut down cleanly; the
	// test's end does so too.
	stop func()
}

// testDatabase is a fresh database for t, with a small pool per server so
// that tests running side by side stay within the server's connections.
func testDatabase(t *testing.T) string {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "6")
	u.RawQuery = q.Encode()
	return u.String()
}

// onEachEventStore runs test as a parallel subtest per event store:
// "postgres", the event store in DATABASE_URL, and "kurrentdb", a
// KurrentDB protocol double of the subtest's own. es is the EVENTSTORE_URL
// entry to give startServer.
func onEachEventStore(t *testing.T, test func(t *testing.T, es string)) {
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, "EVENTSTORE_URL=")
	})
	t.Run("kurrentdb", func(t *testing.T) {
		t.Parallel()
		test(t, "EVENTSTORE_URL="+kurrentdbtest.Start(t, kurrentdbtest.Options{}).URL())
	})
}

// startServer runs ordersd with the given extra environment ("{addr}" in a
// value stands for the server's address) until the test ends, and checks
// that it then shuts down cleanly.
func startServer(t *testing.T, environ ...string) *server {
	t.Helper()
	return startTracedServer(t, tracing.Tracing{}, environ...)
}

// startTracedServer is startServer with tracing tel.
func startTracedServer(t *testing.T, tel tracing.Tracing, environ ...string) *server {
	t.Helper()
	return startLoggedServer(t, tel, nil, environ...)
}

// startLoggedServer is startTracedServer writing ordersd's JSON log lines
// (at LOG_LEVEL) to logs; nil: as startServer, a text log only with -v.
func startLoggedServer(t *testing.T, tel tracing.Tracing, logs io.Writer, environ ...string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range environ {
		environ[i] = strings.ReplaceAll(e, "{addr}", ln.Addr().String())
	}
	env := append([]string{
		"DATABASE_URL=" + testDatabase(t), "REDIS_URL=", "ADMIN_SECRET=" + adminSecret,
		"RATE_LIMIT_ORDERS_PER_MINUTE=1000", "LOG_LEVEL=WARN",
	}, environ...)
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	if logs != nil {
		logger = logging.New(logs, cfg.LogLevel)
	}
	go func() { done <- run(ctx, cfg, logger, ln, tel) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ordersd stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("ordersd did not stop")
			}
		})
	}
	t.Cleanup(stop)
	s := &server{url: "http://" + ln.Addr().String(), contract: newContract(t), stop: stop}
	eventually.True(t, "ordersd to serve", func() bool {
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends a request and checks the answer against the OpenAPI document.
// It may be called from any goroutine.
func (s *server) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	return (&apitest.Client{URL: s.url, Check: s.contract.check}).Do(t, method, path, body, headers...)
}

// response is an answer as tests look at it.
type response = apitest.Response

func (s *server) call(t *testing.T, method, path, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	r := s.do(t, method, path, body, headers...)
	return r.Status, r.Body
}

// sagaRun places orders over HTTP (two items each, some products shared)
// and waits until the read model shows every one in a terminal status.
func sagaRun(t *testing.T, s *server, orders int, wantStatus string) (products map[string]int64, sold map[string]int64) {
	t.Helper()
	products, sold = map[string]int64{}, map[string]int64{}
	var ids []string
	for i := range 4 {
		status, p := s.call(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"P%d","price":"10.50","stock":100}`, i), "X-Admin-Secret", adminSecret)
		if status != http.StatusCreated {
			t.Fatalf("create product: %d %v", status, p)
		}
		ids = append(ids, p["id"].(string))
		products[p["id"].(string)] = 100
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		placed []string
	)
	for i := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := ids[i%4], ids[(i+1)%4]
			body := fmt.Sprintf(`{"user_email":"e2e-%d@example.com","items":[{"product_id":%q,"quantity":%d},{"product_id":%q,"quantity":1}]}`, i, a, 1+i%3, b)
			status, o := s.call(t, "POST", "/orders", body, "Idempotency-Key", fmt.Sprintf("key-%d", i))
			if status != http.StatusCreated {
				t.Errorf("place: %d %v", status, o)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			placed = append(placed, o["id"].(string))
			if wantStatus == "paid" {
				sold[a] += int64(1 + i%3)
				sold[b]++
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, id := range placed {
		eventually.True(t, "order "+id+" to be "+wantStatus, func() bool {
			status, o := s.call(t, "GET", "/orders/"+id, "")
			if status == http.StatusNotFound {
				return false // not projected yet
			}
			switch o["status"] {
			case "created", "reserved", "payment_pending", wantStatus: // on the way
			default:
				t.Fatalf("order %s ended %v, want %s: %v", id, o["status"], wantStatus, o)
			}
			return status == http.StatusOK && o["status"] == wantStatus
		})
	}
	return products, sold
}

// checkStock waits until the read model shows every product with its
// initial stock less what was sold, and nothing reserved.
func checkStock(t *testing.T, s *server, products, sold map[string]int64) {
	t.Helper()
	for id, initial := range products {
		want := initial - sold[id]
		eventually.True(t, fmt.Sprintf("product %s to show stock %d and nothing reserved", id, want), func() bool {
			status, p := s.call(t, "GET", "/products/"+id, "")
			return status == http.StatusOK && p["stock"] == float64(want) && p["reserved"] == 0.0
		})
	}
}

func metric(t *testing.T, s *server, name string) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// The embedded provider always succeeds, sometimes delivering twice and
// out of order: every order ends paid and its stock is sold.
func TestSagaEmbeddedAllPaid(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, func(t *testing.T, es string) {
		s := startServer(t, es, "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=20ms", "FAKE_PAYMENT_DUPLICATE_RATE=0.5", "FAKE_PAYMENT_JITTER=100ms")
		products, sold := sagaRun(t, s, 24, "paid")
		checkStock(t, s, products, sold)
		if got := metric(t, s, "orders_paid_total"); got != "24" {
			t.Errorf("orders_paid_total %q, want 24", got)
		}
	})
}

// The embedded provider always fails: every order ends canceled with the
// reason, and all stock is back.
func TestSagaEmbeddedAllCanceled(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, func(t *testing.T, es string) {
		s := startServer(t, es, "FAKE_PAYMENT_SUCCESS_RATE=0", "FAKE_PAYMENT_DELAY=20ms", "FAKE_PAYMENT_DUPLICATE_RATE=0.5")
		products, sold := sagaRun(t, s, 24, "canceled")
		checkStock(t, s, products, sold)
		if got := metric(t, s, `orders_canceled_total{reason="payment_failed"}`); got != "24" {
			t.Errorf("orders_canceled_total{payment_failed} %q, want 24", got)
		}
	})
}

// The provider as a separate service over HTTP, failing a third of the
// payment requests with 5xx: retries get every order paid.
func TestSagaSeparateProvider(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	signer, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	provider := fakepay.New(fakepay.Options{SuccessRate: 1, Delay: 20 * time.Millisecond, Signer: signer, FailRate: 0.3, Seed: 42})
	t.Cleanup(provider.Close)
	api := httptest.NewServer(provider.Handler())
	t.Cleanup(api.Close)
	s := startServer(t, "FAKE_PAYMENT_ENABLED=false", "PAYMENT_PROVIDER_URL="+api.URL, "PAYMENT_WEBHOOK_SECRET="+secret,
		"PAYMENT_CALLBACK_URL=http://{addr}/webhooks/payment",
		"PAYMENT_RETRY_BACKOFF=20ms,20ms,20ms,20ms,20ms,20ms,20ms,20ms,20ms,20ms")
	products, sold := sagaRun(t, s, 16, "paid")
	checkStock(t, s, products, sold)
	if n := len(provider.Payments()); n != 16 {
		t.Errorf("%d payments at the provider for 16 orders", n)
	}
	if got := metric(t, s, `worker_errors_total{step="initiate_payment"}`); got == "" || got == "0" {
		t.Errorf("worker_errors_total{initiate_payment} %q: the injected failures were not counted", got)
	}
	// A webhook with a bad signature is refused.
	status, body := s.call(t, "POST", "/webhooks/payment", `{"payment_id":"x","order_id":"x","status":"success"}`,
		payment.HeaderID, "msg_x", payment.HeaderTimestamp, fmt.Sprint(time.Now().Unix()), payment.HeaderSignature, "v1,AAAA")
	if status != http.StatusUnauthorized {
		t.Errorf("forged webhook: %d %v", status, body)
	}
}

// The roles split over two processes: the APIs in one, the projections,
// the process manager and the fake provider in the other. Orders placed on
// the first are paid through the second and read back from the first.
func TestRolesInSeparateProcesses(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, func(t *testing.T, es string) {
		db := testDatabase(t)
		api := startServer(t, es, "DATABASE_URL="+db, "ORDERS_ROLES=command,query")
		startServer(t, es, "DATABASE_URL="+db, "ORDERS_ROLES=projector,process,fakepay", "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms",
			"PAYMENT_CALLBACK_URL="+api.url+"/webhooks/payment")
		products, sold := sagaRun(t, api, 6, "paid")
		checkStock(t, api, products, sold)
		if status, _ := api.call(t, "GET", "/fakepay/healthz", ""); status != http.StatusNotFound {
			t.Errorf("the API process serves the fake provider: %d", status)
		}
	})
}

// /readyz reports each check; /healthz only that the process runs.
func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, func(t *testing.T, es string) {
		s := startServer(t, es)
		var (
			status int
			body   map[string]any
		)
		eventually.True(t, "ordersd to be ready", func() bool {
			status, body = s.call(t, "GET", "/readyz", "")
			return status == http.StatusOK
		})
		checks, _ := body["checks"].(map[string]any)
		if status != http.StatusOK || body["status"] != "ready" || checks["database"] != "ok" || checks["eventstore"] != "ok" || checks["projections"] != "ok" {
			t.Fatalf("readyz: %d %v", status, body)
		}
		if status, body := s.call(t, "GET", "/healthz", ""); status != http.StatusOK || body["status"] != "ok" {
			t.Fatalf("healthz: %d %v", status, body)
		}
		if got := metric(t, s, `http_request_duration_seconds_count{method="GET",route="/readyz",status="200"}`); got == "" {
			t.Error("no request duration recorded for /readyz")
		}
	})
}

// Bad configuration and an unreachable database stop ordersd with a clear
// message and a non-zero exit code, not a stack trace.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args, env []string
		code      int
		want      string
	}{
		{nil, []string{"ADMIN_SECRET="}, 2, "ADMIN_SECRET is set but empty"},
		{[]string{"--roles", "command,billing"}, nil, 2, `unknown role "billing"`},
		{nil, []string{"DATABASE_URL=mysql://db/orders"}, 2, "DATABASE_URL"},
		{nil, []string{"OTEL_TRACES_EXPORTER=zipkin"}, 2, "OTEL_TRACES_EXPORTER"},
		{nil, []string{"OTEL_TRACES_SAMPLER=bogus"}, 2, `OTEL_TRACES_SAMPLER: "bogus" is not a sampler`},
		{nil, []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=abc"}, 2, `OTEL_TRACES_SAMPLER_ARG: "abc"`},
		{nil, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318"}, 2, "OTEL_EXPORTER_OTLP_ENDPOINT: localhost:4318 is not an http:// or https:// URL"},
		{nil, []string{"HTTP_ADDR=127.0.0.1:0", "DATABASE_URL=postgres://postgres@127.0.0.1:1/orders?sslmode=disable&connect_timeout=2"}, 1, "127.0.0.1:1"},
	}
	for _, c := range cases {
		var out, errOut strings.Builder
		code := start(context.Background(), c.args, c.env, &out, &errOut)
		all := out.String() + errOut.String()
		if code != c.code || !strings.Contains(all, c.want) || strings.Contains(all, "goroutine ") {
			t.Errorf("%v %v: exit %d, output:\n%s\nwant exit %d mentioning %q", c.args, c.env, code, all, c.code, c.want)
		}
	}
}

// A signal (ctx canceled) stops ordersd cleanly: exit code 0, its leader
// locks released for the next instance.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	db := testDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out strings.Builder
	var mu sync.Mutex
	code := make(chan int, 1)
	go func() {
		code <- start(ctx, []string{"--roles", "projector,process,fakepay"}, []string{"DATABASE_URL=" + db, "HTTP_ADDR=127.0.0.1:0",
			"REDIS_URL=", "PAYMENT_CALLBACK_URL=http://127.0.0.1:1/webhooks/payment"}, &lockedWriter{w: &out, mu: &mu}, io.Discard)
	}()
	eventually.True(t, "the process manager worker to run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(out.String(), "process manager worker running")
	})
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("exit code %d:\n%s", c, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ordersd did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(out.String(), `"msg":"ordersd stopped"`) {
		t.Fatalf("no clean stop logged:\n%s", out.String())
	}
	// The leader locks are free for the next instance. (A lock whose
	// connection was closed mid-query, rather than unlocked, goes when its
	// backend exits, a moment later.)
	pool, err := pg.Connect(context.Background(), db, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	eventually.True(t, "the leader locks to be released", func() bool {
		var held int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held)
		return err == nil && held == 0
	})
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// /readyz is not ready while the read models it serves have never been
// built, and tells why in a few words; a Redis outage only degrades a
// fail-open limiter, and fails a fail-closed one.
func TestNotReady(t *testing.T) {
	t.Parallel()
	queryOnly := startServer(t, "ORDERS_ROLES=query", "READY_MAX_PROJECTION_LAG=1s")
	eventually.True(t, "/readyz to report the missing projector", func() bool {
		r := queryOnly.do(t, "GET", "/readyz", "")
		checks, _ := r.Body["checks"].(map[string]any)
		msg, _ := checks["projections"].(string)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(msg, "has not started")
	})

	open := startServer(t, "ORDERS_ROLES=command", "REDIS_URL=redis://127.0.0.1:1/0")
	r := open.do(t, "GET", "/readyz", "")
	checks, _ := r.Body["checks"].(map[string]any)
	if msg, _ := checks["redis"].(string); r.Status != http.StatusOK || !strings.Contains(msg, "degraded") || strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("fail-open limiter without Redis: %d %s", r.Status, r.Raw)
	}
	closed := startServer(t, "ORDERS_ROLES=command", "REDIS_URL=redis://127.0.0.1:1/0", "RATE_LIMIT_FAIL_CLOSED=true")
	if r := closed.do(t, "GET", "/readyz", ""); r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fail-closed limiter without Redis: %d %s", r.Status, r.Raw)
	}
}

// The caller's X-Request-ID is the correlation id of everything its order
// causes, the payment half included.
func TestRequestIDBecomesTheCorrelationID(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, testRequestIDBecomesTheCorrelationID)
}

func testRequestIDBecomesTheCorrelationID(t *testing.T, es string) {
	s := startServer(t, es, "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms")
	p := s.do(t, "POST", "/admin/products", `{"name":"Laptop","price":"10.00","stock":5}`, "X-Admin-Secret", adminSecret).Body["id"].(string)
	placed := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"corr@example.com","items":[{"product_id":%q,"quantity":1}]}`, p),
		"X-Request-ID", "corr-4711")
	if placed.Header.Get("X-Request-ID") != "corr-4711" {
		t.Fatalf("request id not echoed: %v", placed.Header)
	}
	id := placed.Body["id"].(string)
	var events []any
	eventually.True(t, "the order to be paid and its stock sold", func() bool {
		h := s.do(t, "GET", "/admin/orders/"+id+"/history", "", "X-Admin-Secret", adminSecret)
		events, _ = h.Body["events"].([]any)
		types := fmt.Sprint(events)
		return strings.Contains(types, "order.paid.v1") && strings.Contains(types, "product.reservation_committed.v1")
	})
	for _, e := range events {
		ev := e.(map[string]any)
		if corr := ev["metadata"].(map[string]any)["correlation_id"]; corr != "corr-4711" {
			t.Errorf("%v carries correlation %v", ev["type"], corr)
		}
	}
}

// A request in flight when the signal comes gets its answer: the server
// stops accepting and drains instead of dropping connections.
func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	cfg, err := config.Load([]string{"DATABASE_URL=" + testDatabase(t), "REDIS_URL=", "ORDERS_ROLES=query,command"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler), ln, tracing.Tracing{}) }()
	url := "http://" + ln.Addr().String()
	eventually.True(t, "ordersd to serve", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	// A read that waits (up to 2 s) for a position the read model never
	// reaches: in flight while the server stops.
	accepted := ln.accepted.Load()
	answer := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", url+"/orders/"+uuid.NewString(), nil)
		req.Header.Set("X-Min-Position", "999999999/0")
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // its own connection
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("the request in flight was dropped: %v", err)
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	eventually.True(t, "the server to read the request", func() bool { return ln.accepted.Load() > accepted })
	cancel()
	if code := <-answer; code != http.StatusServiceUnavailable {
		t.Fatalf("the request in flight got %d, want its 503 (X-Min-Position not reached)", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// countingListener counts the connections the server has begun to read,
// by then tracked by the server (a connection merely accepted may be
// closed by a shutdown that starts before the server tracks it).
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readNotifier{Conn: c, l: l}, nil
}

type readNotifier struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *readNotifier) Read(p []byte) (int, error) {
	c.once.Do(func() { c.l.accepted.Add(1) })
	return c.Conn.Read(p)
}
