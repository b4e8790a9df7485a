package httpapi

import (
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
	Name        *string       `json:"name"`
	Description *string       `json:"description"`
	Price       *money.Amount `json:"price"`
	Stock       *int64        `json:"stock"`
	IsActive    *bool         `json:"is_active"`
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request) {
	var req createProductRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	missing := map[string]string{}
	if req.Name == nil {
		missing["name"] = "is required"
	}
	if req.Price == nil {
		missing["price"] = "is required"
	}
	if req.Stock == nil {
		missing["stock"] = "is required"
	}
	if len(missing) > 0 {
		a.writeError(w, r, &command.ValidationError{Fields: missing})
		return
	}
	cmd := command.CreateProduct{Name: *req.Name, Price: *req.Price, Stock: *req.Stock, IsActive: req.IsActive, Meta: meta(r, command.ActorAdmin)}
	if req.Description != nil {
		cmd.Description = *req.Description
	}
	v, err := a.cfg.Commands.CreateProduct(r.Context(), cmd)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/products/"+v.ID.String())
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
	if req == (createProductRequest{}) {
		a.writeError(w, r, &command.ValidationError{Fields: map[string]string{"body": "name, description, price, stock or is_active is required"}})
		return
	}
	v, err := a.cfg.Commands.UpdateProduct(r.Context(), id, product.Details{
		Name: req.Name, Description: req.Description, Price: req.Price, IsActive: req.IsActive, Stock: req.Stock,
	}, meta(r, command.ActorAdmin))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, productOf(v))
}
