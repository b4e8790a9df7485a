package main

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSummarizePercentiles(t *testing.T) {
	// 1 ms … 100 ms, shuffled: the nearest rank of p is p ms.
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	got := summarize(ds)
	want := latencies{N: 100, P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond,
		Max: 100 * time.Millisecond, Mean: 50500 * time.Microsecond}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{ten, 50, 5},   // rank 5
		{ten, 51, 6},   // rank ceil(5.1) = 6
		{ten, 95, 10},  // rank ceil(9.5) = 10
		{ten, 99, 10},  // rank ceil(9.9) = 10
		{ten, 10, 1},   // rank 1
		{ten, 0.1, 1},  // rank ceil(0.01) = 1
		{ten, 100, 10}, // the maximum
		{[]time.Duration{7}, 99, 7},
		{nil, 50, 0},
	} {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.sorted, c.p, got, c.want)
		}
	}
	// A long tail shows in p99 and not in p50.
	ds := make([]time.Duration, 1000)
	for i := range ds {
		ds[i] = time.Millisecond
	}
	for i := 985; i < 1000; i++ {
		ds[i] = time.Second
	}
	if got := summarize(ds); got.P50 != time.Millisecond || got.P95 != time.Millisecond || got.P99 != time.Second {
		t.Errorf("1.5 %% at 1 s: p50 %v p95 %v p99 %v, want 1ms 1ms 1s", got.P50, got.P95, got.P99)
	}
	if got := summarize(nil); got != (latencies{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

// exposition is a trimmed /metrics of ordersd, in the text format.
const exposition = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP http_request_duration_seconds HTTP request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="POST",route="/orders",status="201",le="0.005"} 10
http_request_duration_seconds_bucket{method="POST",route="/orders",status="201",le="+Inf"} 12
http_request_duration_seconds_sum{method="POST",route="/orders",status="201"} 0.3
http_request_duration_seconds_count{method="POST",route="/orders",status="201"} 12
# HELP orders_canceled_total Orders this instance canceled, by reason.
# TYPE orders_canceled_total counter
orders_canceled_total{reason="payment_failed"} 1213
orders_canceled_total{reason="customer"} 4
orders_canceled_total{reason="payment_timeout"} 2
# HELP orders_paid_total Orders this instance recorded as paid.
# TYPE orders_paid_total counter
orders_paid_total 4781
# HELP orders_total Orders placed (new orders, not replays of an Idempotency-Key).
# TYPE orders_total counter
orders_total 6000
`

func TestParseTerminal(t *testing.T) {
	got, err := parseTerminal(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if want := (terminal{Paid: 4781, Canceled: 1219}); got != want {
		t.Errorf("parseTerminal = %+v, want %+v (every reason summed, orders_total not counted)", got, want)
	}
	if got.total() != 6000 {
		t.Errorf("total = %v, want 6000", got.total())
	}
}

func TestParseTerminalNoCancellationYet(t *testing.T) {
	// A CounterVec shows only once it has a label value.
	got, err := parseTerminal(strings.NewReader("# TYPE orders_paid_total counter\norders_paid_total 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (terminal{Paid: 3}); got != want {
		t.Errorf("parseTerminal = %+v, want %+v", got, want)
	}
}

func TestParseTerminalRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"not ordersd": "# TYPE go_goroutines gauge\ngo_goroutines 42\n",
		"empty":       "",
		"not metrics": "<html><body>404 page not found</body></html>\n",
		"bad value":   "orders_paid_total many\n",
	} {
		if got, err := parseTerminal(strings.NewReader(text)); err == nil {
			t.Errorf("%s: parseTerminal = %+v, want an error", name, got)
		}
	}
}

func TestTerminalDeltas(t *testing.T) {
	before := terminal{Paid: 10, Canceled: 3}
	a, b := terminal{Paid: 50, Canceled: 7}, terminal{Paid: 1, Canceled: 1}
	got := a.add(b).sub(before)
	if want := (terminal{Paid: 41, Canceled: 5}); got != want {
		t.Errorf("(a+b)-before = %+v, want %+v", got, want)
	}
}

func TestBacklog(t *testing.T) {
	var b backlog
	steps := []struct {
		at             time.Duration
		placed, ended  int64
		want           int64
		max            int64
		maxAt          time.Duration
		samplesSoFar   int
		lastAfterwards int64
	}{
		{500 * time.Millisecond, 100, 0, 100, 100, 500 * time.Millisecond, 1, 100},
		{time.Second, 300, 50, 250, 250, time.Second, 2, 250},
		{1500 * time.Millisecond, 400, 150, 250, 250, time.Second, 3, 250}, // a tie keeps the first time
		{2 * time.Second, 400, 390, 10, 250, time.Second, 4, 10},
		{2500 * time.Millisecond, 400, 400, 0, 250, time.Second, 5, 0},
	}
	for i, s := range steps {
		if got := b.observe(s.at, s.placed, s.ended); got != s.want {
			t.Errorf("sample %d: backlog %d, want %d", i, got, s.want)
		}
		if b.Max != s.max || b.MaxAt != s.maxAt || b.Samples != s.samplesSoFar || b.Last != s.lastAfterwards {
			t.Errorf("after sample %d: %+v, want max %d at %v, %d samples, last %d", i, b, s.max, s.maxAt, s.samplesSoFar, s.lastAfterwards)
		}
	}
}

func TestBacklogFirstSampleNegative(t *testing.T) {
	// Orders of another client ending: the first sample still sets the
	// maximum, and a later larger one replaces it.
	var b backlog
	b.observe(time.Second, 0, 5)
	if b.Max != -5 || b.MaxAt != time.Second {
		t.Fatalf("after one sample of -5: %+v", b)
	}
	b.observe(2*time.Second, 10, 5)
	if b.Max != 5 || b.MaxAt != 2*time.Second {
		t.Errorf("after a sample of 5: %+v, want max 5 at 2s", b)
	}
}

func TestReportRow(t *testing.T) {
	r := report{
		Mode: "closed", Load: "64 conns", Duration: 20 * time.Second,
		Placed: 12263, PlacementRate: 613.2, EndToEndRate: 389.4, MaxBacklog: 4321, Paid: 9810, Canceled: 2453,
		Latency: latencies{P50: 100 * time.Millisecond, P95: 8400 * time.Microsecond, P99: 1123 * time.Millisecond},
	}
	want := "| closed | 64 conns | 20s | 12,263 | 613 | 389 | 0.64 | 4,321 | 100 ms | 8.4 ms | 1.12 s | 9,810 | 2,453 |\n"
	if got := r.row(); got != want {
		t.Errorf("row:\n got %q\nwant %q", got, want)
	}
	header, sep, _ := strings.Cut(strings.TrimSuffix(tableHeader, "\n"), "\n")
	if n, m, k := strings.Count(header, "|"), strings.Count(sep, "|"), strings.Count(want, "|"); n != m || n != k {
		t.Errorf("header, separator and row have %d, %d and %d bars", n, m, k)
	}
	r.Unsampled = true
	want = "| closed | 64 conns | 20s | 12,263 | 613 | 389 | 0.64 | n/a | 100 ms | 8.4 ms | 1.12 s | n/a | n/a |\n"
	if got := r.row(); got != want {
		t.Errorf("row without samples:\n got %q\nwant %q", got, want)
	}
	if got := (report{}).ratio(); got != 0 {
		t.Errorf("ratio without placements = %v, want 0", got)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 12263: "12,263",
		100000: "100,000", 1234567: "1,234,567", -1234: "-1,234", -12: "-12"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMs(t *testing.T) {
	for d, want := range map[time.Duration]string{
		610 * time.Microsecond: "0.61 ms", 8400 * time.Microsecond: "8.4 ms", 41 * time.Millisecond: "41 ms",
		124 * time.Millisecond: "124 ms", 1123 * time.Millisecond: "1.12 s", 0: "0.00 ms",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
}
