package httpx_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/internal/httpx"
)

// hiddenRune returns the first code point in s that would not show as
// itself (a control, a bidirectional control, an invisible or
// default-ignorable code point, a line or paragraph separator), if any.
func hiddenRune(s string) (rune, bool) {
	for _, r := range s {
		if r != '\n' && unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point) {
			return r, true
		}
	}
	return 0, false
}

// Every place a problem or a log line repeats what a client sent (a field
// name, nested or not, a path, a method, a query parameter's name)
// repeats at most httpx.MaxEcho bytes of it, with its length, and escapes
// what would not show as itself: megabyte inputs are answered in a few
// hundred bytes (a few KB for 500 names, of which errors shows 20), with
// no raw bidirectional control in the answer or the log line.
func TestEchoesAreBounded(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := chi.NewRouter()
	r.Use(httpx.Observe(log, nil))
	r.NotFound(httpx.NotFound)
	r.MethodNotAllowed(httpx.MethodNotAllowed(r))
	r.With(httpx.Query()).Post("/outcomes", func(w http.ResponseWriter, req *http.Request) {
		var v outcome
		if httpx.DecodeJSON(w, req, &v) {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	r.With(httpx.Query(httpx.Param{Name: "limit", Max: 3})).Get("/orders/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	k := strings.Repeat("k", 1_000_000)
	rlo := strings.Repeat("\u202e", 300_000)
	manyNames := make([]string, 500)
	for i := range manyNames {
		manyNames[i] = fmt.Sprintf("%d%s=1", i, strings.Repeat("\u202e", 1000))
	}
	for _, c := range []struct {
		name, method, target, body string
		status                     int
	}{
		{"unknown field", "POST", "/outcomes", `{"` + k + `":1}`, http.StatusBadRequest},
		{"unknown field of bidi controls", "POST", "/outcomes", `{"` + rlo + `":1}`, http.StatusBadRequest},
		{"unknown nested field", "POST", "/outcomes", `{"lines":[{"` + k + `":1}]}`, http.StatusBadRequest},
		{"unknown field, escaped", "POST", "/outcomes", `{"` + strings.Repeat(`\u202e`, 150_000) + `":1}`, http.StatusBadRequest},
		{"field twice", "POST", "/outcomes", `{"note":"a","note":"b","` + k + `":1}`, http.StatusBadRequest},
		{"long path", "GET", "/" + strings.Repeat("x", 900_000), "", http.StatusNotFound},
		{"path of bidi controls", "GET", "/" + strings.Repeat("%e2%80%ae", 100_000), "", http.StatusNotFound},
		{"unserved method, path of bidi controls", "DELETE", "/orders/" + strings.Repeat("%e2%80%ae", 100_000), "", http.StatusMethodNotAllowed},
		{"long method", strings.Repeat("FOO", 100_000), "/orders/1", "", http.StatusMethodNotAllowed},
		{"unknown query parameter", "GET", "/orders/1?" + k + "=1", "", http.StatusBadRequest},
		{"unknown query parameters of bidi controls", "GET", "/orders/1?" + strings.Join(manyNames, "&"), "", http.StatusBadRequest},
		{"long query value", "GET", "/orders/1?limit=" + k, "", http.StatusBadRequest},
	} {
		logs.Reset()
		req := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		body := rec.Body.String()
		var p map[string]any
		if rec.Code != c.status || json.Unmarshal(rec.Body.Bytes(), &p) != nil || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %.300s, want a %d problem", c.name, rec.Code, body, c.status)
			continue
		}
		if len(body) > 1024 && !(strings.Contains(c.name, "parameters") && len(body) < 4096) {
			t.Errorf("%s: a problem of %d bytes: %.300s", c.name, len(body), body)
		}
		// Decoded, the problem's strings (detail, errors) show no hidden
		// code point: what was sent shows escaped.
		decoded, _ := json.Marshal(p)
		if r, ok := hiddenRune(strings.ReplaceAll(string(decoded), `\u`, "")); ok {
			t.Errorf("%s: the problem holds U+%04X: %.300s", c.name, r, body)
		}
		var text strings.Builder
		for _, v := range p {
			fmt.Fprint(&text, v)
		}
		if r, ok := hiddenRune(text.String()); ok {
			t.Errorf("%s: the problem holds U+%04X: %.300s", c.name, r, body)
		}
		line := logs.String()
		if len(line) > 1024 || strings.Count(line, "\n") != 1 {
			t.Errorf("%s: logged %d bytes: %.300s", c.name, len(line), line)
		}
		var rec2 map[string]any
		if err := json.Unmarshal([]byte(line), &rec2); err != nil {
			t.Errorf("%s: the log line is not a record: %.300s", c.name, line)
			continue
		}
		for _, attr := range []string{"method", "path"} {
			if r, ok := hiddenRune(fmt.Sprint(rec2[attr])); ok {
				t.Errorf("%s: logged %s with U+%04X: %.300s", c.name, attr, r, line)
			}
		}
	}
}

// A body sent with a content coding (RFC 9110 §8.4) is 415 with
// Accept-Encoding: identity, wherever a body is read: it is never read as
// if it were not encoded (a plain body labelled gzip), nor refused as
// what it is not (a real gzip body as "not valid UTF-8").
func TestBodiesWithAContentCodingAreRefused(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"note":"a"}`))
	_ = zw.Close()
	for _, c := range []struct {
		name      string
		body      string
		encodings []string
		ok        bool
	}{
		{"none", `{"note":"a"}`, nil, true},
		{"identity", `{"note":"a"}`, []string{"identity"}, true},
		{"IDENTITY", `{"note":"a"}`, []string{"IDENTITY"}, true},
		{"empty", `{"note":"a"}`, []string{""}, true},
		{"a real gzip body", gz.String(), []string{"gzip"}, false},
		{"a plain body labelled gzip", `{"note":"a"}`, []string{"gzip"}, false},
		{"br", `{"note":"a"}`, []string{"br"}, false},
		{"x-gzip", `{"note":"a"}`, []string{"x-gzip"}, false},
		{"a list", `{"note":"a"}`, []string{"identity, deflate"}, false},
		{"two fields", `{"note":"a"}`, []string{"identity", "zstd"}, false},
		{"an unknown coding", `{"note":"a"}`, []string{"rot13"}, false},
	} {
		for _, read := range []string{"DecodeJSON", "ReadBody"} {
			req := post(c.body)
			for _, e := range c.encodings {
				req.Header.Add("Content-Encoding", e)
			}
			rec := httptest.NewRecorder()
			if read == "DecodeJSON" {
				var v outcome
				if httpx.DecodeJSON(rec, req, &v) {
					rec.WriteHeader(http.StatusNoContent)
				}
			} else if _, p := httpx.ReadBody(rec, req); p != nil {
				httpx.WriteProblem(rec, *p)
			} else {
				rec.WriteHeader(http.StatusNoContent)
			}
			switch {
			case c.ok && rec.Code != http.StatusNoContent:
				t.Errorf("%s, %s: %d %s", read, c.name, rec.Code, rec.Body)
			case c.ok:
			case rec.Code != http.StatusUnsupportedMediaType || rec.Header().Get("Accept-Encoding") != "identity":
				t.Errorf("%s, %s: %d (Accept-Encoding %q) %s, want 415 with Accept-Encoding: identity", read, c.name, rec.Code,
					rec.Header().Get("Accept-Encoding"), rec.Body)
			default:
				if p := problemOf(t, rec); p.Type != httpx.TypeUnsupportedMediaType || len(p.Errors) != 1 || p.Errors["Content-Encoding"] == "" {
					t.Errorf("%s, %s: %s, want errors naming Content-Encoding", read, c.name, rec.Body)
				}
			}
		}
	}
}

// A body whose declared length is over MaxBody is refused with 413 at
// once, before a byte of it is sent: neither the client nor the server
// waits for a body that will not be taken.
func TestDeclaredLengthOverTheLimitIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v outcome
		if httpx.DecodeJSON(w, r, &v) {
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	for _, length := range []int{httpx.MaxBody + 1, 5_000_000, 1 << 40} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		// The headers only: the body never comes.
		fmt.Fprintf(conn, "POST /outcomes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", length)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("Content-Length %d: no answer before the body: %v", length, err)
		}
		var p struct{ Type string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || p.Type != httpx.TypeBodyTooLarge {
			t.Errorf("Content-Length %d: %d %s, want 413", length, resp.StatusCode, p.Type)
		}
	}
	// A declared length within the limit is read as before.
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"note":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("a small body: %d", resp.StatusCode)
	}
}

// AcceptJSON lets through a request that accepts application/json, the
// type a success is sent as (or says nothing), read as RFC 9110 §12.5.1
// reads Accept, and answers any other 406, as a problem: one that accepts
// only application/problem+json too.
func TestAcceptJSON(t *testing.T) {
	t.Parallel()
	h := httpx.AcceptJSON(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, c := range []struct {
		accept []string
		ok     bool
	}{
		{nil, true},
		{[]string{""}, true},
		{[]string{"application/json"}, true},
		{[]string{"Application/JSON"}, true},
		{[]string{"*/*"}, true},
		{[]string{"*"}, true},
		{[]string{"application/*"}, true},
		{[]string{"application/json;charset=utf-8"}, true},
		{[]string{`application/json; charset="UTF-8"`}, true},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true}, // a browser
		{[]string{"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}, true},
		{[]string{"text/plain", "application/json"}, true}, // two fields: one list
		{[]string{"application/xml, application/json;q=0.1"}, true},
		{[]string{"application/json;\tq=0.5"}, true},
		{[]string{"application/xml"}, false},
		{[]string{"text/html"}, false},
		{[]string{"text/*"}, false},
		{[]string{"application/json;q=0"}, false},
		{[]string{"application/json;q=0.000"}, false},
		{[]string{"application/json;q=0, application/problem+json;q=0"}, false},
		{[]string{"*/*;q=0"}, false},
		{[]string{"*/*, application/json;q=0, application/problem+json;q=0"}, false}, // the most specific range wins
		{[]string{"application/*, application/json;q=0, application/problem+json;q=0"}, false},
		{[]string{"application/json;version=2"}, false}, // a representation this is not
		// A weight that is not a qvalue (RFC 9110 §12.4.2) reads as 0.
		{[]string{"application/json;q=1.0001"}, false},
		{[]string{"application/json;q=0.0001"}, false},
		{[]string{"application/json;q="}, false},
		{[]string{"application/json;q=abc"}, false},
		{[]string{"application/json;q=0;q=1"}, false},
		{[]string{"application/json;q=1.000"}, true},
		{[]string{"application/json;q=0.5, text/html;q=2"}, true},
		{[]string{"application/json;charset=latin1"}, false},
		{[]string{"text/plain", "application/xml"}, false},
		{[]string{"json"}, false},
		{[]string{"application/json;q=x"}, false},
		// Success answers are application/json: accepting only problems
		// is not enough.
		{[]string{"application/problem+json"}, false},
		{[]string{"application/json;q=0, application/problem+json"}, false},
		{[]string{"application/json;q=0, */*;q=0.1"}, false},
		// The most specific range decides: the type first, parameters
		// only between ranges of the same type.
		{[]string{"*/*;charset=utf-8, application/json;q=0"}, false},
		{[]string{"application/*;charset=utf-8, application/json;q=0"}, false},
		{[]string{"*/*;charset=utf-8;q=0, application/*"}, true},
		{[]string{"*/*;charset=utf-8;q=0, application/json"}, true},
		{[]string{"application/json;charset=utf-8;q=0, application/json"}, false},
		{[]string{"application/json, application/json;charset=utf-8;q=0.5"}, true},
		{[]string{"application/*;q=0, */*;charset=utf-8"}, false},
		{[]string{"application/*, */*;charset=utf-8;q=0"}, true},
	} {
		req := httptest.NewRequest("GET", "/products", nil)
		for _, a := range c.accept {
			req.Header.Add("Accept", a)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case c.ok && rec.Code != http.StatusNoContent:
			t.Errorf("Accept %q: %d %s", c.accept, rec.Code, rec.Body)
		case c.ok:
		case rec.Code != http.StatusNotAcceptable || rec.Header().Get("Content-Type") != "application/problem+json":
			t.Errorf("Accept %q: %d %s, want a 406 problem", c.accept, rec.Code, rec.Body)
		default:
			if p := problemOf(t, rec); p.Type != httpx.TypeNotAcceptable || p.Errors["Accept"] == "" {
				t.Errorf("Accept %q: %s, want errors naming Accept", c.accept, rec.Body)
			}
		}
	}
}

// NoBody refuses any body on a route that takes none: 415 for a content
// coding, 413 over MaxBody, 400 otherwise (chunked too), and lets an
// empty one through whatever its Content-Type.
func TestNoBody(t *testing.T) {
	t.Parallel()
	h := httpx.NoBody(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, c := range []struct {
		name    string
		body    io.Reader
		length  int64 // -1: unknown (chunked)
		headers []string
		status  int
		field   string
	}{
		{"no body", nil, 0, nil, http.StatusNoContent, ""},
		{"empty, text/plain", strings.NewReader(""), 0, []string{"Content-Type", "text/plain"}, http.StatusNoContent, ""},
		{"empty, chunked", strings.NewReader(""), -1, nil, http.StatusNoContent, ""},
		{"a body", strings.NewReader("x"), 1, []string{"Content-Type", "text/plain"}, http.StatusBadRequest, "body"},
		{"a JSON body", strings.NewReader("{}"), 2, []string{"Content-Type", "application/json"}, http.StatusBadRequest, "body"},
		{"a chunked body", strings.NewReader("x"), -1, nil, http.StatusBadRequest, "body"},
		{"a gzip body", strings.NewReader("x"), 1, []string{"Content-Encoding", "gzip"}, http.StatusUnsupportedMediaType, "Content-Encoding"},
		{"2 MB", strings.NewReader(strings.Repeat("x", 2<<20)), 2 << 20, nil, http.StatusRequestEntityTooLarge, "body"},
	} {
		req := httptest.NewRequest("POST", "/orders/x/cancel", c.body)
		req.ContentLength = c.length
		for i := 0; i+1 < len(c.headers); i += 2 {
			req.Header.Add(c.headers[i], c.headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, rec.Code, rec.Body, c.status)
			continue
		}
		if c.field != "" {
			if p := problemOf(t, rec); p.Errors[c.field] == "" {
				t.Errorf("%s: %s, want errors naming %s", c.name, rec.Body, c.field)
			}
		}
	}
}
