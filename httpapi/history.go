package httpapi

import (
	"net/http"

	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/orderstock"
)

// stockIndex is the projection that finds an order's stock events for its
// history: X-Min-Position on a history waits for it.
const stockIndex = orderstock.Name

// history serves an order's audit trail from the event store: the order's
// own events as they are now, its stock events as far as the order_stock
// index has got (X-Min-Position waits for it to pass a write).
func (a *API) history(w http.ResponseWriter, r *http.Request) {
	id, ok := a.orderPathID(w, r)
	if !ok {
		return
	}
	h, err := query.OrderHistory(r.Context(), a.cfg.Events, a.cfg.StockIndex, id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h)
}
