package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
)

// Read-your-writes. A command's answer carries X-Event-Position: where its
// events stand in the global order (covering, for a cancel, the stock it
// gave back). A query that sends it back as X-Min-Position waits, up to
// MaxWait, until the read model it reads has passed that position, and is
// 503 with Retry-After if it has not.

// setPosition tells the client where its write stands in the global order.
func setPosition(w http.ResponseWriter, pos eventstore.Position) {
	if pos != eventstore.Start {
		w.Header().Set("X-Event-Position", pos.String())
	}
}

// waiting honours X-Min-Position for a read of projection.
func (a *API) waiting(projection string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, _, p := httpx.Header(r, "X-Min-Position", 0)
		if p != nil {
			httpx.WriteProblem(w, *p)
			return
		}
		if raw == "" || a.cfg.Waiter == nil {
			next(w, r)
			return
		}
		pos, err := eventstore.ParsePosition(raw)
		if err != nil {
			a.writeError(w, r, badRequest{"X-Min-Position", "must be a position as returned in X-Event-Position (commit/prepare)"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.MaxWait)
		defer cancel()
		if err := a.cfg.Waiter.WaitFor(ctx, projection, pos); err != nil {
			if r.Context().Err() != nil {
				return // the client left
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = errNotCaughtUp
			}
			a.writeError(w, r, err)
			return
		}
		next(w, r)
	}
}
