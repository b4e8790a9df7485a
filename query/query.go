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
)

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalidCursor = errors.New("invalid cursor")
)

// Page is one page of a list and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// EncodeCursor returns the opaque cursor (base64url of JSON) for key, the
// sort key of a page's last row.
func EncodeCursor(key any) string {
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into key; anything else
// is ErrInvalidCursor.
func DecodeCursor(s string, key any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, key) != nil {
		return ErrInvalidCursor
	}
	return nil
}
