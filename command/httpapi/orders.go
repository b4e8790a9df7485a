package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
)

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

type orderItemJSON struct {
	ProductID string       `json:"product_id"`
	Quantity  int64        `json:"quantity"`
	UnitPrice money.Amount `json:"unit_price"`
	LineTotal money.Amount `json:"line_total"`
}

// orderJSON is the order representation of the contract.
type orderJSON struct {
	ID           string          `json:"id"`
	UserEmail    string          `json:"user_email"`
	Status       string          `json:"status"`
	Items        []orderItemJSON `json:"items"`
	TotalAmount  money.Amount    `json:"total_amount"`
	Currency     string          `json:"currency"`
	PaymentID    *string         `json:"payment_id"`
	CancelReason *string         `json:"cancel_reason"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Version      int64           `json:"version"`
}

func orderOf(v command.OrderView) orderJSON {
	o := orderJSON{
		ID: v.ID.String(), UserEmail: v.UserEmail, Status: string(v.Status), TotalAmount: money.Amount(v.Total),
		Currency: v.Currency, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Version: v.Version + 1,
		Items: make([]orderItemJSON, len(v.Items)),
	}
	for i, it := range v.Items {
		o.Items[i] = orderItemJSON{ProductID: it.ProductID.String(), Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal}
	}
	if v.PaymentID != "" {
		o.PaymentID = &v.PaymentID
	}
	if v.CancelReason != "" {
		o.CancelReason = &v.CancelReason
	}
	return o
}

type placeOrderRequest struct {
	UserEmail string `json:"user_email"`
	Items     []struct {
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
	} `json:"items"`
}

func writeOrder(w http.ResponseWriter, status int, v command.OrderView) {
	setPosition(w, v.Position)
	httpx.WriteJSON(w, status, orderOf(v))
}

// setPosition tells the client where its write stands in the global order,
// for X-Min-Position on later reads.
func setPosition(w http.ResponseWriter, pos eventstore.Position) {
	if pos != eventstore.Start {
		w.Header().Set("X-Event-Position", pos.String())
	}
}

func (a *API) placeOrder(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if _, present := r.Header["Idempotency-Key"]; present && (key == "" || len(key) > MaxIdempotencyKey) {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeMalformedRequest, Title: "Bad Request", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("Idempotency-Key must be 1-%d characters.", MaxIdempotencyKey)})
		return
	}
	var req placeOrderRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	lines := make([]order.Line, len(req.Items))
	bad := map[string]string{}
	for i, it := range req.Items {
		id, err := uuid.Parse(it.ProductID)
		if err != nil {
			bad[fmt.Sprintf("items[%d].product_id", i)] = "must be a product id (UUID)"
		}
		lines[i] = order.Line{ProductID: id, Quantity: it.Quantity}
	}
	if len(bad) > 0 {
		for f, msg := range order.ValidateRequest(req.UserEmail, lines) {
			if _, ok := bad[f]; !ok {
				bad[f] = msg
			}
		}
		a.writeError(w, r, &command.ValidationError{Fields: bad})
		return
	}
	v, err := a.cfg.Commands.PlaceOrder(r.Context(), command.PlaceOrder{
		IdempotencyKey: key, UserEmail: req.UserEmail, Lines: lines,
		Meta: meta(r, command.ActorCustomer), Admit: a.admit(w, req.UserEmail),
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/orders/"+v.ID.String())
	writeOrder(w, http.StatusCreated, v)
}

func (a *API) cancelOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	v, err := a.cfg.Commands.CancelOrder(r.Context(), id, meta(r, command.ActorCustomer))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOrder(w, http.StatusOK, v)
}
