// Package query is the read side's shared vocabulary and the audit trail.
// Each read model lives in a package of its own under query/ (products,
// orders, orderstock: table, projector and queries together), and
// query/readmodels lists them all; this package holds what they share
// (pages, cursors, errors) and an order's audit trail, which reads the
// event store itself.
package query

import (
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	jsonv2 "github.com/go-json-experiment/json"
)

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalidCursor = errors.New("invalid cursor")
)

// Kinds of what a query finds, for NotFoundError.
const (
	KindOrder   = "order"
	KindProduct = "product"
)

// NotFoundError is the ErrNotFound of one thing: its kind (KindOrder,
// KindProduct) and id, so that an answer can say what was not found
// without reading Error.
type NotFoundError struct {
	Kind string
	ID   uuid.UUID
}

func (e *NotFoundError) Error() string {
	return e.Kind + " " + e.ID.String() + ": " + ErrNotFound.Error()
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Page is one page of a list and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// EncodeCursor returns the opaque cursor (base64url of JSON) for key, the
// sort key of a page's last row (a struct, or a pointer to one).
func EncodeCursor(key any) string {
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into key, a pointer to
// a struct; anything else is ErrInvalidCursor, and so is a key whose
// Valid method (if it has one) says the API could not have written it. It is strict: the JSON must
// be one object of key's members (decoded as request bodies are, by
// go-json-experiment: exact names, none unknown or repeated, nothing
// after it), and the cursor must be exactly what EncodeCursor makes of
// the key it holds, so every member is present and written as this API
// writes it ({} or null, which would decode into the zero key and list
// from the start, are not cursors).
func DecodeCursor(s string, key any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return ErrInvalidCursor
	}
	if err := jsonv2.Unmarshal(b, key, jsonv2.RejectUnknownMembers(true)); err != nil {
		return ErrInvalidCursor
	}
	if EncodeCursor(key) != s {
		return ErrInvalidCursor
	}
	if v, ok := key.(interface{ Valid() bool }); ok && !v.Valid() {
		return ErrInvalidCursor // a key this API never writes (a time in another zone, say)
	}
	return nil
}
