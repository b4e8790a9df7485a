package httpapi

import (
	"net/http"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/storable"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/products"
)

// productJSON is the product representation of the contract, for the
// write model's answers and the read model's alike.
type productJSON struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       money.Amount `json:"price"`
	Stock       int64        `json:"stock"`
	Reserved    int64        `json:"reserved"`
	IsActive    bool         `json:"is_active"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Version     int64        `json:"version"`
}

// productOfView represents the write model's product as the read model
// (query/products) shows it: text that events of earlier versions hold
// but a read model cannot (NUL, invalid UTF-8) shows U+FFFD
// (storable.Text), so one product reads the same from either side.
func productOfView(v command.ProductView) productJSON {
	return productJSON{
		ID: v.ID.String(), Name: storable.Text(v.Name), Description: storable.Text(v.Description), Price: v.Price, Stock: v.Available,
		Reserved: v.Reserved, IsActive: v.IsActive, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		Version: v.Version + 1, // the number of events: 1 for a new product
	}
}

// productOfRead represents the read model's product.
func productOfRead(p products.Product) productJSON {
	return productJSON{
		ID: p.ID.String(), Name: p.Name, Description: p.Description, Price: p.Price, Stock: p.Stock,
		Reserved: p.Reserved, IsActive: p.IsActive, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Version: p.Version,
	}
}

// productRequest is the body of a product's creation or change. Every
// member is a pointer, so that a missing one is told from a zero one (a
// null is refused by the decoder, as a value of the wrong kind).
type productRequest struct {
	Name        *string       `json:"name"`
	Description *string       `json:"description" text:"multiline"`
	Price       *money.Amount `json:"price"`
	Stock       *int64        `json:"stock"`
	IsActive    *bool         `json:"is_active"`
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request) {
	var req productRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	bad := map[string]string{}
	if req.Name == nil {
		bad["name"] = "is required"
	}
	if req.Price == nil {
		bad["price"] = "is required"
	}
	if req.Stock == nil {
		bad["stock"] = "is required"
	}
	if len(bad) > 0 {
		a.writeError(w, r, &command.ValidationError{Fields: bad})
		return
	}
	cmd := command.CreateProduct{Name: *req.Name, Price: *req.Price, Stock: *req.Stock, IsActive: req.IsActive, Meta: meta(r, events.ActorAdmin)}
	if req.Description != nil {
		cmd.Description = *req.Description
	}
	v, err := a.cfg.Commands.CreateProduct(r.Context(), cmd)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/products/"+v.ID.String())
	setPosition(w, v.Position)
	httpx.WriteJSON(w, http.StatusCreated, productOfView(v))
}

func (a *API) updateProduct(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	var req productRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if req.Name == nil && req.Description == nil && req.Price == nil && req.Stock == nil && req.IsActive == nil {
		a.writeError(w, r, &command.ValidationError{Fields: map[string]string{"body": "must set at least one of name, description, price, stock or is_active"}})
		return
	}
	v, err := a.cfg.Commands.UpdateProduct(r.Context(), id, product.Details{
		Name: req.Name, Description: req.Description, Price: req.Price, IsActive: req.IsActive, Stock: req.Stock,
	}, meta(r, events.ActorAdmin))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setPosition(w, v.Position)
	httpx.WriteJSON(w, http.StatusOK, productOfView(v))
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	p, err := a.cfg.Products.Get(r.Context(), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, productOfRead(p))
}

func (a *API) listProducts(w http.ResponseWriter, r *http.Request) {
	var active *bool
	switch v := r.URL.Query().Get("is_active"); v {
	case "":
	case "true", "false":
		b := v == "true"
		active = &b
	default:
		a.writeError(w, r, badRequest{"is_active", "must be true or false"})
		return
	}
	n, err := limit(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page, err := a.cfg.Products.List(r.Context(), active, n, r.URL.Query().Get("cursor"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listOf(page, productOfRead))
}

// limit reads ?limit= (1-100, written as digits only; default 20).
func limit(r *http.Request) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 20, nil
	}
	n, ok := httpx.ParseInt(raw, 1, 100)
	if !ok {
		return 0, badRequest{"limit", "must be an integer from 1 to 100, in digits only (no sign or leading zero)"}
	}
	return n, nil
}

// list is a page of a list endpoint.
type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func listOf[R, T any](p query.Page[R], represent func(R) T) list[T] {
	l := list[T]{Items: make([]T, len(p.Items))}
	for i, it := range p.Items {
		l.Items[i] = represent(it)
	}
	if p.NextCursor != "" {
		l.NextCursor = &p.NextCursor
	}
	return l
}
