// Package apitest is the one HTTP test harness of Orders: send a request,
// decode the answer, assert problems, run tables of cases. The API tests
// (httpapi) and the end-to-end tests (cmd/ordersd) share it.
package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Response is an answer as tests look at it: Body is the JSON object
// decoded (nil if the body is not one), Raw the body as sent.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Client sends requests to a server under test.
type Client struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:8080".
	URL string
	// Check, if set, is given every exchange (the end-to-end tests check
	// it against the OpenAPI document).
	Check func(t testing.TB, req *http.Request, resp *http.Response, body []byte)
}

// Do sends a request with a JSON body and header name/value pairs, and
// returns the answer. A pair replaces the header Do sets itself
// (Content-Type); a name given in two pairs is sent as two fields. Every
// error answer must be an RFC 9457 problem. A transport error fails t
// without stopping it (goroutines call Do) and returns the zero Response.
func (c *Client) Do(t testing.TB, method, path, body string, headers ...string) Response {
	t.Helper()
	req, err := http.NewRequest(method, c.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	given := map[string]bool{}
	for i := 0; i+1 < len(headers); i += 2 {
		name := http.CanonicalHeaderKey(headers[i])
		if given[name] {
			req.Header.Add(name, headers[i+1])
			continue
		}
		given[name] = true
		req.Header.Set(name, headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return Response{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.Body)
	if resp.StatusCode >= 400 && method != http.MethodHead && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s: %d with content type %q", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if c.Check != nil {
		c.Check(t, req, resp, raw)
	}
	return out
}

// WantProblem fails t unless r is a problem of the given status and type.
func WantProblem(t testing.TB, r Response, status int, typ string) {
	t.Helper()
	if r.Status != status || r.Body["type"] != typ || r.Body["status"] != float64(status) || r.Body["title"] == "" {
		t.Fatalf("want a %d %s problem, got %d %s", status, typ, r.Status, r.Raw)
	}
}

// Case is one request and the answer it must get: a status and, for a
// problem, its type.
type Case struct {
	Name               string
	Method, Path, Body string
	Headers            []string
	Status             int
	Type               string // problem type, if the answer is a problem
	Check              func(t *testing.T, r Response)
}

// Run runs cases as subtests against c.
func Run(t *testing.T, c *Client, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			r := c.Do(t, tc.Method, tc.Path, tc.Body, tc.Headers...)
			if tc.Type != "" {
				WantProblem(t, r, tc.Status, tc.Type)
			} else if r.Status != tc.Status {
				t.Fatalf("%s %s: %d %s, want %d", tc.Method, tc.Path, r.Status, r.Raw, tc.Status)
			}
			if tc.Check != nil {
				tc.Check(t, r)
			}
		})
	}
}
