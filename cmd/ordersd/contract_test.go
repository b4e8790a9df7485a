package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/orders-reference/orders/api"
)

// contract checks answers against the OpenAPI document: the route, the
// status and the body's schema must all be described there.
type contract struct {
	router routers.Router
	name   string // of the document, for messages
}

// plainDecoders let the validator read the viewers' pages and the
// OpenMetrics answer as text (the library's registry is global: register
// once).
var plainDecoders sync.Once

func newContract(t *testing.T) *contract {
	t.Helper()
	return newContractFor(t, "openapi.json", api.Spec())
}

// newContractFor checks answers against the OpenAPI document spec (the
// fake payment provider's has its own).
func newContractFor(t *testing.T, name string, spec []byte) *contract {
	t.Helper()
	plainDecoders.Do(func() {
		for _, plain := range []string{"text/html", "application/openmetrics-text"} {
			openapi3filter.RegisterBodyDecoder(plain, openapi3filter.PlainBodyDecoder)
		}
	})
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil // match any host
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{router: router, name: name}
}

// check reports (without stopping the test: it may run in any goroutine)
// an answer that the document does not describe.
func (c *contract) check(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if strings.HasPrefix(req.URL.Path, "/docs/") || strings.HasPrefix(req.URL.Path, "/redoc/") {
		return // the viewers' assets
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return // an unknown route, answered as such
		}
		t.Errorf("contract: %s %s answered %d but is not in %s: %v", req.Method, req.URL.Path, resp.StatusCode, c.name, err)
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("contract: %s %s → %d does not match %s: %v\n%.300s", req.Method, req.URL.Path, resp.StatusCode, c.name, err, body)
	}
}
