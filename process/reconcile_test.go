package process_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/payment"
)

// PaymentByOrder answers what the stub holds: the order's payment, pending
// (the tests report outcomes through the harness, not the stub) or
// refunded; nothing while it is down.
func (s *stubProvider) PaymentByOrder(_ context.Context, orderID uuid.UUID) (payment.Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return payment.Payment{}, fmt.Errorf("%w: injected outage", payment.ErrUnavailable)
	}
	id, ok := s.byKey[orderID.String()]
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: order %s", payment.ErrNotFound, orderID)
	}
	p := payment.Payment{ID: id, Status: payment.StatusPending, OrderID: orderID}
	if r, ok := s.refunds[id]; ok {
		p.Status, p.RefundID = payment.StatusRefunded, r
	}
	return p, nil
}
