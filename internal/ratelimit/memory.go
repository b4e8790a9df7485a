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
	logs map[string][]time.Time
	ops  int
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter of limit actions per window; now
// is its clock (nil for time.Now).
func NewMemory(limit int, window time.Duration, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{limit: limit, window: window, now: now, logs: map[string][]time.Time{}}
}

// Allow implements Limiter.
func (l *Memory) Allow(_ context.Context, key string) (Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	log := prune(l.logs[key], now.Add(-l.window))
	d := Decision{Limit: l.limit, Window: l.window}
	if len(log) < l.limit {
		log = append(log, now)
		d.Allowed, d.Remaining = true, l.limit-len(log)
	} else {
		d.RetryAfter = log[0].Add(l.window).Sub(now)
	}
	d.Reset = log[0].Add(l.window).Sub(now)
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

// prune drops the actions at or before cutoff.
func prune(log []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(log) && !log[i].After(cutoff) {
		i++
	}
	return log[i:]
}
