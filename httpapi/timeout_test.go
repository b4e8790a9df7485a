package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/query/products"
)

// A database that is unavailable or too slow (a statement timeout, a lock
// timeout, no connection, the request's deadline) is a 503 with
// Retry-After, whose detail reveals nothing; the error is logged as a
// warning for operators.
func TestDatabaseTimeoutIs503(t *testing.T) {
	t.Parallel()
	placement := fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1}]}`, uuid.New())
	for _, err := range []error{
		fmt.Errorf("place order: append: %w", &pgconn.PgError{Severity: "ERROR", Code: "57014", Message: "canceling statement due to statement timeout"}),
		fmt.Errorf("read: %w", &pgconn.PgError{Severity: "ERROR", Code: "55P03", Message: "canceling statement due to lock timeout"}),
		fmt.Errorf("read: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}),
		fmt.Errorf("place order: outcome unknown: %w", context.DeadlineExceeded),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			var logs logtest.Sink
			api := httpapi.New(httpapi.Config{
				AdminSecret: "s", Commands: failing{err}, Products: failingProducts{err}, Orders: failingOrders{err},
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			r := chi.NewRouter()
			api.MountCommands(r)
			api.MountQueries(r)
			srv := httptest.NewServer(r)
			defer srv.Close()
			cl := &apitest.Client{URL: srv.URL}
			for _, resp := range []apitest.Response{
				cl.Do(t, "POST", "/orders", placement, "Idempotency-Key", "k"),
				cl.Do(t, "POST", "/orders/"+uuid.NewString()+"/cancel", ""),
				cl.Do(t, "POST", "/admin/products", `{"name":"x","price":"1.00","stock":1}`, "X-Admin-Secret", "s"),
				cl.Do(t, "GET", "/products/"+uuid.NewString(), ""),
				cl.Do(t, "GET", "/admin/orders", "", "X-Admin-Secret", "s"),
			} {
				apitest.WantProblem(t, resp, 503, httpx.TypeUnavailable)
				if resp.Header.Get("Retry-After") == "" {
					t.Errorf("no Retry-After: %s", resp.Raw)
				}
				if strings.Contains(resp.Raw, "SQLSTATE") || strings.Contains(resp.Raw, "canceling") || strings.Contains(resp.Raw, "outcome") {
					t.Errorf("the answer reveals the error: %s", resp.Raw)
				}
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "did not answer in time") {
				t.Errorf("logged %q, want a warning", logs.String())
			}
		})
	}
}

// blocked waits for its caller's context: a database that stalls.
type blocked struct{ failing }

func (blocked) PlaceOrder(ctx context.Context, _ command.PlaceOrder) (command.OrderView, error) {
	<-ctx.Done()
	return command.OrderView{}, fmt.Errorf("place order: %w", ctx.Err())
}

type blockedProducts struct{ failingProducts }

func (blockedProducts) Get(ctx context.Context, _ uuid.UUID) (products.Product, error) {
	<-ctx.Done()
	return products.Product{}, fmt.Errorf("read product: %w", ctx.Err())
}

// Every request has RequestTimeout as its deadline: one that waits on a
// stalled dependency is answered 503 by then.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	api := httpapi.New(httpapi.Config{
		AdminSecret: "s", Commands: blocked{}, Products: blockedProducts{}, RequestTimeout: 200 * time.Millisecond,
	})
	r := chi.NewRouter()
	api.MountCommands(r)
	api.MountQueries(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	cl := &apitest.Client{URL: srv.URL}
	placement := fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1}]}`, uuid.New())
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/orders", placement},
		{"GET", "/products/" + uuid.NewString(), ""},
	} {
		start := time.Now()
		resp := cl.Do(t, c.method, c.path, c.body)
		took := time.Since(start)
		apitest.WantProblem(t, resp, 503, httpx.TypeUnavailable)
		if took < 200*time.Millisecond || took > 5*time.Second {
			t.Errorf("%s %s answered after %s, want about 200ms", c.method, c.path, took)
		}
	}
}
