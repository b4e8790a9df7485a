package command

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/money"
)

// CreateProduct is an admin's new product.
type CreateProduct struct {
	Name        string
	Description string
	Price       money.Amount
	Stock       int64
	// IsActive defaults to true.
	IsActive *bool
	Meta     eventstore.Metadata
}

// CreateProduct creates a product and returns it.
func (s *Service) CreateProduct(ctx context.Context, cmd CreateProduct) (ProductView, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return ProductView{}, fmt.Errorf("product id: %w", err)
	}
	active := cmd.IsActive == nil || *cmd.IsActive
	_, v, err := s.stock.Do(ctx, id, cmd.Meta, func(p *product.State) ([]events.Event, error) {
		return p.Create(cmd.Name, cmd.Description, cmd.Price, cmd.Stock, active)
	})
	return v, err
}

// UpdateProduct applies an admin's edit (any of name, description, price,
// is_active, stock) and returns the product.
func (s *Service) UpdateProduct(ctx context.Context, id uuid.UUID, d product.Details, meta eventstore.Metadata) (ProductView, error) {
	_, v, err := s.stock.Do(ctx, id, meta, func(p *product.State) ([]events.Event, error) {
		return p.Change(d)
	})
	return v, err
}
