// Package product is the product aggregate: its state, rebuilt from its
// stream by Apply, and the decisions that turn commands into events. It is
// pure domain code: no storage, no HTTP.
//
// Invariants: available stock never goes below zero; an order holds at most
// one open reservation of a product; releasing or committing a reservation
// twice (or one that does not exist) decides nothing.
//
// The state is bounded by what is open: a product remembers the orders that
// hold reservations now, never the ones it settled. A reservation made for an
// order after its placement was decided (a completer that lost the race) is
// therefore accepted here and released by the process manager, which sees it
// arrive after the order's outcome (docs/ARCHITECTURE.md, "Bounded state").
package product

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/textrule"
	"github.com/orders-reference/orders/money"
)

// Errors that callers branch on.
var (
	ErrNotFound          = errors.New("product not found")
	ErrAlreadyExists     = errors.New("product already exists")
	ErrInsufficientStock = errors.New("insufficient stock")
	ErrInactive          = errors.New("product is not active")
	ErrInvalid           = errors.New("invalid product")
)

// Limits on product fields.
const (
	MaxNameLength        = 200
	MaxDescriptionLength = 5000
	MaxStock             = 1_000_000_000
	MaxPrice             = money.Amount(1_000_000_000_00) // 1e9 currency units
)

// State is a product as its events left it.
type State struct {
	ID          uuid.UUID
	Name        string
	Description string
	Price       money.Amount
	IsActive    bool
	// Available is the stock that can still be reserved.
	Available int64
	// Reserved is the stock held by open reservations.
	Reserved  int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is the stream version of the last applied event,
	// eventstore.NoVersion (-1) for a product that does not exist.
	Version int64

	open map[uuid.UUID]int64 // order -> reserved quantity
	// at is where each open reservation's event stands in the global order
	// (ReservedAt); a reservation made after its order's placement was
	// decided is stray, and is never committed.
	at   map[uuid.UUID]eventstore.Position
	undo *undoLog // set between Savepoint and Rollback/Keep
}

// New returns the state of a product that does not exist yet.
func New(id uuid.UUID) *State {
	return &State{ID: id, Version: -1}
}

// Exists reports whether the product was created.
func (s *State) Exists() bool { return s.Version >= 0 }

// OpenReservations is how many orders hold stock of the product: what a
// snapshot or a Clone of the state costs.
func (s *State) OpenReservations() int { return len(s.open) }

// ReservedFor returns the quantity order holds, and whether it holds any.
func (s *State) ReservedFor(order uuid.UUID) (int64, bool) {
	q, ok := s.open[order]
	return q, ok
}

// Apply folds one stored event into the state.
func (s *State) Apply(e events.Event, version int64, at time.Time) {
	switch e := e.(type) {
	case events.ProductCreated:
		s.Name, s.Description, s.Price, s.IsActive, s.Available = e.Name, e.Description, e.Price, e.IsActive, e.Stock
		s.CreatedAt = at
	case events.ProductDetailsChanged:
		if e.Name != nil {
			s.Name = *e.Name
		}
		if e.Description != nil {
			s.Description = *e.Description
		}
		if e.Price != nil {
			s.Price = *e.Price
		}
		if e.IsActive != nil {
			s.IsActive = *e.IsActive
		}
	case events.ProductStockAdjusted:
		s.Available = e.Available
	case events.ProductStockReserved:
		s.touch(e.OrderID)
		if s.open == nil {
			s.open = map[uuid.UUID]int64{}
		}
		s.open[e.OrderID] = e.Quantity
		s.Available -= e.Quantity
		s.Reserved += e.Quantity
	case events.ProductReservationReleased:
		s.touch(e.OrderID)
		delete(s.open, e.OrderID)
		delete(s.at, e.OrderID)
		s.Available += e.Quantity
		s.Reserved -= e.Quantity
	case events.ProductReservationCommitted:
		s.touch(e.OrderID)
		delete(s.open, e.OrderID)
		delete(s.at, e.OrderID)
		s.Reserved -= e.Quantity
	}
	s.Version = version
	s.UpdatedAt = at
}

// Details are a product's editable fields; nil fields are left as they are.
type Details struct {
	Name        *string
	Description *string
	Price       *money.Amount
	IsActive    *bool
	// Stock sets the stock available to reserve.
	Stock *int64
}

// Create decides the creation of a product.
func (s *State) Create(name, description string, price money.Amount, stock int64, active bool) ([]events.Event, error) {
	if s.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyExists, s.ID)
	}
	name = strings.TrimSpace(name)
	if err := validate(Details{Name: &name, Description: &description, Price: &price, Stock: &stock}); err != nil {
		return nil, err
	}
	return []events.Event{events.ProductCreated{
		ProductID: s.ID, Name: name, Description: description, Price: price, Stock: stock, IsActive: active,
	}}, nil
}

// Change decides an admin's edit: details and/or the available stock.
// Fields equal to the current ones decide nothing.
func (s *State) Change(d Details) ([]events.Event, error) {
	if !s.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, s.ID)
	}
	if d.Name != nil {
		trimmed := strings.TrimSpace(*d.Name)
		d.Name = &trimmed
	}
	if err := validate(d); err != nil {
		return nil, err
	}
	var changed events.ProductDetailsChanged
	if d.Name != nil && *d.Name != s.Name {
		changed.Name = d.Name
	}
	if d.Description != nil && *d.Description != s.Description {
		changed.Description = d.Description
	}
	if d.Price != nil && *d.Price != s.Price {
		changed.Price = d.Price
	}
	if d.IsActive != nil && *d.IsActive != s.IsActive {
		changed.IsActive = d.IsActive
	}
	var out []events.Event
	if changed != (events.ProductDetailsChanged{}) {
		out = append(out, changed)
	}
	if d.Stock != nil && *d.Stock != s.Available {
		out = append(out, events.ProductStockAdjusted{Available: *d.Stock, Delta: *d.Stock - s.Available})
	}
	return out, nil
}

// InvalidError names the product fields a command got wrong, by the
// fields' names in the API (name, description, price, stock); it is
// ErrInvalid.
type InvalidError struct {
	Fields map[string]string
}

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for f, msg := range e.Fields {
		parts = append(parts, f+" "+msg)
	}
	slices.Sort(parts)
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// validate checks the fields d sets. A name is shown to people, so it
// follows the one rule of names (textrule.NameProblem: no bidirectional
// control, at least one visible character: "\u200b" or "\ufeff" alone
// would show as nothing), and a description the rule of prose
// (textrule.ProseProblem: no bidirectional control).
func validate(d Details) error {
	problems := map[string]string{}
	if d.Name != nil && (*d.Name == "" || utf8.RuneCountInString(*d.Name) > MaxNameLength) {
		problems["name"] = fmt.Sprintf("must be 1-%d characters", MaxNameLength)
	} else if p := textruleOf(d.Name, textrule.NameProblem); p != "" {
		problems["name"] = p
	}
	if d.Description != nil && utf8.RuneCountInString(*d.Description) > MaxDescriptionLength {
		problems["description"] = fmt.Sprintf("must be at most %d characters", MaxDescriptionLength)
	} else if p := textruleOf(d.Description, textrule.ProseProblem); p != "" {
		problems["description"] = p
	}
	if d.Price != nil && (*d.Price <= 0 || *d.Price > MaxPrice) {
		problems["price"] = fmt.Sprintf("must be greater than 0 and at most %s", MaxPrice)
	}
	if d.Stock != nil && (*d.Stock < 0 || *d.Stock > MaxStock) {
		problems["stock"] = fmt.Sprintf("must be 0-%d", MaxStock)
	}
	if len(problems) > 0 {
		return &InvalidError{Fields: problems}
	}
	return nil
}

// textruleOf applies rule to s, if it is set.
func textruleOf(s *string, rule func(string) string) string {
	if s == nil {
		return ""
	}
	return rule(*s)
}

// Reserve decides holding quantity units for order. A second reservation
// for the same order while the first is open decides nothing (the first
// stands). The product does not remember settled reservations, so a late
// repeat after a release or commit reserves again; the process manager
// releases such a stray reservation (reason reservation_after_close).
func (s *State) Reserve(order uuid.UUID, quantity int64) ([]events.Event, error) {
	if !s.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, s.ID)
	}
	if quantity <= 0 {
		return nil, fmt.Errorf("%w: quantity must be positive", ErrInvalid)
	}
	if _, held := s.open[order]; held {
		return nil, nil
	}
	if !s.IsActive {
		return nil, fmt.Errorf("%w: %s", ErrInactive, s.ID)
	}
	if quantity > s.Available {
		return nil, fmt.Errorf("%w: %s has %d, %d requested", ErrInsufficientStock, s.ID, s.Available, quantity)
	}
	return []events.Event{events.ProductStockReserved{OrderID: order, Quantity: quantity}}, nil
}

// Release decides returning order's reservation to stock; nothing if the
// order holds none.
func (s *State) Release(order uuid.UUID, reason string) []events.Event {
	q, held := s.open[order]
	if !held {
		return nil
	}
	return []events.Event{events.ProductReservationReleased{OrderID: order, Quantity: q, Reason: reason}}
}

// ReservedAt records where order's open reservation stands in the global
// order: the position of its event, or, for one appended in a batch, the
// batch's last position (an upper bound that is still before anything
// appended after the batch). It does nothing for an order that holds none.
func (s *State) ReservedAt(order uuid.UUID, pos eventstore.Position) {
	if _, held := s.open[order]; !held {
		return
	}
	s.touch(order)
	if s.at == nil {
		s.at = map[uuid.UUID]eventstore.Position{}
	}
	s.at[order] = pos
}

// Stray reports whether order's open reservation was made after decided,
// the position of the event that decided the order's placement (zero: not
// decided yet). Every completer reserves before it records the decision, so
// the placement's own reservations come before it; a later one was made by
// a completer that lost the race. A reservation whose position is unknown
// is not stray.
func (s *State) Stray(order uuid.UUID, decided eventstore.Position) bool {
	if _, held := s.open[order]; !held || decided == eventstore.Start {
		return false
	}
	at, known := s.at[order]
	return known && decided.Less(at)
}

// Commit decides selling order's reservation; nothing if the order holds
// none, or holds only a stray one (see Stray; decided is the position of
// the event that decided the order's placement): a stray reservation is
// released, never sold, so a commit that runs again after the order's
// reservation was sold and forgotten cannot sell a stray one.
func (s *State) Commit(order uuid.UUID, decided eventstore.Position) []events.Event {
	q, held := s.open[order]
	if !held || s.Stray(order, decided) {
		return nil
	}
	return []events.Event{events.ProductReservationCommitted{OrderID: order, Quantity: q}}
}
