package kurrentdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orders-reference/orders/eventstore"
)

// clientCode is the v4 client's error code of err, ErrorCodeUnknown if err
// is not (and wraps no) client error.
func clientCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return esdb.ErrorCodeUnknown
}

// mapErr makes a client error honest about cancellation: the v4 client
// returns a raw gRPC Canceled or DeadlineExceeded status when the call's
// context ends, which errors.Is does not relate to ctx.Err(). If ctx has
// ended, the result wraps ctx.Err(); a Canceled or DeadlineExceeded status
// for another reason (Close, the client's own deadline) wraps
// context.Canceled or context.DeadlineExceeded along with err. Any other
// error is returned as it is (a *esdb.Error, wrapping the gRPC status).
func mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(err, ctxErr) {
			return err
		}
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	switch status.Code(err) {
	case codes.Canceled:
		return fmt.Errorf("%w: %w", context.Canceled, err)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w: %w", eventstore.ErrUnavailable, context.DeadlineExceeded, err)
	case codes.Unavailable:
		return fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
	}
	return err
}

// unavailable reports whether err says the node could not be reached or
// did not answer: a lost or closed connection, a node that discovery
// could not find, a call that timed out, a client replaced under it.
func unavailable(err error) bool {
	switch clientCode(err) {
	case esdb.ErrorUnavailable, esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeDeadlineExceeded:
		return true
	}
	return false
}

// permanent reports whether retrying what failed with err cannot help: the
// store is closed, or the server refused the request itself (credentials,
// access, an invalid argument such as a position off a record boundary, a
// feature it lacks).
func permanent(err error) bool {
	if errors.Is(err, ErrClosed) {
		return true
	}
	switch clientCode(err) {
	case esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnsupportedFeature:
		return true
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.Unimplemented:
		return true
	}
	return false
}
