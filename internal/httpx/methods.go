package httpx

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// methods are the methods an Allow header may list.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// MethodNotAllowed answers 405 as RFC 9110 §15.5.6 requires: an Allow
// header listing the methods the target serves (HEAD wherever GET is, see
// chi's middleware.GetHead), and the problem. chi drops the Allow header it
// computes once a custom handler is set, so it is computed here from
// routes.
func MethodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range methods {
			probe := m
			if m == http.MethodHead {
				probe = http.MethodGet
			}
			if routes.Match(chi.NewRouteContext(), probe, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		WriteProblem(w, Problem{Type: TypeMethodNotAllowed, Detail: r.Method + " is not served at " + r.URL.Path + " (see /docs)."})
	}
}
