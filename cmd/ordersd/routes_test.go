package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/api"
	"github.com/orders-reference/orders/eventstore/memory"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// The router and the OpenAPI document cannot drift: every route of a
// server running every role is in the document, and every operation in the
// document is a route (asset folders of the viewers aside).
func TestRouterMatchesOpenAPI(t *testing.T) {
	verifier, err := payment.NewVerifier([]string{"a-test-secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := payment.NewSigner("a-test-secret")
	fake := fakepay.New(fakepay.Options{Signer: signer})
	defer fake.Close()
	r := chi.NewRouter()
	a := httpapi.New(httpapi.Config{Webhooks: verifier, Events: memory.New()})
	mount(r, []part{
		{mount: a.MountCommands},
		{mount: a.MountQueries},
		{mount: func(r chi.Router) { r.Mount("/fakepay", fake.Handler()) }},
	}, http.NotFoundHandler(), http.NotFoundHandler())

	var served []string
	err = chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasSuffix(route, "/*") { // the viewers' asset folders
			return nil
		}
		served = append(served, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.Spec(), &doc); err != nil {
		t.Fatal(err)
	}
	var described []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(described)
	for _, s := range served {
		if !slices.Contains(described, s) {
			t.Errorf("served but not in openapi.json: %s", s)
		}
	}
	for _, d := range described {
		if !slices.Contains(served, d) {
			t.Errorf("in openapi.json but not served: %s", d)
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes walked: %v", len(served), served)
	}
}
