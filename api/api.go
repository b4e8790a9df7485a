// Package api holds the OpenAPI 3 description of the Orders HTTP API and
// serves it with its two viewers, Swagger UI and ReDoc, whose assets are
// embedded in the binary (see ui/VENDORED.md): nothing loads from a CDN.
//
// The fake payment provider is not part of that API (a default ordersd
// runs it in process and serves none of it): its HTTP API, served by
// cmd/fakepay and under /fakepay by an ordersd that runs the fakepay role
// without the process role, has a document of its own, FakePaySpec.
package api

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"
)

//go:embed openapi.json
var spec []byte

//go:embed fakepay.openapi.json
var fakePaySpec []byte

//go:embed ui
var ui embed.FS

// Spec returns the OpenAPI document (JSON).
func Spec() []byte { return spec }

// FakePaySpec returns the OpenAPI document (JSON) of the fake payment
// provider's HTTP API (payment/fakepay).
func FakePaySpec() []byte { return fakePaySpec }

// Mount serves GET /openapi.json, Swagger UI at /docs and ReDoc at /redoc.
func Mount(r chi.Router) {
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(spec)
	})
	viewer(r, "/docs", "ui/swagger")
	viewer(r, "/redoc", "ui/redoc")
}

// viewer serves the folder dir of the embedded assets under prefix: its
// index.html at prefix itself.
func viewer(r chi.Router, prefix, dir string) {
	sub, err := fs.Sub(ui, dir)
	if err != nil {
		panic(err) // the folders are embedded above: a typo, caught by the tests
	}
	files := http.StripPrefix(prefix+"/", http.FileServerFS(sub))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	r.Get(prefix, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	})
	r.Get(prefix+"/*", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, req)
	})
}
