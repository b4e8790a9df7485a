package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
)

// productJSON is the product representation of the contract.
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

func productOf(v command.ProductView) productJSON {
	return productJSON{
		ID: v.ID.String(), Name: v.Name, Description: v.Description, Price: v.Price, Stock: v.Available,
		Reserved: v.Reserved, IsActive: v.IsActive, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		Version: v.Version + 1, // the number of events: 1 for a new product
	}
}

type createProductRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	// Price is parsed after decoding, so that a bad amount is a field
	// error (422) rather than an unreadable body.
	Price    json.RawMessage `json:"price"`
	Stock    *int64          `json:"stock"`
	IsActive *bool           `json:"is_active"`
}

// price parses the price, if present, recording a problem in bad.
func (r createProductRequest) price(bad map[string]string) *money.Amount {
	if r.Price == nil {
		return nil
	}
	var a money.Amount
	if err := a.UnmarshalJSON(r.Price); err != nil {
		bad["price"] = "must be a decimal amount with at most two fraction digits, e.g. 1500.00"
		return nil
	}
	return &a
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request) {
	var req createProductRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	bad := map[string]string{}
	price := req.price(bad)
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
	cmd := command.CreateProduct{Name: *req.Name, Price: *price, Stock: *req.Stock, IsActive: req.IsActive, Meta: meta(r, command.ActorAdmin)}
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
	httpx.WriteJSON(w, http.StatusCreated, productOf(v))
}

func (a *API) updateProduct(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req createProductRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	bad := map[string]string{}
	price := req.price(bad)
	if req.Name == nil && req.Description == nil && req.Price == nil && req.Stock == nil && req.IsActive == nil {
		bad["body"] = "name, description, price, stock or is_active is required"
	}
	if len(bad) > 0 {
		a.writeError(w, r, &command.ValidationError{Fields: bad})
		return
	}
	v, err := a.cfg.Commands.UpdateProduct(r.Context(), id, product.Details{
		Name: req.Name, Description: req.Description, Price: price, IsActive: req.IsActive, Stock: req.Stock,
	}, meta(r, command.ActorAdmin))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setPosition(w, v.Position)
	httpx.WriteJSON(w, http.StatusOK, productOf(v))
}
