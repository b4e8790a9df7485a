package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/orders-reference/orders/internal/pgtest"
)

func ctl(t *testing.T, url string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd(url)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("ordersctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestMigrateUpAndStatus(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if out := ctl(t, url, "migrate", "status"); !strings.Contains(out, "pending") || strings.Contains(out, "applied") {
		t.Fatalf("status before up:\n%s", out)
	}
	if out := ctl(t, url, "migrate", "up"); !strings.Contains(out, "applied 00001") {
		t.Fatalf("up:\n%s", out)
	}
	if out := ctl(t, url, "migrate", "up"); !strings.Contains(out, "no pending migrations") {
		t.Fatalf("second up:\n%s", out)
	}
	out := ctl(t, url, "--database-url", url, "migrate", "status")
	if !strings.Contains(out, "00001") || !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Fatalf("status after up:\n%s", out)
	}
}
