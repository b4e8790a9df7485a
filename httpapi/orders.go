package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/storable"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/query/orders"
)

// MaxIdempotencyKey is the longest Idempotency-Key accepted, in
// characters (httpx.Header).
const MaxIdempotencyKey = 255

type orderItemJSON struct {
	ProductID string       `json:"product_id"`
	Quantity  int64        `json:"quantity"`
	UnitPrice money.Amount `json:"unit_price"`
	LineTotal money.Amount `json:"line_total"`
}

// orderJSON is the order representation of the contract, for the write
// model's answers and the read model's alike.
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

// orderOfView represents the write model's order as the read model
// (query/orders) shows it: a rejected placement is canceled, with the
// rejection's reason, and text that events of earlier versions hold but a
// read model cannot (NUL, invalid UTF-8) shows U+FFFD (storable.Text), so
// one order reads the same from either side.
func orderOfView(v command.OrderView) orderJSON {
	o := orderJSON{
		ID: v.ID.String(), UserEmail: storable.Text(v.UserEmail), Status: string(v.Status.Public()), TotalAmount: money.Amount(v.Total),
		Currency: storable.Text(v.Currency), CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Version: v.Version + 1,
		Items: make([]orderItemJSON, len(v.Items)),
	}
	for i, it := range v.Items {
		o.Items[i] = orderItemJSON{ProductID: it.ProductID.String(), Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal}
	}
	text := func(s string) *string {
		if s == "" {
			return nil
		}
		s = storable.Text(s)
		return &s
	}
	o.PaymentID, o.CancelReason = text(v.PaymentID), text(v.CancelReason)
	if v.Status == order.StatusRejected && v.RejectReason != "" {
		o.CancelReason = text(v.RejectReason)
	}
	return o
}

// orderOfRead represents the read model's order.
func orderOfRead(v orders.Order) orderJSON {
	o := orderJSON{
		ID: v.ID.String(), UserEmail: v.UserEmail, Status: v.Status, TotalAmount: v.TotalAmount, Currency: v.Currency,
		PaymentID: v.PaymentID, CancelReason: v.CancelReason, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Version: v.Version,
		Items: make([]orderItemJSON, len(v.Items)),
	}
	for i, it := range v.Items {
		o.Items[i] = orderItemJSON{ProductID: it.ProductID, Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal}
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
	httpx.WriteJSON(w, status, orderOfView(v))
}

func (a *API) placeOrder(w http.ResponseWriter, r *http.Request) {
	key, _, p := httpx.Header(r, "Idempotency-Key", MaxIdempotencyKey)
	if p != nil {
		httpx.WriteProblem(w, *p)
		return
	}
	var req placeOrderRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	lines := make([]order.Line, len(req.Items))
	bad := map[string]string{}
	if len(req.Items) <= order.MaxItems { // else the count is the problem (ValidateRequest)
		for i, it := range req.Items {
			id, err := httpx.ParseUUID(it.ProductID)
			if err != nil {
				bad[fmt.Sprintf("items[%d].product_id", i)] = httpx.UUIDRule
			}
			lines[i] = order.Line{ProductID: id, Quantity: it.Quantity}
		}
	}
	if len(bad) > 0 || len(req.Items) > order.MaxItems {
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
		Meta: meta(r, events.ActorCustomer), Admit: a.admit(w, req.UserEmail),
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	logging.Add(r.Context(), "order_id", v.ID) // a repeated key's order, which Admit did not see
	w.Header().Set("Location", "/orders/"+v.ID.String())
	writeOrder(w, http.StatusCreated, v)
}

func (a *API) cancelOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := a.orderPathID(w, r)
	if !ok {
		return
	}
	v, err := a.cfg.Commands.CancelOrder(r.Context(), id, meta(r, events.ActorCustomer))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOrder(w, http.StatusOK, v)
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := a.orderPathID(w, r)
	if !ok {
		return
	}
	o, err := a.cfg.Orders.Get(r.Context(), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, orderOfRead(o))
}

// statuses an order can be listed by.
var statuses = []string{orders.StatusCreated, orders.StatusReserved, orders.StatusPaymentPending, orders.StatusPaid, orders.StatusCanceled}

func (a *API) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	known := status == ""
	for _, s := range statuses {
		known = known || s == status
	}
	if !known {
		a.writeError(w, r, badRequest{"status", "must be one of " + strings.Join(statuses, ", ")})
		return
	}
	n, err := limit(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page, err := a.cfg.Orders.List(r.Context(), q.Get("email"), status, n, q.Get("cursor"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listOf(page, orderOfRead))
}
