package main

// The pure parts of "ordersload load": latency percentiles, the terminal
// counters read from a /metrics exposition, the backlog's tracking and the
// report's table row. No network, no clock: load.go feeds them.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// latencies summarises request latencies exactly (every duration kept,
// sorted; no histogram buckets, no digest).
type latencies struct {
	N                        int
	P50, P95, P99, Max, Mean time.Duration
}

// summarize sorts ds in place and summarises it.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latencies{
		N:    len(ds),
		P50:  percentile(ds, 50),
		P95:  percentile(ds, 95),
		P99:  percentile(ds, 99),
		Max:  ds[len(ds)-1],
		Mean: sum / time.Duration(len(ds)),
	}
}

// percentile is the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value that at least p % of the values
// are at or below. Zero for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// p·n first, then /100: 95·100/100 is exactly 95, 0.95·100 is not.
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// The counters whose sum is the orders that reached a terminal state.
const (
	metricPaid     = "orders_paid_total"
	metricCanceled = "orders_canceled_total"
)

// terminal is what one or more instances counted of orders ending.
type terminal struct {
	Paid, Canceled float64
}

func (t terminal) total() float64 { return t.Paid + t.Canceled }

func (t terminal) add(u terminal) terminal {
	return terminal{Paid: t.Paid + u.Paid, Canceled: t.Canceled + u.Canceled}
}

func (t terminal) sub(u terminal) terminal {
	return terminal{Paid: t.Paid - u.Paid, Canceled: t.Canceled - u.Canceled}
}

// parseTerminal reads a Prometheus text exposition (format 0.0.4) and sums
// orders_paid_total and orders_canceled_total over all their label values.
// An exposition without orders_paid_total is not an ordersd's (ordersd
// exposes it from its start; orders_canceled_total appears with its first
// reason, so its absence counts as zero).
func parseTerminal(in io.Reader) (terminal, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(in)
	if err != nil {
		return terminal{}, fmt.Errorf("parse metrics: %w", err)
	}
	if families[metricPaid] == nil {
		return terminal{}, errors.New("no " + metricPaid + " in the metrics (not an ordersd?)")
	}
	sum := func(name string) float64 {
		var s float64
		mf := families[name]
		if mf == nil {
			return 0
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				s += m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				s += m.GetUntyped().GetValue()
			}
		}
		return s
	}
	return terminal{Paid: sum(metricPaid), Canceled: sum(metricCanceled)}, nil
}

// backlog tracks the orders placed and not yet ended, sample by sample.
type backlog struct {
	Samples int
	Max     int64         // the largest backlog seen
	MaxAt   time.Duration // when (since the load's start) it was first seen
	Last    int64         // the latest sample's
}

// observe records a sample taken at (since the load's start): placed orders
// (201s so far) less those that reached a terminal state since the start.
// It returns the sample's backlog. A backlog below zero (orders ending that
// this run did not place, or counted as placed late) is recorded as it is.
func (b *backlog) observe(at time.Duration, placed, ended int64) int64 {
	n := placed - ended
	if b.Samples == 0 || n > b.Max {
		b.Max, b.MaxAt = n, at
	}
	b.Samples++
	b.Last = n
	return n
}

// report is one run's result, as printed in the table.
type report struct {
	Mode          string // "closed" or "open"
	Load          string // "64 conns" or "300/s"
	Duration      time.Duration
	Placed        int64
	PlacementRate float64 // orders placed per second of the load
	EndToEndRate  float64 // orders placed per second from the start until every saga ended
	MaxBacklog    int64
	Latency       latencies
	Paid          int64
	Canceled      int64
	Unsampled     bool // no scrape of the counters succeeded: backlog, paid and canceled unknown
}

// ratio is the end-to-end rate over the placement rate: 1 when the sagas
// keep up with intake.
func (r report) ratio() float64 {
	if r.PlacementRate == 0 {
		return 0
	}
	return r.EndToEndRate / r.PlacementRate
}

const tableHeader = "| mode | conns/rate | duration | placed | placement/s | end-to-end/s | ratio | max backlog | POST p50 | p95 | p99 | paid | canceled |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

// row is r as a markdown table row (under tableHeader), numbers written the
// way docs/benchmarks.md writes them.
func (r report) row() string {
	cells := []string{
		r.Mode, r.Load, r.Duration.String(), thousands(r.Placed),
		thousands(int64(math.Round(r.PlacementRate))), thousands(int64(math.Round(r.EndToEndRate))),
		strconv.FormatFloat(r.ratio(), 'f', 2, 64), thousands(r.MaxBacklog),
		ms(r.Latency.P50), ms(r.Latency.P95), ms(r.Latency.P99),
		thousands(r.Paid), thousands(r.Canceled),
	}
	if r.Unsampled {
		cells[7], cells[11], cells[12] = "n/a", "n/a", "n/a"
	}
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// thousands writes n with a comma every three digits: 12,263.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ms writes a latency the way the benchmarks do: 0.61 ms, 8.4 ms, 41 ms,
// 124 ms, 1.12 s.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 0, 64) + " ms"
	case f >= 1:
		return strconv.FormatFloat(f, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(f, 'f', 2, 64) + " ms"
	}
}
