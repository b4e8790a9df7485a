package logging

import (
	"context"
	"log/slog"
	"time"
)

// RepeatInterval is how often Repeats logs a failure that goes on.
const RepeatInterval = time.Minute

// Repeats logs a failure that a loop retries (a database away, a node
// down) without a WARN line per attempt: the first failure at WARN, then
// one WARN line a RepeatInterval while it goes on (the attempts between at
// DEBUG), each with the attempts so far, and one INFO line when an
// attempt succeeds again. The zero value is
// ready; a Repeats belongs to one loop (it is not safe for concurrent use).
type Repeats struct {
	failures int
	logged   time.Time
	since    time.Time
}

// Failed records a failed attempt and logs it if it is the first or the
// last line is RepeatInterval old; attrs are the line's attributes (the
// attempt number and the time since the first failure are added).
func (r *Repeats) Failed(ctx context.Context, log *slog.Logger, msg string, attrs ...any) {
	now := time.Now()
	r.failures++
	level := slog.LevelWarn
	switch {
	case r.failures == 1:
		r.since = now
	case now.Sub(r.logged) < RepeatInterval:
		level = slog.LevelDebug
	}
	if level == slog.LevelWarn {
		r.logged = now
	}
	log.Log(ctx, level, msg, append(attrs, "attempt", r.failures, Millis("failing_for_ms", now.Sub(r.since)))...)
}

// Succeeded records a successful attempt and, after failures, logs msg at
// INFO with how many attempts failed and for how long.
func (r *Repeats) Succeeded(ctx context.Context, log *slog.Logger, msg string, attrs ...any) {
	if r.failures == 0 {
		return
	}
	log.InfoContext(ctx, msg, append(attrs, "failed_attempts", r.failures, Millis("failed_for_ms", time.Since(r.since)))...)
	r.failures = 0
}

// Reset forgets the failures without a line: the loop got going again in
// a way it cannot tell apart from a failure (a runner that led for a while
// before failing anew).
func (r *Repeats) Reset() { r.failures = 0 }

// Failures is the number of failed attempts since the last success.
func (r *Repeats) Failures() int { return r.failures }
