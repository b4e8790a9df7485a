package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
)

// failing answers every command and query with one error, so that the
// mapping of every domain error to its problem is tested without a
// database, through the API's consumer-side interfaces.
type failing struct{ err error }

func (f failing) CreateProduct(context.Context, command.CreateProduct) (command.ProductView, error) {
	return command.ProductView{}, f.err
}

func (f failing) UpdateProduct(context.Context, uuid.UUID, product.Details, eventstore.Metadata) (command.ProductView, error) {
	return command.ProductView{}, f.err
}

func (f failing) PlaceOrder(context.Context, command.PlaceOrder) (command.OrderView, error) {
	return command.OrderView{}, f.err
}

func (f failing) CancelOrder(context.Context, uuid.UUID, eventstore.Metadata) (command.OrderView, error) {
	return command.OrderView{}, f.err
}

func (f failing) RecordPayment(context.Context, uuid.UUID, order.PaymentOutcome, eventstore.Metadata) (command.OrderView, error) {
	return command.OrderView{}, f.err
}

type failingProducts struct{ err error }

func (f failingProducts) Get(context.Context, uuid.UUID) (products.Product, error) {
	return products.Product{}, f.err
}

func (f failingProducts) List(context.Context, *bool, int, string) (query.Page[products.Product], error) {
	return query.Page[products.Product]{}, f.err
}

type failingOrders struct{ err error }

func (f failingOrders) Get(context.Context, uuid.UUID) (orders.Order, error) {
	return orders.Order{}, f.err
}

func (f failingOrders) List(context.Context, string, string, int, string) (query.Page[orders.Order], error) {
	return query.Page[orders.Order]{}, f.err
}

func serveFailing(t *testing.T, err error) *apitest.Client {
	t.Helper()
	api := httpapi.New(httpapi.Config{
		AdminSecret: "s", Commands: failing{err}, Products: failingProducts{err}, Orders: failingOrders{err},
	})
	r := chi.NewRouter()
	api.MountCommands(r)
	api.MountQueries(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &apitest.Client{URL: srv.URL}
}

// Every error the domain returns becomes the problem the catalog gives its
// type; anything else is a 500 that reveals nothing.
func TestErrorsMapToProblems(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	placement := fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1}]}`, uuid.New())
	for _, c := range []struct {
		err    error
		typ    string
		status int
	}{
		{&command.ValidationError{Fields: map[string]string{"user_email": "bad"}}, httpx.TypeValidation, 422},
		{fmt.Errorf("%w: name too long", product.ErrInvalid), httpx.TypeValidation, 422},
		{&command.RejectedError{Insufficient: []uuid.UUID{id}}, httpx.TypeInsufficientStock, 409},
		{&command.RejectedError{Unavailable: []uuid.UUID{id}}, httpx.TypeProductUnavailable, 409},
		{fmt.Errorf("wrapped: %w", command.ErrIdempotencyConflict), httpx.TypeIdempotencyConflict, 409},
		{fmt.Errorf("%w: %s", product.ErrNotFound, id), httpx.TypeNotFound, 404},
		{fmt.Errorf("%w: %s", order.ErrNotFound, id), httpx.TypeNotFound, 404},
		{fmt.Errorf("%w: paid", order.ErrIllegalTransition), httpx.TypeInvalidTransition, 409},
		{fmt.Errorf("%w: other payment", order.ErrPaymentMismatch), httpx.TypePaymentMismatch, 422},
		{errors.New("connection refused to 10.0.0.1"), httpx.TypeInternal, 500},
		{fmt.Errorf("admit: %w", backpressure.ErrBehind), httpx.TypeUnavailable, 503},
	} {
		t.Run(c.typ+"/"+c.err.Error(), func(t *testing.T) {
			cl := serveFailing(t, c.err)
			apitest.Run(t, cl, []apitest.Case{
				{Name: "place", Method: "POST", Path: "/orders", Body: placement, Status: c.status, Type: c.typ},
				{Name: "cancel", Method: "POST", Path: "/orders/" + id.String() + "/cancel", Status: c.status, Type: c.typ},
				{Name: "create product", Method: "POST", Path: "/admin/products", Headers: []string{"X-Admin-Secret", "s"},
					Body: `{"name":"x","price":"1.00","stock":1}`, Status: c.status, Type: c.typ},
			})
			if c.status == 500 {
				r := cl.Do(t, "POST", "/orders", placement)
				if r.Body["detail"] == c.err.Error() {
					t.Fatalf("a 500 revealed the error: %s", r.Raw)
				}
			}
		})
	}
	for _, c := range []struct {
		err    error
		typ    string
		status int
	}{
		{fmt.Errorf("product %s: %w", id, query.ErrNotFound), httpx.TypeNotFound, 404},
		{query.ErrInvalidCursor, httpx.TypeMalformedRequest, 400},
		{errors.New("read model down"), httpx.TypeInternal, 500},
	} {
		t.Run("query/"+c.err.Error(), func(t *testing.T) {
			apitest.Run(t, serveFailing(t, c.err), []apitest.Case{
				{Name: "product", Method: "GET", Path: "/products/" + id.String(), Status: c.status, Type: c.typ},
				{Name: "products", Method: "GET", Path: "/products?cursor=x", Status: c.status, Type: c.typ},
				{Name: "order", Method: "GET", Path: "/orders/" + id.String(), Status: c.status, Type: c.typ},
				{Name: "orders", Method: "GET", Path: "/admin/orders", Headers: []string{"X-Admin-Secret", "s"}, Status: c.status, Type: c.typ},
			})
		})
	}
	// Requests the API cannot read never reach the domain.
	apitest.Run(t, serveFailing(t, errors.New("must not be called")), []apitest.Case{
		{Name: "bad id", Method: "GET", Path: "/orders/nope", Status: 400, Type: httpx.TypeMalformedRequest},
		{Name: "bad limit", Method: "GET", Path: "/products?limit=0", Status: 400, Type: httpx.TypeMalformedRequest},
		{Name: "bad status", Method: "GET", Path: "/admin/orders?status=lost", Headers: []string{"X-Admin-Secret", "s"}, Status: 400, Type: httpx.TypeMalformedRequest},
		{Name: "no secret", Method: "GET", Path: "/admin/orders", Status: 401, Type: httpx.TypeUnauthorized},
		{Name: "bad key", Method: "POST", Path: "/orders", Body: placement, Headers: []string{"Idempotency-Key", ""}, Status: 400, Type: httpx.TypeMalformedRequest},
	})
}

// Every problem type has a title and an error status in the catalog, and
// docs/api.md documents it with that status.
func TestProblemCatalog(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for typ, spec := range httpx.Catalog() {
		if spec.Title == "" || spec.Status < 400 || http.StatusText(spec.Status) == "" {
			t.Errorf("%s: %+v", typ, spec)
		}
		if row := fmt.Sprintf("| `%s` | %d |", typ, spec.Status); !strings.Contains(string(doc), row) {
			t.Errorf("docs/api.md lacks the row %q", row)
		}
	}
}

// A request whose client went away is not a server error: no ERROR is
// logged and it ends as 499. A cancellation the client did not cause is
// still a 500.
func TestClientGoneIsNotAServerError(t *testing.T) {
	t.Parallel()
	placement := fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1}]}`, uuid.New())
	for _, c := range []struct {
		name       string
		clientGone bool
		status     int
		logged     string
	}{
		{"client went away", true, 499, "level=DEBUG"},
		{"canceled inside the server", false, 500, "level=ERROR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs strings.Builder
			api := httpapi.New(httpapi.Config{
				AdminSecret: "s", Commands: failing{fmt.Errorf("place: %w", context.Canceled)},
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			r := chi.NewRouter()
			api.MountCommands(r)
			ctx, cancel := context.WithCancel(context.Background())
			if c.clientGone {
				cancel()
			}
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, "POST", "/orders", strings.NewReader(placement))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "k")
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d", rec.Code, c.status)
			}
			if !strings.Contains(logs.String(), c.logged) || (c.clientGone && strings.Contains(logs.String(), "level=ERROR")) {
				t.Fatalf("logged %q, want a %s record only", logs.String(), c.logged)
			}
		})
	}
}

// Every field problem carries errors, keyed by the API's field names: the
// product's own rules too (a price of 0 was a 422 without them).
func TestFieldProblemsCarryErrors(t *testing.T) {
	t.Parallel()
	cl := serveFailing(t, fmt.Errorf("create: %w", &product.InvalidError{Fields: map[string]string{"price": "must be greater than 0"}}))
	r := cl.Do(t, "POST", "/admin/products", `{"name":"x","price":"0","stock":1}`, "X-Admin-Secret", "s")
	errs, _ := r.Body["errors"].(map[string]any)
	if r.Status != 422 || errs["price"] != "must be greater than 0" || len(errs) != 1 {
		t.Fatalf("%d %s, want 422 with errors.price", r.Status, r.Raw)
	}
	if !errors.Is(&product.InvalidError{}, product.ErrInvalid) {
		t.Fatal("InvalidError is not ErrInvalid")
	}
}

// admitting places an order only as far as asking its admission (the rate
// limit), as the command service does first.
type admitting struct{ failing }

func (admitting) PlaceOrder(ctx context.Context, cmd command.PlaceOrder) (command.OrderView, error) {
	return command.OrderView{}, cmd.Admit(ctx, uuid.New())
}

type refusing struct{}

func (refusing) Allow(context.Context, string, string) (ratelimit.Decision, error) {
	return ratelimit.Decision{Limit: 5, Window: time.Minute, RetryAfter: 30 * time.Second, Reset: 30 * time.Second}, nil
}

// Details speak to a client: a window is "minute", never Go's "1m0s"; a
// database timeout's 503 and a 500 mention the Idempotency-Key only where
// it matters (placing an order), and a payment mismatch names the
// outcome's member it is about.
func TestDetailsSpeakToClients(t *testing.T) {
	t.Parallel()
	placement := fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1}]}`, uuid.New())
	api := httpapi.New(httpapi.Config{AdminSecret: "s", Commands: admitting{}, Limiter: refusing{}})
	r := chi.NewRouter()
	api.MountCommands(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	limited := (&apitest.Client{URL: srv.URL}).Do(t, "POST", "/orders", placement)
	apitest.CheckProblem(t, limited, http.StatusTooManyRequests, httpx.TypeRateLimited)
	if want := "At most 5 orders per minute for one email."; limited.Body["detail"] != want {
		t.Errorf("429 detail %q, want %q", limited.Body["detail"], want)
	}

	for _, err := range []error{fmt.Errorf("read: %w", context.DeadlineExceeded), errors.New("boom")} {
		cl := serveFailing(t, err)
		placed := cl.Do(t, "POST", "/orders", placement, "Idempotency-Key", "k")
		created := cl.Do(t, "POST", "/admin/products", `{"name":"x","price":"1.00","stock":1}`, "X-Admin-Secret", "s")
		read := cl.Do(t, "GET", "/products/"+uuid.NewString(), "")
		for _, r := range []apitest.Response{placed, created, read} {
			if r.Status != 503 && r.Status != 500 {
				t.Fatalf("%v: %d %s", err, r.Status, r.Raw)
			}
			apitest.CheckProblem(t, r, r.Status, r.Body["type"].(string))
		}
		if d, _ := placed.Body["detail"].(string); !strings.Contains(d, "Idempotency-Key") {
			t.Errorf("%v: a placement's %d says nothing of its Idempotency-Key: %q", err, placed.Status, d)
		}
		for _, r := range []apitest.Response{created, read} {
			if d, _ := r.Body["detail"].(string); strings.Contains(d, "Idempotency-Key") || strings.Contains(d, "order") {
				t.Errorf("%v: %d detail %q speaks of orders", err, r.Status, d)
			}
		}
	}

	for field, err := range map[string]error{
		"amount":     &order.MismatchError{Field: "amount", Message: "must be the order's total, 15.00"},
		"payment_id": &order.MismatchError{Field: "payment_id", Message: "is not the payment of this order"},
	} {
		v, _ := payment.NewVerifier([]string{webhookSecret}, nil)
		api := httpapi.New(httpapi.Config{AdminSecret: "s", Commands: failing{err}, Webhooks: v})
		r := chi.NewRouter()
		api.MountCommands(r)
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		id := uuid.NewString()
		resp := (&env{srv: srv}).webhook(t, webhookSecret, "msg_"+field, time.Now(), outcomeBody(id, "success", "15.00"))
		apitest.CheckProblem(t, resp, 422, httpx.TypePaymentMismatch, field)
	}
}
