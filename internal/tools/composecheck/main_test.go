package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepositoryComposeFile(t *testing.T) {
	var out strings.Builder
	if err := check(context.Background(), "../../../docker-compose.yml", &out); err != nil {
		t.Fatal(err)
	}
	// The default stack has no profile services; each profile is checked
	// on its own as well as with every profile.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "profiles []") || !strings.Contains(lines[len(lines)-1], "profiles [*]") {
		t.Fatalf("output:\n%s", out.String())
	}
	if strings.Contains(lines[0], "kurrentdb") {
		t.Errorf("the default stack runs a kurrentdb service: %s", lines[0])
	}
	if !strings.Contains(out.String(), "profiles [kurrentdb]") {
		t.Errorf("profile kurrentdb not checked on its own:\n%s", out.String())
	}
}

func TestFailures(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"dependency in another profile": {`
services:
  a: {image: x}
  b:
    image: x
    profiles: [p1]
    depends_on:
      c: {condition: service_healthy}
  c: {image: x, profiles: [p2]}
`, `profiles [p1]`},
		"same host port": {`
services:
  a: {image: x, ports: ["8000:8000"]}
  b: {image: x, profiles: [p], ports: ["127.0.0.1:8000:9000"]}
`, `both publish host port 8000/tcp`},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "compose.yml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			err := check(context.Background(), path, new(strings.Builder))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestDistinctAddressesMayShareAPort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compose.yml")
	file := `
services:
  a: {image: x, ports: ["127.0.0.1:8000:8000"]}
  b: {image: x, ports: ["127.0.0.2:8000:8000", "8000:8000/udp"]}
`
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := check(context.Background(), path, new(strings.Builder)); err != nil {
		t.Fatal(err)
	}
}
