package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// Connect's pools encode uuids and arrays of them in binary, and they
// arrive as the same values.
func TestConnectEncodesUUIDs(t *testing.T) {
	ctx := context.Background()
	pool, err := pg.Connect(ctx, pgtest.NewDatabase(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	one := uuid.New()
	many := []uuid.UUID{uuid.New(), uuid.Nil, uuid.New()}
	var text string
	var texts []string
	if err := pool.QueryRow(ctx, `SELECT $1::uuid::text, $2::uuid[]::text[]`, one, many).Scan(&text, &texts); err != nil {
		t.Fatal(err)
	}
	if text != one.String() || len(texts) != len(many) {
		t.Fatalf("got %s %v, want %s %v", text, texts, one, many)
	}
	for i, s := range texts {
		if s != many[i].String() {
			t.Fatalf("element %d: %s, want %s", i, s, many[i])
		}
	}
	var back []uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT $1::uuid[]`, many).Scan(&back); err != nil || len(back) != 3 || back[0] != many[0] || back[1] != uuid.Nil {
		t.Fatalf("round trip %v %v", back, err)
	}
	// The binary plan is the one in use.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	buf, err := conn.Conn().TypeMap().Encode(2950 /* uuid */, 1 /* binary */, one, nil)
	if err != nil || len(buf) != 16 || [16]byte(buf) != [16]byte(one) {
		t.Fatalf("binary encoding %x %v", buf, err)
	}
}
