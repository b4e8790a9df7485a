package query_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/query"
)

type cursorKey struct {
	CreatedAt time.Time `json:"t"`
	ID        uuid.UUID `json:"id"`
}

// A cursor is one this API returned, or it is refused: the decoding is
// strict and every member of the key is required.
func TestDecodeCursorTakesOnlyWhatEncodeCursorMakes(t *testing.T) {
	t.Parallel()
	key := cursorKey{CreatedAt: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), ID: uuid.MustParse("0193a3e0-0000-7000-8000-000000000001")}
	cursor := query.EncodeCursor(key)
	var got cursorKey
	if err := query.DecodeCursor(cursor, &got); err != nil || !got.CreatedAt.Equal(key.CreatedAt) || got.ID != key.ID {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, bad := range map[string]string{
		"{}":                    raw(`{}`),
		"null":                  raw(`null`),
		"an unknown field":      raw(`{"x":1}`),
		"a field missing":       raw(`{"id":"0193a3e0-0000-7000-8000-000000000001"}`),
		"a field twice":         raw(`{"t":"2026-11-26T10:00:00.123456Z","id":"0193a3e0-0000-7000-8000-000000000001","id":"0193a3e0-0000-7000-8000-000000000001"}`),
		"names in another case": raw(`{"T":"2026-11-26T10:00:00.123456Z","ID":"0193a3e0-0000-7000-8000-000000000001"}`),
		"a UUID in braces":      raw(`{"t":"2026-11-26T10:00:00.123456Z","id":"{0193a3e0-0000-7000-8000-000000000001}"}`),
		"trailing data":         raw(`{"t":"2026-11-26T10:00:00.123456Z","id":"0193a3e0-0000-7000-8000-000000000001"} `),
		"an array":              raw(`[]`),
		"padded base64":         cursor + "=",
		"not base64":            "not-a-cursor!",
		"empty JSON":            raw(``),
	} {
		var k cursorKey
		if err := query.DecodeCursor(bad, &k); !errors.Is(err, query.ErrInvalidCursor) {
			t.Errorf("%s (%s): %v, want ErrInvalidCursor", name, bad, err)
		}
	}
}
