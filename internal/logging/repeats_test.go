package logging_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/logging/logtest"
)

// A failure that goes on is one WARN line (its attempts after the first at
// DEBUG, within RepeatInterval), and its end one INFO line; a loop that
// never failed logs nothing.
func TestRepeatsLogsAnOutageOnce(t *testing.T) {
	var sink logtest.Sink
	log := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	var r logging.Repeats
	r.Succeeded(ctx, log, "reading again")
	for range 5 {
		r.Failed(ctx, log, "read failed", "error", "connection refused")
	}
	r.Succeeded(ctx, log, "reading again")
	r.Succeeded(ctx, log, "reading again")
	var levels []string
	for _, rec := range sink.Records(t) {
		levels = append(levels, rec["level"].(string)+" "+rec["msg"].(string))
	}
	want := []string{"WARN read failed", "DEBUG read failed", "DEBUG read failed", "DEBUG read failed", "DEBUG read failed", "INFO reading again"}
	if len(levels) != len(want) {
		t.Fatalf("lines %q, want %q", levels, want)
	}
	for i := range want {
		if levels[i] != want[i] {
			t.Fatalf("lines %q, want %q", levels, want)
		}
	}
	recs := sink.Records(t)
	if recs[4]["attempt"] != float64(5) || recs[5]["failed_attempts"] != float64(5) {
		t.Errorf("attempts not counted: %v, %v", recs[4], recs[5])
	}
	if r.Failures() != 0 {
		t.Errorf("%d failures after a success", r.Failures())
	}
}
