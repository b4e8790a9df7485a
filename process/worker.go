package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/internal/batch"
	"github.com/orders-reference/orders/internal/logging"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/internal/storable"
	"github.com/orders-reference/orders/internal/tracing"
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
	// Traceparent and Tracestate are the trace context of the event that
	// scheduled the step; its runs continue that trace.
	Traceparent, Tracestate string
	lease                   uuid.UUID
}

// Competing consumers. Every process manager instance runs steps; none
// leads. An instance claims due steps under its own lease id (a new one
// each time it starts or fences itself) for leaseFor, and renews the
// lease of everything it holds every leaseFor/4. Claims are serialised
// across instances by a transaction-scoped advisory lock (one short
// statement each), and a claim takes, of each order, only the step whose
// event came first (lowest seq) among its due steps, and none while
// another step of that order is leased. So:
//
//   - at most one step of an order runs at a time, and of its due steps
//     the one whose event came first (a step waiting for a retry's delay
//     is not due, and does not hold up the others);
//   - an instance that dies (kill -9, its connection cut) stops renewing,
//     and its steps are claimed by the others once leaseFor has passed;
//   - an instance that cannot renew for fenceAfter cancels its own steps
//     before its lease can end, so a step is not run by two instances at
//     once (a call already on its way to the provider is idempotent by
//     its key, and an append checks the order's version).
const (
	leaseFor   = 1500 * time.Millisecond
	renewEvery = leaseFor / 4
	fenceAfter = leaseFor * 3 / 4
)

// work runs due steps until ctx ends, sharing them with the process
// manager's other instances.
func (m *Manager) work(ctx context.Context) error {
	var failing logging.Repeats
	for {
		err := m.serve(ctx)
		if ctx.Err() != nil {
			return nil
		}
		failing.Failed(ctx, m.log, "process manager worker lost its footing; retrying", "error", err)
		t := time.NewTimer(m.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// serve is one life of the worker under one lease id: claim due steps, run
// them concurrently in two lanes, finish each, keep the lease renewed. It
// returns when ctx ends or when the lease could not be renewed in time
// (after canceling the steps it ran).
func (m *Manager) serve(ctx context.Context) error {
	lease, err := uuid.NewV7()
	if err != nil {
		return err
	}
	// The renewer outlives the life's context, so that the leases hold
	// while the steps drain at its end; it stops after them.
	renewCtx, stopRenewing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRenewing()
	// Its connection is taken before the first claim: a renewal must not
	// queue behind the steps for the pool.
	renewConn, err := m.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("renewal connection: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Steps run under the lease: when it cannot be renewed they are
	// canceled, and another instance (or this one, under a new lease) runs
	// them again.
	stepCtx, cancelSteps := context.WithCancel(ctx)
	// Two lanes, each with Concurrency slots: steps that call the payment
	// provider, and steps that only touch the event store. A provider that
	// hangs (each call waits for its timeouts) fills its own lane only, so
	// placements are still completed and stock still settled meanwhile.
	lanes := []*lane{{id: laneProvider}, {id: laneStore}}
	done := make(chan *lane, 2*m.opts.Concurrency)
	fin := newFinisher(m, lease)
	renewed := make(chan error, 1)
	// Before the first claim, whenever the renewer's goroutine runs.
	began := time.Now()
	// The steps this life runs: only their leases are renewed, so a step
	// whose end could not be recorded is free for others once its lease
	// runs out, rather than held for as long as this instance lives.
	held := &heldSteps{ids: map[uuid.UUID]*heldRun{}}
	go func() { renewed <- m.renew(renewCtx, renewConn, lease, held, began, cancel) }()
	defer func() {
		cancelSteps()
		for _, l := range lanes {
			for ; l.inFlight > 0; l.inFlight-- {
				<-done
			}
		}
		cancel(nil)
		stopRenewing()
		<-renewed
		m.release(lease)
	}()
	m.log.InfoContext(ctx, "process manager worker running", "lease_id", lease)
	// A lane claims only when steps may be due that its last claim did not
	// find: at the start, when woken (the scheduler scheduled steps due
	// now, a finished step's order has a next one, a failed step's lease
	// is gone), at every poll (steps due later, steps other instances
	// released, dead letters retried), and while its last claim filled
	// every free slot. A slot
	// freed by a finished step is no such reason on its own: most claims
	// found nothing when it was.
	due := func() {
		for _, l := range lanes {
			l.due = true
		}
	}
	due()
	for {
		more := false
		for _, l := range lanes {
			// While steps are waiting (its last claim filled every free
			// slot), a lane claims again once a quarter of its slots are
			// free: claims are statements that all instances take in turn,
			// so each is worth several slots. Otherwise any free slot is
			// worth a claim.
			free := m.opts.Concurrency - l.inFlight
			if !l.due || free <= 0 || (l.backlog && l.inFlight > 0 && free < max(1, m.opts.Concurrency/4)) {
				continue
			}
			claimed, err := m.claim(ctx, lease, free, l.id)
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				// The steps in flight go on; the claim is tried again at
				// the next poll (a database that stays away fences this
				// life through the renewals).
				m.log.WarnContext(ctx, "process manager could not claim steps; retrying", "error", err)
				break
			}
			for _, t := range claimed {
				runCtx, cancelRun := context.WithCancel(stepCtx)
				r := held.add(t.ID, cancelRun)
				if r == nil {
					cancelRun() // still running here: the claim only renewed its lease
					continue
				}
				l.inFlight++
				go func() {
					defer func() {
						held.remove(t.ID, r)
						cancelRun()
						done <- l
					}()
					m.run(runCtx, t, fin)
				}()
			}
			l.backlog = len(claimed) == free
			l.due = l.backlog
			more = more || l.backlog // there may be more due already
		}
		if more {
			continue
		}
		timer := time.NewTimer(m.opts.Poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return context.Cause(ctx)
		case <-m.wake:
			due()
		case l := <-done:
			l.inFlight--
		case <-timer.C:
			due()
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

// heldSteps is the set of steps a worker's life runs, each with the
// cancel of its run.
type heldSteps struct {
	mu  sync.Mutex
	ids map[uuid.UUID]*heldRun
}

// heldRun is one run of a step.
type heldRun struct{ cancel context.CancelFunc }

// add records a run of step id; nil if one runs already.
func (h *heldSteps) add(id uuid.UUID, cancel context.CancelFunc) *heldRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ids[id]; ok {
		return nil
	}
	r := &heldRun{cancel: cancel}
	h.ids[id] = r
	return r
}

// lost cancels the runs of the steps in ids that still run: their lease
// is gone (another instance may hold them now). A step that finished
// meanwhile is no longer held.
func (h *heldSteps) lost(ids []uuid.UUID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, id := range ids {
		if r, ok := h.ids[id]; ok {
			r.cancel()
			delete(h.ids, id)
			n++
		}
	}
	return n
}

// remove forgets run r of step id (not a newer run of the same step).
func (h *heldSteps) remove(id uuid.UUID, r *heldRun) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ids[id] == r {
		delete(h.ids, id)
	}
}

func (h *heldSteps) list() []uuid.UUID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(maps.Keys(h.ids))
}

// errFenced ends a worker's life whose lease could not be renewed in time.
var errFenced = errors.New("process manager lease not renewed in time; steps canceled")

// renewSQL extends, by $2, the leases of steps $3 held under lease $1 that
// have not expired, and returns the ids of those whose lease is lost: the
// step is still listed under another lease, or under this one expired. A
// step whose row is gone has finished (its run deleted it; the scheduler
// drops no step that runs), and so has one that the statement's snapshot
// shows under this lease, still valid, but that the update did not find:
// its completion committed while the update waited for its row. Neither
// is lost, whatever the moment its run forgets it.
const renewSQL = `
	WITH renewed AS (
	    UPDATE process_tasks SET lease_until = clock_timestamp() + $2::interval
	     WHERE lease_id = $1 AND id = ANY($3) AND lease_until >= clock_timestamp() RETURNING id)
	SELECT t.id FROM process_tasks t
	 WHERE t.id = ANY($3) AND t.id NOT IN (SELECT id FROM renewed)
	   AND (t.lease_id IS DISTINCT FROM $1 OR t.lease_until < clock_timestamp())`

// renew extends the lease of every step held under lease every renewEvery
// until ctx ends. When no renewal has succeeded for fenceAfter (the
// database is away, or this process stalled), it ends the worker's life
// through fence, before another instance may claim the steps. began is a
// time before the life's first claim.
//
// The fence is due fenceAfter after the start of the last renewal that
// succeeded (or after began), whatever the ticks: a renewal attempt is
// cut at that time (an attempt that hangs, on a partitioned network say,
// would otherwise run for its own timeout, past the lease's end), and a
// timer fences when no attempt runs (a failed attempt's check would
// otherwise wait for the next tick, which may come after the lease's
// end).
func (m *Manager) renew(ctx context.Context, conn *pgxpool.Conn, lease uuid.UUID, held *heldSteps, began time.Time, fence context.CancelCauseFunc) error {
	ticker := time.NewTicker(renewEvery)
	defer ticker.Stop()
	// conn is the renewals' own connection (taken again from the pool
	// after a failure).
	defer func() {
		if conn != nil {
			conn.Release()
		}
	}()
	last := began // every lease of this life was taken after it
	due := time.NewTimer(time.Until(last.Add(fenceAfter)))
	defer due.Stop()
	var err error // the last attempt's failure
	fenceNow := func() error {
		if err == nil {
			err = errors.New("no renewal attempt ended in time")
		}
		m.log.ErrorContext(ctx, "process manager lease not renewed; canceling this instance's steps", "lease_id", lease, "error", err)
		fence(fmt.Errorf("%w: %w", errFenced, err))
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-due.C:
			return fenceNow()
		case <-ticker.C:
		}
		start := time.Now()
		rctx, cancel := context.WithDeadline(ctx, last.Add(fenceAfter))
		err = nil
		if conn == nil {
			conn, err = m.pool.Acquire(rctx)
		}
		if err == nil {
			asked := held.list()
			var rows pgx.Rows
			var lost []uuid.UUID
			if rows, err = conn.Query(rctx, renewSQL, pg.PlanForValues, lease, leaseFor.String(), asked); err == nil {
				lost, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			}
			if err == nil {
				if n := held.lost(lost); n > 0 {
					m.log.ErrorContext(ctx, "process manager lost the lease of steps it ran; canceled them", "lease_id", lease, "steps", n)
				}
			} else {
				conn.Release()
				conn = nil
			}
		}
		cancel()
		if err == nil {
			last = start
			due.Reset(time.Until(last.Add(fenceAfter)))
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(last) >= fenceAfter {
			return fenceNow()
		}
		m.log.WarnContext(ctx, "process manager lease renewal failed; retrying", "lease_id", lease, "error", err)
	}
}

// release gives up the steps still held under lease (a stopping worker),
// so that other instances need not wait for the lease to end.
func (m *Manager) release(lease uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := m.pool.Exec(ctx, `UPDATE process_tasks SET lease_id = NULL, lease_until = NULL WHERE lease_id = $1`, lease); err != nil {
		m.log.WarnContext(ctx, "process manager could not release its steps; others take them when the lease ends", "lease_id", lease, "error", err)
	}
}

// lane is a group of step kinds that share their slots.
type lane struct {
	// due: steps may be due that the lane's last claim did not find.
	due      bool
	id       int16
	inFlight int
	backlog  bool // the last claim found as many due steps as it asked for
}

// Lanes, as stored in process_tasks.lane (the claim's index).
const (
	laneProvider int16 = 0
	laneStore    int16 = 1
)

// The kinds that call the payment provider, and the others.
var (
	providerKinds = []string{KindInitiatePayment, KindPaymentTimeout, KindRefund, KindReconcilePayment}
	storeKinds    = []string{KindCompletePlacement, KindReleaseStock, KindReleaseReservation, KindCommitStock}
)

// laneOf returns the lane that runs steps of kind.
func laneOf(kind string) int16 {
	if slices.Contains(providerKinds, kind) {
		return laneProvider
	}
	return laneStore
}

// claimLock serialises claims across instances (see leaseFor).
var claimLock = pg.LockKey("orders.process_manager.claim")

// claimSQL leases up to $2 due steps of lane $5 under lease $3, oldest due
// first: of each order, only the due step scheduled first (lowest seq,
// whatever its lane), and none of an order that has a step leased (by
// anyone, this instance included). Blocked steps are skipped in the scan,
// so they cannot fill the claim. It runs after the claim lock is taken, in
// its own snapshot, so it sees every claim made before it; a lease starts
// when the statement takes it (clock_timestamp), not when its transaction
// began waiting for the lock.
//
// Its generic plan (the limit unknown) joins the chosen steps to a scan of
// the whole list; PostgreSQL keeps planning it for its values, which is
// cheaper (TestWorkListStatementsDoNotScan). Looking the chosen ids up as
// an array instead avoids that plan but cost 3.4 times as much per claim
// under load.
const claimSQL = `
	WITH free AS (
	    SELECT t.id FROM process_tasks t
	     WHERE t.lane = $5 AND t.state = 'pending' AND t.due_at <= $1
	       AND (t.lease_until IS NULL OR t.lease_until < now())
	       AND NOT EXISTS (
	           SELECT 1 FROM process_tasks o
	            WHERE o.order_id = t.order_id AND o.id <> t.id
	              AND (o.lease_until >= now() OR (o.state = 'pending' AND o.due_at <= $1 AND o.seq < t.seq)))
	     ORDER BY t.due_at, t.seq
	     LIMIT $2
	)
	UPDATE process_tasks t SET lease_id = $3, lease_until = clock_timestamp() + $4::interval
	  FROM free WHERE t.id = free.id AND (t.lease_until IS NULL OR t.lease_until < clock_timestamp())
	RETURNING t.id, t.kind, t.order_id, t.product_id, t.attempts, t.correlation_id, t.causation_id, t.traceparent, t.tracestate`

// claim leases up to n due steps of lane, oldest due first. The lock and the
// claim go in one round trip, one implicit transaction (a batch).
func (m *Manager) claim(ctx context.Context, lease uuid.UUID, n int, lane int16) ([]task, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, claimLock)
	b.Queue(claimSQL, m.opts.Now(), n, lease, leaseFor.String(), lane)
	br := m.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("claim steps: lock: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("claim steps: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (task, error) {
		t := task{lease: lease}
		err := row.Scan(&t.ID, &t.Kind, &t.OrderID, &t.ProductID, &t.Attempts, &t.CorrelationID, &t.CausationID, &t.Traceparent, &t.Tracestate)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim steps: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("claim steps: %w", err)
	}
	return claimed, nil
}

// run runs one step and records its outcome: gone when done, otherwise
// due again after the next backoff delay, or parked after the last.
func (m *Manager) run(ctx context.Context, t task, fin *finisher) {
	// Every line logged for the step, by whoever logs it (the step, the
	// commands it runs, the provider), carries its step, order and
	// correlation ids.
	ctx = logging.With(ctx, "step", t.Kind, "order_id", t.OrderID, "correlation_id", t.CorrelationID)
	ctx, span := m.startStep(ctx, t)
	defer span.End()
	stepCtx, cancel := context.WithTimeout(ctx, m.opts.StepTimeout)
	began := time.Now()
	err := m.execute(stepCtx, t)
	tracing.Fail(span, err)
	took := time.Since(began)
	if m.opts.OnStepDuration != nil {
		m.opts.OnStepDuration(stepCtx, t.Kind, took)
	}
	cancel()
	if ctx.Err() != nil {
		return // shutting down or fenced: the step runs again once its lease has ended
	}
	log := m.log.With("attempt", t.Attempts+1, logging.Millis("duration_ms", took))
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		if ferr := fin.done(finishCtx, t); ferr != nil {
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
	case errors.Is(err, errPermanent), attempts > len(m.opts.Backoff) && parks(t.Kind) && !errors.Is(err, errStillPending):
		outcome, state = OutcomeParked, "parked"
	default:
		due = due.Add(m.opts.Backoff[min(attempts, len(m.opts.Backoff))-1])
	}
	// The error may quote the provider (its answers, its ids): stored as
	// text PostgreSQL can hold, or the failure would never be recorded
	// and the step would never park.
	msg := storable.Clip(err.Error(), 2000)
	if _, ferr := m.pool.Exec(finishCtx, `
		UPDATE process_tasks SET state = $3, attempts = $4, due_at = $5, last_error = $6,
		       lease_id = NULL, lease_until = NULL, rerun = false, updated_at = now()
		 WHERE id = $1 AND lease_id = $2`, pg.PlanForValues, t.ID, t.lease, state, attempts, due, msg); ferr != nil {
		log.WarnContext(ctx, "step failed and its failure not recorded; it will run again", "error", err, "record_error", ferr)
		return
	}
	// Its lease is gone: a step of its order that waited behind it may be
	// due now (failures are rare enough to wake for each).
	m.Wake()
	if outcome == OutcomeParked {
		log.ErrorContext(ctx, "step parked in the dead-letter list", "error", err)
	} else {
		log.WarnContext(ctx, "step failed; retrying", "error", err, "retry_at", due)
	}
	m.report(t.Kind, outcome)
}

// parks reports whether a step of kind goes to the dead-letter list once
// its retries are used up: the calls to the provider do (but a
// reconcile_payment whose payment is still pending asks again after the
// last delay for as long as it is). The others only touch the event
// store, and retrying them is the only cure for its absence, so they retry
// for as long as they fail.
func parks(kind string) bool {
	return kind == KindInitiatePayment || kind == KindRefund || kind == KindReconcilePayment
}

func (m *Manager) report(kind, outcome string) {
	if m.opts.OnStep != nil {
		m.opts.OnStep(kind, outcome)
	}
}

// finisher records the steps that are done, group-committed: the steps
// that finish while one statement runs are recorded together by the next
// (as appends are), so finishing costs a statement per batch, not per
// step.
type finisher struct {
	m     *Manager
	lease uuid.UUID
	c     *batch.Combiner[*finishing]
}

// finishing is one done step waiting for its batch.
type finishing struct {
	id   uuid.UUID
	err  error
	done chan struct{}
}

func newFinisher(m *Manager, lease uuid.UUID) *finisher {
	f := &finisher{m: m, lease: lease}
	f.c = &batch.Combiner[*finishing]{Exec: f.exec, MaxBatch: 256, MaxInFlight: 1}
	return f
}

// doneSQL records steps $1, run under lease $2, as done: deleted, or due
// again at $3 when scheduled again while they ran (rerun). It returns
// whether a step is due now that no claim found before (one of them, due
// again, or a step of one of their orders, which waited for them: claimSQL
// runs one step of an order at a time), and how many of the steps it
// settled, either way. The statement's snapshot still
// has the steps it deletes: they are left out by id. A pending step is one
// not parked: said so, the lookup goes by the order's key alone (asked for
// state = 'pending', the planner without statistics combined it with the
// due list's partial index and read all of that).
const doneSQL = `
	WITH done AS (
	    DELETE FROM process_tasks WHERE id = ANY($1) AND lease_id = $2 AND NOT rerun RETURNING order_id),
	again AS (
	    UPDATE process_tasks SET rerun = false, attempts = 0, due_at = $3, lease_id = NULL, lease_until = NULL, updated_at = now()
	     WHERE id = ANY($1) AND lease_id = $2 AND rerun RETURNING id)
	SELECT EXISTS (SELECT 1 FROM again)
	    OR EXISTS (SELECT 1 FROM done d
	                WHERE EXISTS (SELECT 1 FROM process_tasks t
	                               WHERE t.order_id = d.order_id AND t.id <> ALL($1)
	                                 AND t.state <> 'parked' AND t.due_at <= $3
	                                 AND (t.lease_until IS NULL OR t.lease_until < now()))),
	       (SELECT count(*) FROM done) + (SELECT count(*) FROM again)`

// record runs doneSQL for ids, after the claims under way: it takes the
// claim lock shared, in the same implicit transaction (one round trip), so
// that it sees every step a claim that found none of an order's steps
// claimable could not (the next one, scheduled while this one ran), and a
// claim after it sees these gone. Without it, a claim woken by the
// scheduler while these still held their orders, and this statement,
// whose snapshot predates that step, would each leave the step to the
// poll. The statement is planned for its values (plan_cache_mode for the
// transaction: a batch runs in pgx's default mode, whose cached generic
// plan is what PlanForValues avoids elsewhere).
func (f *finisher) record(ctx context.Context, ids []uuid.UUID) (next bool, settled int, err error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1), set_config('plan_cache_mode', 'force_custom_plan', true)`, claimLock)
	b.Queue(doneSQL, ids, f.lease, f.m.opts.Now())
	br := f.m.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return false, 0, fmt.Errorf("lock: %w", err)
	}
	if err := br.QueryRow().Scan(&next, &settled); err != nil {
		return false, 0, err
	}
	return next, settled, br.Close()
}

// done records that step t is done: it is deleted, or, when it was
// scheduled again while it ran (rerun), due once more. A step whose lease
// was lost is left to its new holder.
func (f *finisher) done(ctx context.Context, t task) error {
	r := &finishing{id: t.ID, done: make(chan struct{})}
	f.c.Submit(r)
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *finisher) exec(b []*finishing) {
	ids := make([]uuid.UUID, len(b))
	for i, r := range b {
		ids[i] = r.id
	}
	// Rows locked in one order by every batch; the scheduler's statements
	// lock in theirs, so a deadlock with one of them is retried.
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		err     error
		next    bool
		settled int
	)
	for attempt := 1; attempt <= 3; attempt++ {
		next, settled, err = f.record(ctx, ids)
		if !pg.IsDeadlock(err) {
			break
		}
	}
	if err == nil && settled < len(ids) {
		// A step the scheduler marked for a rerun while the statement
		// waited for its row was neither deleted (the row it re-read is
		// marked) nor re-armed (its snapshot was not): left leased by a
		// lease no one renews, it would wait for that to run out. A second
		// statement, with a new snapshot, re-arms it. (A step whose lease
		// was lost is settled by neither, harmlessly.)
		var again bool
		again, _, err = f.record(ctx, ids)
		next = next || again
	}
	if err != nil {
		err = fmt.Errorf("record done steps: %w", err)
	} else if next {
		f.m.Wake() // the worker's claims found everything due before
	}
	for _, r := range b {
		r.err = err
		close(r.done)
	}
}
