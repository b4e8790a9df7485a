package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	pg "github.com/orders-reference/orders/internal/postgres"
)

// task is a claimed step.
type task struct {
	ID            uuid.UUID
	Kind          string
	OrderID       uuid.UUID
	ProductID     uuid.UUID // uuid.Nil for a step about the whole order
	Attempts      int
	CorrelationID string
	CausationID   string
	lease         uuid.UUID
}

// leaseFor bounds how long a claimed step stays away from other workers.
// A worker that loses its leadership cancels its steps at its next claim
// (within Options.Poll), and a new leader clears the old one's leases when
// it takes over, so this only matters for a worker that hangs.
const leaseFor = 5 * time.Minute

// work runs due steps while this instance leads the worker role.
func (m *Manager) work(ctx context.Context) error {
	for {
		err := pg.Lead(ctx, m.pool, pg.LockKey("orders.process_manager.worker"), m.opts.LeaderPoll, m.lead)
		if ctx.Err() != nil {
			return nil
		}
		m.log.WarnContext(ctx, "process manager worker lost its footing; retrying", "error", err)
		t := time.NewTimer(m.opts.LeaderPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// lead is the worker loop of the leader: claim due steps on the leader's
// connection (so a lost leadership stops the claims), run them
// concurrently, finish each on the pool.
func (m *Manager) lead(ctx context.Context, conn *pgx.Conn) error {
	// The previous leader is gone: its claims are void.
	if _, err := conn.Exec(ctx, `UPDATE process_tasks SET lease_id = NULL, lease_until = NULL WHERE lease_id IS NOT NULL`); err != nil {
		return fmt.Errorf("clear leases: %w", err)
	}
	m.log.InfoContext(ctx, "process manager worker leading")
	// Steps run under the leadership: when it is lost (the claim on the
	// leader's connection fails) they are canceled, and the next leader
	// runs them again.
	stepCtx, cancelSteps := context.WithCancel(ctx)
	// Two lanes, each with Concurrency slots: steps that call the payment
	// provider, and steps that only touch the event store. A provider that
	// hangs (each call waits for its timeouts) fills its own lane only, so
	// placements are still completed and stock still settled meanwhile.
	lanes := []*lane{{kinds: providerKinds}, {kinds: storeKinds}}
	done := make(chan *lane, 2*m.opts.Concurrency)
	defer func() {
		cancelSteps()
		for _, l := range lanes {
			for ; l.inFlight > 0; l.inFlight-- {
				<-done
			}
		}
	}()
	for {
		more := false
		for _, l := range lanes {
			free := m.opts.Concurrency - l.inFlight
			if free <= 0 {
				continue
			}
			claimed, err := m.claim(ctx, conn, free, l.kinds)
			if err != nil {
				return err
			}
			for _, t := range claimed {
				l.inFlight++
				go func() {
					defer func() { done <- l }()
					m.run(stepCtx, t)
				}()
			}
			more = more || len(claimed) == free // there may be more due already
		}
		if more {
			continue
		}
		timer := time.NewTimer(m.opts.Poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-m.wake:
		case l := <-done:
			l.inFlight--
		case <-timer.C:
		}
		timer.Stop()
		for drained := false; !drained; { // every finished step frees its slot
			select {
			case l := <-done:
				l.inFlight--
			default:
				drained = true
			}
		}
	}
}

// lane is a group of step kinds that share their slots.
type lane struct {
	kinds    []string
	inFlight int
}

// The kinds that call the payment provider, and the others.
var (
	providerKinds = []string{KindInitiatePayment, KindPaymentTimeout, KindRefund}
	storeKinds    = []string{KindCompletePlacement, KindReleaseStock, KindReleaseReservation, KindCommitStock}
)

// claim leases up to n due steps of the given kinds.
func (m *Manager) claim(ctx context.Context, conn *pgx.Conn, n int, kinds []string) ([]task, error) {
	lease, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `
		UPDATE process_tasks SET lease_id = $3, lease_until = now() + $4::interval
		 WHERE id IN (SELECT id FROM process_tasks
		               WHERE state = 'pending' AND due_at <= $1 AND (lease_until IS NULL OR lease_until < now())
		                 AND kind = ANY($5)
		               ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING id, kind, order_id, product_id, attempts, correlation_id, causation_id`,
		m.opts.Now(), n, lease, leaseFor.String(), kinds)
	if err != nil {
		return nil, fmt.Errorf("claim steps: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (task, error) {
		t := task{lease: lease}
		err := row.Scan(&t.ID, &t.Kind, &t.OrderID, &t.ProductID, &t.Attempts, &t.CorrelationID, &t.CausationID)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim steps: %w", err)
	}
	return claimed, nil
}

// run runs one step and records its outcome: gone when done, otherwise
// due again after the next backoff delay, or parked after the last.
func (m *Manager) run(ctx context.Context, t task) {
	stepCtx, cancel := context.WithTimeout(ctx, m.opts.StepTimeout)
	err := m.execute(stepCtx, t)
	cancel()
	if ctx.Err() != nil {
		return // shutting down or deposed: the step runs again under the next leader
	}
	log := m.log.With("step", t.Kind, "order_id", t.OrderID, "correlation_id", t.CorrelationID, "attempt", t.Attempts+1)
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		// A step scheduled again while it ran (rerun) is due once more.
		if _, ferr := m.pool.Exec(finishCtx, `
			WITH done AS (DELETE FROM process_tasks WHERE id = $1 AND lease_id = $2 AND NOT rerun RETURNING id)
			UPDATE process_tasks SET rerun = false, attempts = 0, due_at = $3, lease_id = NULL, lease_until = NULL, updated_at = now()
			 WHERE id = $1 AND lease_id = $2 AND rerun`, t.ID, t.lease, m.opts.Now()); ferr != nil {
			log.WarnContext(ctx, "step done but not recorded; it will run again", "error", ferr)
		} else {
			log.InfoContext(ctx, "step done")
		}
		m.report(t.Kind, OutcomeDone)
		return
	}

	if m.opts.OnError != nil {
		m.opts.OnError(t.Kind)
	}
	attempts := t.Attempts + 1
	outcome, state, due := OutcomeRetry, "pending", m.opts.Now()
	switch {
	case errors.Is(err, errPermanent), attempts > len(m.opts.Backoff) && parks(t.Kind):
		outcome, state = OutcomeParked, "parked"
	default:
		due = due.Add(m.opts.Backoff[min(attempts, len(m.opts.Backoff))-1])
	}
	msg := truncate(err.Error(), 2000)
	if _, ferr := m.pool.Exec(finishCtx, `
		UPDATE process_tasks SET state = $3, attempts = $4, due_at = $5, last_error = $6,
		       lease_id = NULL, lease_until = NULL, rerun = false, updated_at = now()
		 WHERE id = $1 AND lease_id = $2`, t.ID, t.lease, state, attempts, due, msg); ferr != nil {
		log.WarnContext(ctx, "step failed and its failure not recorded; it will run again", "error", err, "record_error", ferr)
		return
	}
	if outcome == OutcomeParked {
		log.ErrorContext(ctx, "step parked in the dead-letter list", "error", err)
	} else {
		log.WarnContext(ctx, "step failed; retrying", "error", err, "retry_at", due)
	}
	m.report(t.Kind, outcome)
}

// parks reports whether a step of kind goes to the dead-letter list once
// its retries are used up: the calls to the provider do. The others only
// touch the event store, and retrying them is the only cure for its
// absence, so they retry for as long as they fail.
func parks(kind string) bool {
	return kind == KindInitiatePayment || kind == KindRefund
}

// truncate cuts s to at most n bytes of valid UTF-8 (PostgreSQL refuses
// anything else).
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (m *Manager) report(kind, outcome string) {
	if m.opts.OnStep != nil {
		m.opts.OnStep(kind, outcome)
	}
}
