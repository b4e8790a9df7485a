package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/query"
)

// internal is what an error's own text may hold that a client must never
// see: the ids and words of the server's logs.
const internal = "INTERNAL 0000dead-beef"

// errorSamples are errors of every kind the table answers: each sentinel
// bare and wrapped with internal text, and each error type with its
// fields. Every row of errorProblems must be matched by one.
func errorSamples() []error {
	id := uuid.New()
	wrap := func(err error) error { return fmt.Errorf("%s: %w", internal, err) }
	samples := []error{
		badRequest{"limit", "must be an integer from 1 to 100"},
		badRequest{"", "The query string is malformed."},
		&command.ValidationError{Fields: map[string]string{"user_email": "must be a valid email address"}},
		&product.InvalidError{Fields: map[string]string{"price": "must be greater than 0"}},
		&command.RejectedError{Insufficient: []uuid.UUID{id}},
		&command.RejectedError{Unavailable: []uuid.UUID{id}},
		errRateLimited{ratelimit.Decision{Limit: 5, Window: time.Minute, RetryAfter: time.Second}},
		fmt.Errorf("%s: %w", internal, context.DeadlineExceeded),
		&order.TransitionError{ID: id, Status: order.StatusPaid, To: order.StatusCanceled},
		&order.TransitionError{ID: id, Status: order.StatusCreated},
		&order.TransitionError{ID: id, Status: order.StatusPaid, Refund: true},
		&order.MismatchError{Field: "amount", Message: "must be the order's total, 15.00"},
		&query.NotFoundError{Kind: query.KindOrder, ID: id},
		&query.NotFoundError{Kind: query.KindProduct, ID: id},
	}
	typed := len(samples)
	for _, sentinel := range []error{
		query.ErrInvalidCursor, command.ErrValidation, product.ErrInvalid, command.ErrRejected, command.ErrIdempotencyConflict,
		errLimiterDown, errNotCaughtUp, backpressure.ErrBehind, eventstore.ErrUnavailable, product.ErrNotFound, order.ErrNotFound, query.ErrNotFound,
		order.ErrIllegalTransition, order.ErrPaymentMismatch,
	} {
		samples = append(samples, sentinel, wrap(sentinel))
	}
	for _, s := range slices.Clone(samples[:typed]) {
		samples = append(samples, wrap(s))
	}
	return samples
}

// Every row of the table gives a client a fixed sentence, and every
// error it answers — each sentinel bare or wrapped, each error type — is
// answered with a detail that is not the error's text, holds none of it
// and names no Go.
func TestEveryRowGivesItsOwnDetail(t *testing.T) {
	t.Parallel()
	for i, row := range errorProblems {
		if row.detail == "" || !strings.HasSuffix(row.detail, ".") || apitest.GoTerm(row.detail) != "" {
			t.Errorf("row %d (%s): detail %q, want a sentence", i, row.typ, row.detail)
		}
	}
	matched := make([]bool, len(errorProblems))
	api := New(Config{})
	for _, err := range errorSamples() {
		row := -1
		for i, m := range errorProblems {
			if m.match(err) {
				row = i
				break
			}
		}
		if row < 0 {
			t.Errorf("%v: no row of the table matches it", err)
			continue
		}
		matched[row] = true
		rec := httptest.NewRecorder()
		api.writeError(rec, httptest.NewRequest("GET", "/orders/"+uuid.NewString(), nil), err)
		var body struct{ Type, Detail string }
		// decorate may narrow the type (a rejection for products that are
		// not available), never to a 500.
		if json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Type == "" || body.Type == httpx.TypeInternal {
			t.Errorf("%v: answered %d %s, want its row's %s", err, rec.Code, rec.Body, errorProblems[row].typ)
			continue
		}
		text := err.Error()
		if body.Detail == "" || body.Detail == text || strings.Contains(body.Detail, text) || strings.Contains(body.Detail, internal) ||
			apitest.GoTerm(body.Detail) != "" {
			t.Errorf("%T %q: detail %q is (or holds) the error's own text", err, text, body.Detail)
		}
		for e := err; e != nil; e = errors.Unwrap(e) { // no sentinel's text either
			if s := e.Error(); len(s) > 12 && strings.Contains(body.Detail, s) {
				t.Errorf("%q: detail %q holds %q", text, body.Detail, s)
			}
		}
	}
	for i, ok := range matched {
		if !ok {
			t.Errorf("row %d (%s, %q) has no sample error: add one to errorSamples", i, errorProblems[i].typ, errorProblems[i].detail)
		}
	}
}

// The words of a detail come from the table or from the fields errors
// carry, never from an error's text: nothing in errors.go calls Error()
// but the Error methods themselves.
func TestNoDetailFallsBackToErrorText(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name == "Error" && fn.Recv != nil {
			continue
		}
		ast.Inspect(fn, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Error" && len(call.Args) == 0 {
					t.Errorf("%s: %s reads an error's text; word the detail from the table or the error's fields", fset.Position(call.Pos()), fn.Name.Name)
				}
			}
			return true
		})
	}
}

// The details of the kinds the review found answered with Go's text.
func TestDetailsAreWordedFromFields(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	api := New(Config{})
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("cancel %s: %w", id, &order.TransitionError{ID: id, Status: order.StatusPaid, To: order.StatusCanceled}),
			"The order is paid; it cannot become canceled."},
		{&order.TransitionError{ID: id, Status: order.StatusCreated},
			"The order is created; no payment was requested for it, so no payment outcome can be recorded."},
		{fmt.Errorf("%w: %s", product.ErrNotFound, id), "There is no product with this id."},
		{fmt.Errorf("%w: %s", order.ErrNotFound, id), "There is no order with this id."},
		{&query.NotFoundError{Kind: query.KindProduct, ID: id}, "There is no product with this id."},
		{fmt.Errorf("history: %w", &query.NotFoundError{Kind: query.KindOrder, ID: id}), "There is no order with this id."},
		{fmt.Errorf("%s: %w", id, query.ErrNotFound), "There is nothing with this id."},
		{badRequest{"limit", "must be 1-100"}, "limit must be 1-100."},
	} {
		rec := httptest.NewRecorder()
		api.writeError(rec, httptest.NewRequest("GET", "/", nil), c.err)
		var body struct{ Detail string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Detail != c.want {
			t.Errorf("%v: detail %q, want %q", c.err, body.Detail, c.want)
		}
	}
}

// An event store that cannot be reached (a KurrentDB node down) is a 503
// with Retry-After, as a database that does not answer is, not a 500.
func TestEventStoreUnavailableIs503(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	New(Config{}).writeError(rec, httptest.NewRequest("POST", "/orders", nil),
		fmt.Errorf("place order: %w", fmt.Errorf("kurrentdb: the connection was lost: %w", eventstore.ErrUnavailable)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("answered %d (Retry-After %q) %s, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}
