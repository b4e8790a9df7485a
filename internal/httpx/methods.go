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
// computes once a custom handler is set (and answers any method it does
// not know with 405, whatever the path), so it is computed here from
// routes. A path that no route serves, whatever the method, is 404
// (NotFound): there is no resource whose methods an Allow could list.
func MethodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
			path = rctx.RoutePath // under a mounted router: the path it routes
		}
		var allowed []string
		for _, m := range methods {
			probe := m
			if m == http.MethodHead {
				probe = http.MethodGet
			}
			if routes.Match(chi.NewRouteContext(), probe, path) {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) == 0 {
			NotFound(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		WriteProblem(w, Problem{Type: TypeMethodNotAllowed,
			Detail: Clip(r.Method) + " is not served at " + Quote(r.URL.Path) + "; allowed: " + strings.Join(allowed, ", ") + " (see /docs)."})
	}
}
