package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/api"
)

// The document is valid OpenAPI 3 with every reference resolved.
func TestSpecIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(doc.Paths.Map()); n < 20 {
		t.Fatalf("%d paths", n)
	}
}

// The document and both viewers are served from the binary; the pages load
// nothing from another host.
func TestDocumentsAreServedFromTheBinary(t *testing.T) {
	r := chi.NewRouter()
	api.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	cases := []struct{ path, contentType, contains string }{
		{"/openapi.json", "application/json", `"openapi": "3.0.3"`},
		{"/docs", "text/html", "/docs/swagger-ui-bundle.js"},
		{"/docs/swagger-ui-bundle.js", "javascript", "SwaggerUIBundle"},
		{"/docs/swagger-ui.css", "text/css", ".swagger-ui"},
		{"/docs/init.js", "javascript", "/openapi.json"},
		{"/redoc", "text/html", "/redoc/redoc.standalone.js"},
		{"/redoc/redoc.standalone.js", "javascript", "Redoc"},
		{"/redoc/init.js", "javascript", "/openapi.json"},
	}
	for _, c := range cases {
		status, ct, body := get(c.path)
		if status != http.StatusOK || !strings.Contains(ct, c.contentType) || !strings.Contains(body, c.contains) {
			t.Errorf("%s: %d %q, body has %q: %v", c.path, status, ct, c.contains, strings.Contains(body, c.contains))
		}
		if c.contentType == "text/html" || strings.HasSuffix(c.path, "init.js") {
			// Our pages: every script, style and document comes from here.
			for _, remote := range []string{"http://", "https://", "//cdn", "unpkg.com", "jsdelivr", "googleapis"} {
				if strings.Contains(body, remote) {
					t.Errorf("%s refers to another host (%s)", c.path, remote)
				}
			}
		}
	}
	if status, _, _ := get("/docs/nope.js"); status != http.StatusNotFound {
		t.Errorf("unknown asset: %d", status)
	}
}
