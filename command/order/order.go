// Package order is the order aggregate: its state machine, rebuilt from its
// stream by Apply, and the decisions that turn commands into events. It is
// pure domain code: no storage, no HTTP.
//
//	created ──► reserved ──► payment_pending ──► paid
//	   │            │   └───────────────┤ (a success reported before the
//	   │            │                   │  request was recorded)
//	   │            └───────────────────┴──► canceled (customer, failed payment, timeout)
//	   ├──► canceled                             │
//	   └──► rejected                             └──► refund requested ──► refunded
//	        (stock could not be reserved;              (a success reported after
//	         nothing stays reserved)                    the order was canceled)
//
// Illegal transitions are errors (ErrIllegalTransition); repeating the
// transition that already happened decides nothing, so retried commands and
// redelivered events are harmless. Payment outcomes carry the provider's
// message id: a message the order has already recorded decides nothing,
// however late it is delivered again.
package order

import (
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/textrule"
	"github.com/orders-reference/orders/money"
)

// Status is where an order is in its life.
type Status string

// Statuses. StatusNew is an order that was never placed.
const (
	StatusNew            Status = ""
	StatusCreated        Status = "created"
	StatusReserved       Status = "reserved"
	StatusRejected       Status = "rejected"
	StatusPaymentPending Status = "payment_pending"
	StatusPaid           Status = "paid"
	StatusCanceled       Status = "canceled"
)

// Public is the status as clients see it: a rejected placement is shown
// as canceled (with the rejection's reason), as the read model shows it;
// "rejected" is the write side's word only.
func (s Status) Public() Status {
	if s == StatusRejected {
		return StatusCanceled
	}
	return s
}

// Terminal reports whether no further transition is possible.
func (s Status) Terminal() bool {
	return s == StatusPaid || s == StatusCanceled || s == StatusRejected
}

// Errors that callers branch on.
var (
	ErrNotFound          = errors.New("order not found")
	ErrAlreadyPlaced     = errors.New("order already placed")
	ErrIllegalTransition = errors.New("illegal order transition")
	ErrInvalid           = errors.New("invalid order")
	// ErrPaymentMismatch: a payment outcome names another payment or
	// amount than the order's (a *MismatchError says which).
	ErrPaymentMismatch = errors.New("payment does not match the order")
)

// TransitionError is the ErrIllegalTransition of one order: its status
// does not allow what a command asked. Its fields say why, so that an
// answer can be worded without reading Error.
type TransitionError struct {
	ID uuid.UUID
	// Status is the order's status, as clients see it (Public).
	Status Status
	// To is the status the command would have led to; StatusNew when it
	// records something that is not a status: a payment outcome, or a
	// refund (Refund).
	To     Status
	Refund bool
}

func (e *TransitionError) Error() string {
	switch {
	case e.To != StatusNew:
		return fmt.Sprintf("%v: %s is %s, cannot become %s", ErrIllegalTransition, e.ID, e.Status, e.To)
	case e.Refund:
		return fmt.Sprintf("%v: %s is %s, has no refund to record", ErrIllegalTransition, e.ID, e.Status)
	}
	return fmt.Sprintf("%v: %s is %s, no payment was requested", ErrIllegalTransition, e.ID, e.Status)
}

// Is makes errors.Is(err, ErrIllegalTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrIllegalTransition }

// MismatchError is an ErrPaymentMismatch about one field of the outcome,
// named as the payment webhook names it: "payment_id" or "amount".
type MismatchError struct {
	Field   string
	Message string // what the field must be, e.g. "must be the order's total, 15.00"
}

func (e *MismatchError) Error() string {
	return ErrPaymentMismatch.Error() + ": " + e.Field + " " + e.Message
}

func (e *MismatchError) Is(target error) bool { return target == ErrPaymentMismatch }

// Limits on orders.
const (
	MaxItems    = 100
	MaxQuantity = 10_000
	// MaxEmail and MaxEmailLocal bound an address's canonical form in
	// octets (bytes of its UTF-8): RFC 5321's 254 in all (a 256-octet
	// path less its angle brackets) and 64 before the @.
	MaxEmail      = 254
	MaxEmailLocal = 64
)

// State is an order as its events left it.
type State struct {
	ID           uuid.UUID
	Status       Status
	UserEmail    string
	Items        []events.OrderItem
	Total        money.Amount
	Currency     string
	RequestHash  string
	PaymentID    string
	CancelReason string
	Rejection    *events.OrderRejected
	// RefundRequested: a payment succeeded after the order was canceled;
	// RefundID is set once the provider refunded it.
	RefundRequested bool
	RefundID        string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// Version is the stream version of the last applied event, -1 if none.
	Version int64

	webhooks map[string]bool // provider messages already recorded
}

// New returns the state of an order that was never placed.
func New(id uuid.UUID) *State { return &State{ID: id, Version: -1} }

// Clone returns a deep copy of the state: the copy and the original may be
// changed independently.
func (s *State) Clone() *State {
	c := *s
	c.Items = append([]events.OrderItem(nil), s.Items...)
	if s.Rejection != nil {
		r := *s.Rejection
		c.Rejection = &r
	}
	c.webhooks = maps.Clone(s.webhooks)
	return &c
}

// Apply folds one stored event into the state.
func (s *State) Apply(e events.Event, version int64, at time.Time) {
	switch e := e.(type) {
	case events.OrderPlaced:
		s.Status, s.UserEmail, s.Items, s.Total, s.Currency, s.RequestHash = StatusCreated, e.UserEmail, e.Items, e.Total, e.Currency, e.RequestHash
		s.CreatedAt = at
	case events.OrderReserved:
		s.Status = StatusReserved
	case events.OrderRejected:
		s.Status = StatusRejected
		s.Rejection = &e
	case events.OrderPaymentRequested:
		s.Status, s.PaymentID = StatusPaymentPending, e.PaymentID
	case events.OrderPaid:
		s.Status, s.PaymentID = StatusPaid, e.PaymentID
		s.seen(e.WebhookID)
	case events.OrderPaymentFailed:
		s.PaymentID = e.PaymentID
		s.seen(e.WebhookID)
	case events.OrderCanceled:
		s.Status, s.CancelReason = StatusCanceled, e.Reason
	case events.OrderRefundRequested:
		s.RefundRequested = true
		if s.PaymentID == "" {
			s.PaymentID = e.PaymentID
		}
		s.seen(e.WebhookID)
	case events.OrderRefunded:
		s.RefundID = e.RefundID
	}
	s.Version = version
	s.UpdatedAt = at
}

func (s *State) seen(webhookID string) {
	if webhookID == "" {
		return
	}
	if s.webhooks == nil {
		s.webhooks = map[string]bool{}
	}
	s.webhooks[webhookID] = true
}

// Line is one requested item: a product and a quantity.
type Line struct {
	ProductID uuid.UUID
	Quantity  int64
}

// CanonicalEmail returns the one form of an email address that identifies
// a customer (orders, Idempotency-Key scopes, the rate limit, the admin
// filter), or ErrInvalidEmail. The local part goes through the PRECIS
// UsernameCaseMapped profile (RFC 8265: width mapping, case folding to
// lower case, NFC; it refuses spaces, control, default-ignorable and
// bidirectional-control code points such as U+200B or U+202E); the domain
// is converted to its IDNA lookup form (RFC 5891, lower-case A-labels, so
// bücher.example and xn--bcher-kva.example are one domain). The result must
// still parse as an address (RFC 5322/6532), be at most MaxEmail octets,
// MaxEmailLocal before the @ (RFC 5321; ErrEmailTooLong), and have a dot
// in its domain.
//
// Only spaces (U+0020) are trimmed from the ends, as a client's padding.
// Every other space, separator or control character (tab, CR, LF, U+00A0
// no-break space, U+3000 ideographic space, U+2028 line separator…) is
// refused wherever it is, as PRECIS refuses spaces in an identifier: it
// is not padding a form adds, and trimming it would make two spellings of
// one customer that the refusal inside does not. (The API refuses control
// characters in every field before this rule runs, so a tab was never
// trimmed from an address the API accepted: no stored form changes.)
func CanonicalEmail(email string) (string, error) {
	email = strings.Trim(email, padding)
	if !utf8.ValidString(email) {
		return "", fmt.Errorf("%w: not UTF-8", ErrInvalidEmail)
	}
	// Refused, not mapped away (IDNA's lookup mapping would drop U+200B
	// from a domain): an address that needs them is not one address. The
	// classes are the service's one text rule's (internal/textrule).
	if r, ok := textrule.First(email, refusedInEmail); ok {
		return "", fmt.Errorf("%w: it holds %s", ErrInvalidEmail, textrule.Codepoint(r))
	}
	at := strings.LastIndex(email, "@")
	if at <= 0 || at == len(email)-1 {
		return "", ErrInvalidEmail
	}
	local, err := precis.UsernameCaseMapped.String(email[:at])
	if err != nil {
		return "", fmt.Errorf("%w: local part: %w", ErrInvalidEmail, err)
	}
	domain, err := idna.Lookup.ToASCII(email[at+1:])
	if err != nil {
		return "", fmt.Errorf("%w: domain: %w", ErrInvalidEmail, err)
	}
	c := local + "@" + domain
	if len(local) > MaxEmailLocal || len(c) > MaxEmail {
		return "", fmt.Errorf("%w: %d octets, %d before the @: %w", ErrInvalidEmail, len(c), len(local), ErrEmailTooLong)
	}
	if addr, err := mail.ParseAddress(c); err != nil || addr.Address != c || !strings.Contains(domain, ".") {
		return "", ErrInvalidEmail
	}
	return c, nil
}

// padding is what CanonicalEmail trims from the ends: spaces only.
const padding = " "

// refusedInEmail are the code points an address may not hold anywhere:
// controls, spaces and separators, invisible (default-ignorable) and
// bidirectional-control code points.
func refusedInEmail(r rune) bool {
	return textrule.Control(r) || textrule.Separator(r) || textrule.Invisible(r)
}

var (
	// ErrInvalidEmail: CanonicalEmail found no valid address.
	ErrInvalidEmail = errors.New("not a valid email address")
	// ErrEmailTooLong: an address longer than MaxEmail octets, or
	// MaxEmailLocal before the @ (an ErrInvalidEmail too).
	ErrEmailTooLong = fmt.Errorf("longer than %d octets before the @ or %d in all", MaxEmailLocal, MaxEmail)
)

// NormalizeEmail is CanonicalEmail for keys (the rate limit, the admin
// filter, the orders read model's email_canonical): a string that is not
// a valid address (a query, or an address stored by an earlier version
// that this one refuses) is only trimmed as CanonicalEmail trims and
// lower-cased, the form earlier versions stored.
func NormalizeEmail(email string) string {
	if c, err := CanonicalEmail(email); err == nil {
		return c
	}
	return strings.ToLower(strings.Trim(email, padding))
}

// ValidateRequest checks an order request before anything is priced or
// stored; every problem is reported, keyed by field.
func ValidateRequest(email string, lines []Line) map[string]string {
	problems := map[string]string{}
	if _, err := CanonicalEmail(email); errors.Is(err, ErrEmailTooLong) {
		problems["user_email"] = fmt.Sprintf("must be an email address of at most %d bytes before the @ and %d in all", MaxEmailLocal, MaxEmail)
	} else if err != nil {
		problems["user_email"] = "must be a valid email address (no spaces, invisible, bidirectional-control or control characters)"
	}
	if len(lines) == 0 || len(lines) > MaxItems {
		// The count first: the items of a request with too many are not
		// looked at one by one (that work, and the answer, would grow
		// with what the client sent).
		problems["items"] = fmt.Sprintf("must have 1-%d items", MaxItems)
		return problems
	}
	seen := map[uuid.UUID]bool{}
	for i, l := range lines {
		if l.ProductID == uuid.Nil {
			problems[fmt.Sprintf("items[%d].product_id", i)] = "must be a product id"
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			problems[fmt.Sprintf("items[%d].quantity", i)] = fmt.Sprintf("must be 1-%d", MaxQuantity)
		}
		if seen[l.ProductID] {
			problems[fmt.Sprintf("items[%d].product_id", i)] = "appears more than once; put the whole quantity in one item"
		}
		seen[l.ProductID] = true
	}
	return problems
}

// Place decides placing the order with priced items.
func (s *State) Place(email string, items []events.OrderItem, requestHash string) ([]events.Event, error) {
	if s.Status != StatusNew {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyPlaced, s.ID)
	}
	lines := make([]Line, len(items))
	for i, it := range items {
		lines[i] = Line{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	if problems := ValidateRequest(email, lines); len(problems) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, problems)
	}
	var total money.Amount
	priced := make([]events.OrderItem, len(items))
	for i, it := range items {
		line, err := it.UnitPrice.Mul(it.Quantity)
		if err == nil {
			total, err = total.Add(line)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		it.LineTotal = line
		priced[i] = it
	}
	return []events.Event{events.OrderPlaced{
		OrderID: s.ID, UserEmail: NormalizeEmail(email), Items: priced, Total: total,
		Currency: money.Currency, RequestHash: requestHash,
	}}, nil
}

// transition decides moving from one of the statuses in from to the status
// that event e leads to; being there already decides nothing.
func (s *State) transition(e events.Event, to Status, from ...Status) ([]events.Event, error) {
	if s.Status == StatusNew {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, s.ID)
	}
	if s.Status == to {
		return nil, nil
	}
	for _, f := range from {
		if s.Status == f {
			return []events.Event{e}, nil
		}
	}
	return nil, &TransitionError{ID: s.ID, Status: s.Status.Public(), To: to.Public()}
}

// MarkReserved decides that every item is reserved.
func (s *State) MarkReserved() ([]events.Event, error) {
	return s.transition(events.OrderReserved{}, StatusReserved, StatusCreated)
}

// Reject decides that the order cannot be reserved.
func (s *State) Reject(r events.OrderRejected) ([]events.Event, error) {
	return s.transition(r, StatusRejected, StatusCreated)
}

// RequestPayment decides that payment was initiated. An order that has
// moved on meanwhile (paid by an early webhook, canceled) or was never
// reserved (rejected, shown as canceled) decides nothing: the payment's
// outcome, when it comes, is handled by RecordPayment.
func (s *State) RequestPayment(paymentID string) ([]events.Event, error) {
	switch s.Status {
	case StatusPaymentPending, StatusPaid, StatusCanceled, StatusRejected:
		return nil, nil
	}
	return s.transition(events.OrderPaymentRequested{PaymentID: paymentID}, StatusPaymentPending, StatusReserved)
}

// PaymentOutcome is what the payment provider reported about an order's
// payment.
type PaymentOutcome struct {
	// WebhookID identifies the provider's message; a message already
	// recorded decides nothing.
	WebhookID string
	PaymentID string
	Succeeded bool
	Amount    money.Amount
	// Reason explains a failure, when the provider says.
	Reason string
}

// RecordPayment decides what a payment outcome means for the order:
//
//   - success while reserved or payment_pending: paid (its stock is then
//     committed by the caller);
//   - failure while reserved or payment_pending: the payment failed and the
//     order is canceled (its stock is then released by the caller);
//   - success after the order was canceled, or after its placement was
//     rejected (which clients see as canceled): a refund is requested,
//     once;
//   - anything after the order ended otherwise (a late failure of a paid
//     order, a failure of a canceled or rejected one, a second outcome)
//     decides nothing.
//
// An outcome for another payment or amount is a *MismatchError
// (ErrPaymentMismatch).
func (s *State) RecordPayment(o PaymentOutcome) ([]events.Event, error) {
	if s.Status == StatusNew {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, s.ID)
	}
	if o.WebhookID != "" && s.webhooks[o.WebhookID] {
		return nil, nil
	}
	if s.PaymentID != "" && o.PaymentID != s.PaymentID {
		return nil, &MismatchError{Field: "payment_id", Message: "is not the payment of this order"}
	}
	if o.Amount != s.Total {
		return nil, &MismatchError{Field: "amount", Message: "must be the order's total, " + s.Total.String()}
	}
	switch s.Status {
	case StatusReserved, StatusPaymentPending:
		if o.Succeeded {
			return []events.Event{events.OrderPaid{PaymentID: o.PaymentID, WebhookID: o.WebhookID}}, nil
		}
		return []events.Event{
			events.OrderPaymentFailed{PaymentID: o.PaymentID, Reason: o.Reason, WebhookID: o.WebhookID},
			events.OrderCanceled{Reason: events.CancelPaymentFailed},
		}, nil
	case StatusCanceled, StatusRejected:
		if o.Succeeded && !s.RefundRequested {
			return []events.Event{events.OrderRefundRequested{PaymentID: o.PaymentID, WebhookID: o.WebhookID}}, nil
		}
		return nil, nil
	case StatusPaid:
		return nil, nil
	}
	return nil, &TransitionError{ID: s.ID, Status: s.Status.Public()}
}

// TimeOutPayment decides canceling an order whose payment has not
// completed in time; an order that completed meanwhile decides nothing.
func (s *State) TimeOutPayment() ([]events.Event, error) {
	if s.Status != StatusReserved && s.Status != StatusPaymentPending {
		if s.Status == StatusNew {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, s.ID)
		}
		return nil, nil
	}
	return []events.Event{events.OrderCanceled{Reason: events.CancelPaymentTimeout}}, nil
}

// RecordRefund decides that the provider refunded the order's payment.
func (s *State) RecordRefund(refundID string) ([]events.Event, error) {
	switch {
	case s.Status == StatusNew:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, s.ID)
	case !s.RefundRequested:
		return nil, &TransitionError{ID: s.ID, Status: s.Status.Public(), Refund: true}
	case s.RefundID != "":
		return nil, nil
	}
	return []events.Event{events.OrderRefunded{PaymentID: s.PaymentID, RefundID: refundID}}, nil
}

// Cancel decides canceling before payment; a canceled order stays as it is,
// and so does a rejected one: the API shows a rejected placement as
// canceled (with the rejection's reason), and canceling a canceled order
// changes nothing (the contract).
func (s *State) Cancel(reason string) ([]events.Event, error) {
	if s.Status == StatusRejected {
		return nil, nil
	}
	return s.transition(events.OrderCanceled{Reason: reason}, StatusCanceled, StatusCreated, StatusReserved, StatusPaymentPending)
}
