// Package logtest captures log output in tests: a sink that loggers write
// to from any goroutine, read back as text, as lines or as JSON records.
package logtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Sink is an io.Writer for log handlers, safe for concurrent writers. The
// zero value is empty and ready to use.
type Sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns everything written so far.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Reset forgets everything written so far.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
}

// Lines returns the non-empty lines written so far.
func (s *Sink) Lines() []string {
	var lines []string
	for _, l := range strings.Split(s.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// Records returns each line decoded as a JSON object (what slog's JSON
// handler writes), failing t on a line that is not one.
func (s *Sink) Records(t testing.TB) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, l := range s.Lines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON record: %q: %v", l, err)
		}
		recs = append(recs, rec)
	}
	return recs
}
