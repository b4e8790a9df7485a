package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Memory is a Limiter that keeps its logs in this process: right for a
// single instance, or when Redis is not configured.
type Memory struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	logs map[string][]action
	ops  int
}

type action struct {
	at    time.Time
	token string
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter of limit actions per window; now
// is its clock (nil for time.Now).
func NewMemory(limit int, window time.Duration, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{limit: limit, window: window, now: now, logs: map[string][]action{}}
}

// Allow implements Limiter.
func (l *Memory) Allow(_ context.Context, key, token string) (Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	log := prune(l.logs[key], now.Add(-l.window))
	d := Decision{Limit: l.limit, Window: l.window}
	switch {
	case logged(log, token):
		d.Allowed, d.Remaining = true, max(l.limit-len(log), 0)
	case len(log) < l.limit:
		log = append(log, action{at: now, token: token})
		d.Allowed, d.Remaining = true, l.limit-len(log)
	default:
		d.RetryAfter = log[0].at.Add(l.window).Sub(now)
	}
	d.Reset = log[0].at.Add(l.window).Sub(now)
	l.logs[key] = log
	l.ops++
	if l.ops%1024 == 0 { // drop idle keys now and then
		for k, v := range l.logs {
			if len(prune(v, now.Add(-l.window))) == 0 {
				delete(l.logs, k)
			}
		}
	}
	return d, nil
}

func logged(log []action, token string) bool {
	for _, a := range log {
		if a.token == token {
			return true
		}
	}
	return false
}

// prune drops the actions at or before cutoff.
func prune(log []action, cutoff time.Time) []action {
	i := 0
	for i < len(log) && !log[i].at.After(cutoff) {
		i++
	}
	return log[i:]
}
