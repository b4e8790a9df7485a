package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/api"
	"github.com/orders-reference/orders/internal/httpx"
)

// documents are the OpenAPI documents of the package: the product's, and
// the fake payment provider's.
var documents = []struct {
	name     string
	spec     []byte
	minPaths int
}{
	{"openapi.json", api.Spec(), 16},
	{"fakepay.openapi.json", api.FakePaySpec(), 4},
}

// Each document is valid OpenAPI 3 with every reference resolved.
func TestSpecIsValid(t *testing.T) {
	for _, d := range documents {
		doc, err := openapi3.NewLoader().LoadFromData(d.spec)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if n := len(doc.Paths.Map()); n < d.minPaths {
			t.Fatalf("%s: %d paths", d.name, n)
		}
	}
}

// The product's document describes only what ordersd serves: the fake
// provider's endpoints are in its own document.
func TestFakeProviderHasItsOwnDocument(t *testing.T) {
	product, fake := load(t, api.Spec()), load(t, api.FakePaySpec())
	for path := range product.Paths {
		if strings.HasPrefix(path, "/fakepay") || strings.HasPrefix(path, "/payments") {
			t.Errorf("openapi.json describes the fake provider's %s", path)
		}
	}
	for _, path := range []string{"/payments", "/payments/{id}", "/payments/{id}/refund"} {
		if _, ok := fake.Paths[path]; !ok {
			t.Errorf("fakepay.openapi.json does not describe %s", path)
		}
	}
}

// Swagger UI and ReDoc list an operation under each of its tags (and ReDoc
// a tag under each x-tagGroups entry that names it): every operation has
// exactly one declared tag, so it appears once. Each operation also has an
// id, a summary, a description and its security stated: the admin secret
// under /admin/, none elsewhere.
func TestEveryOperationAppearsOnce(t *testing.T) {
	for _, d := range documents {
		doc := load(t, d.spec)
		declared := map[string]bool{}
		for _, tag := range doc.Tags {
			if declared[tag.Name] {
				t.Errorf("%s: tag %q declared twice", d.name, tag.Name)
			}
			declared[tag.Name] = true
		}
		grouped := map[string]int{}
		for _, g := range doc.TagGroups {
			for _, name := range g.Tags {
				grouped[name]++
			}
		}
		for name := range declared {
			if len(doc.TagGroups) > 0 && grouped[name] != 1 {
				t.Errorf("%s: tag %q is in %d x-tagGroups", d.name, name, grouped[name])
			}
		}
		used, ids := map[string]bool{}, map[string]bool{}
		for path, item := range doc.Paths {
			for method, op := range item {
				name := d.name + ": " + strings.ToUpper(method) + " " + path
				if len(op.Tags) != 1 || !declared[op.Tags[0]] {
					t.Errorf("%s: tags %v, want one declared tag", name, op.Tags)
				}
				for _, tag := range op.Tags {
					used[tag] = true
				}
				if op.OperationID == "" || ids[op.OperationID] {
					t.Errorf("%s: operationId %q missing or not unique", name, op.OperationID)
				}
				ids[op.OperationID] = true
				if op.Summary == "" || op.Description == "" {
					t.Errorf("%s: no summary or description", name)
				}
				want := "[]" // public
				if strings.HasPrefix(path, "/admin/") {
					want = `[{"AdminSecret":[]}]`
				}
				if op.Security != want {
					t.Errorf("%s: security %q, want %s", name, op.Security, want)
				}
			}
		}
		for name := range declared {
			if !used[name] {
				t.Errorf("%s: tag %q has no operation", d.name, name)
			}
		}
	}
}

// What every route answers whatever its operation, each operation lists:
// 405 (a method the path does not serve, with Allow) by the one shared
// response, and, where it answers JSON, 406 (an Accept that accepts no
// JSON; shared too) and 400 (a query parameter it does not take). The
// OpenAPI document itself is served as it is, whatever is asked.
func TestEveryOperationListsTheTransportAnswers(t *testing.T) {
	for _, d := range documents {
		doc, err := openapi3.NewLoader().LoadFromData(d.spec)
		if err != nil {
			t.Fatal(err)
		}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				name := d.name + ": " + method + " " + path
				want := map[string]string{"405": "MethodNotAllowed"}
				for _, status := range []string{"200", "201"} {
					if r := op.Responses.Value(status); r != nil && r.Value.Content["application/json"] != nil && path != "/openapi.json" {
						want["406"] = "NotAcceptable"
						if op.Responses.Value("400") == nil {
							t.Errorf("%s: no 400", name)
						}
					}
				}
				for status, component := range want {
					if r := op.Responses.Value(status); r == nil || r.Ref != "#/components/responses/"+component {
						t.Errorf("%s: %s is not the shared %s response", name, status, component)
					}
				}
			}
		}
	}
}

// The Problem schema lists exactly the problem types the service answers
// with; the fake provider's, some of them.
func TestProblemTypesAreTheCatalog(t *testing.T) {
	catalog := slices.Sorted(maps.Keys(httpx.Catalog()))
	for _, d := range documents {
		doc, err := openapi3.NewLoader().LoadFromData(d.spec)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, v := range doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Enum {
			types = append(types, v.(string))
		}
		slices.Sort(types)
		if d.name == "openapi.json" && !slices.Equal(types, catalog) {
			t.Errorf("%s: problem types %v, the catalog has %v", d.name, types, catalog)
		}
		for _, typ := range types {
			if !slices.Contains(catalog, typ) {
				t.Errorf("%s: problem type %s is not in the catalog", d.name, typ)
			}
		}
	}
}

// The document and both viewers are served from the binary, and nothing
// they serve makes the browser fetch anything from another host: our pages
// name no other host at all, the vendored bundles and style sheet load no
// image, font or style sheet from one, and the documents name other hosts
// only where the viewers show a link (see TestDocumentsFetchNothing).
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
		{"/docs/init.js", "javascript", "validatorUrl: null"}, // else a badge from validator.swagger.io
		{"/redoc", "text/html", "/redoc/redoc.standalone.js"},
		{"/redoc/redoc.standalone.js", "javascript", "Redoc"},
		{"/redoc/init.js", "javascript", "/openapi.json"},
	}
	for _, c := range cases {
		status, ct, body := get(c.path)
		if status != http.StatusOK || !strings.Contains(ct, c.contentType) || !strings.Contains(body, c.contains) {
			t.Errorf("%s: %d %q, body has %q: %v", c.path, status, ct, c.contains, strings.Contains(body, c.contains))
		}
	}
	if status, _, _ := get("/docs/nope.js"); status != http.StatusNotFound {
		t.Errorf("unknown asset: %d", status)
	}

	// Every page, and every file a page loads, as the browser gets them.
	ours := map[string]bool{}     // written here: no other host at all
	vendored := map[string]bool{} // bundles: no fetch from another host
	for _, page := range []string{"/docs", "/redoc"} {
		ours[page] = true
		_, _, body := get(page)
		for _, m := range pageRefs.FindAllStringSubmatch(body, -1) {
			ref := m[1]
			if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
				t.Errorf("%s loads %s, not a path on this server", page, ref)
				continue
			}
			if strings.HasSuffix(ref, "/init.js") {
				ours[ref] = true
			} else {
				vendored[ref] = true
			}
		}
	}
	if len(ours) != 4 || len(vendored) != 3 {
		t.Fatalf("the pages load %v and %v", slices.Sorted(maps.Keys(ours)), slices.Sorted(maps.Keys(vendored)))
	}
	for path := range ours {
		status, _, body := get(path)
		if status != http.StatusOK {
			t.Errorf("%s: %d", path, status)
		}
		if m := anyHost.FindString(body); m != "" {
			t.Errorf("%s names another host: %q", path, m)
		}
	}
	for path := range vendored {
		status, _, body := get(path)
		if status != http.StatusOK {
			t.Errorf("%s: %d", path, status)
		}
		for _, re := range remoteFetches {
			if m := re.FindString(body); m != "" {
				t.Errorf("%s fetches from another host: %q", path, m)
			}
		}
	}
	if _, _, body := get("/openapi.json"); body != string(api.Spec()) {
		t.Error("/openapi.json is not the embedded document")
	}
}

var (
	// pageRefs: what a page loads (script src, link href).
	pageRefs = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*["']([^"']+)["']`)
	// anyHost: a URL of another host, absolute or scheme-relative.
	anyHost = regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9-]+\.[a-z0-9.-]+`)
	// remoteFetches: what in a bundle or style sheet makes the browser
	// fetch from another host: an element's source (an <img>, as ReDoc's
	// logo was), a CSS url() or @import, or a known font or CDN host. A
	// remote href is a link the reader may follow, not a fetch; the many
	// URLs that only name things (JSON Schema ids, RFC references in error
	// messages) are left alone.
	remoteFetches = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(?:src|srcset|poster|data|background)\s*[:=]\s*["'` + "`" + `](?:https?:)?//`),
		regexp.MustCompile(`\burl\(\s*["']?(?:https?:)?//`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.redoc\.ly|unpkg\.com|cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com|use\.typekit\.net|use\.fontawesome\.com`),
	}
)

// Nothing in the documents makes a viewer fetch from another host. Both
// viewers fetch references ($ref), example values (externalValue), OpenID
// Connect discovery (openIdConnectUrl), a logo (ReDoc's x-logo) and the
// images and embedded HTML of Markdown descriptions; they only link to
// the license, contact, terms of service and external docs URLs, and show
// example and default values as text (Try it out sends them to this
// server, not elsewhere). So: references are local, servers are paths on
// this server, descriptions embed nothing, and another host appears only
// at a link (those keys, or a Markdown link in a description).
func TestDocumentsFetchNothing(t *testing.T) {
	linkOnly := map[string]bool{"license.url": true, "contact.url": true, "info.termsOfService": true, "externalDocs.url": true}
	shownAsText := map[string]bool{"example": true, "default": true}
	embeds := regexp.MustCompile(`(?i)!\[[^\]]*\]\(|<\s*(?:img|image|link|script|style|iframe|frame|object|embed|video|audio|source|track|svg|picture)\b|\b(?:src|srcset|poster)\s*=|\burl\(|@import`)
	for _, d := range documents {
		var doc any
		if err := json.Unmarshal(d.spec, &doc); err != nil {
			t.Fatal(err)
		}
		var walk func(path []string, v any)
		walk = func(path []string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, child := range v {
					walk(append(slices.Clone(path), k), child)
				}
			case []any:
				for _, child := range v {
					walk(path, child)
				}
			case string:
				key := path[len(path)-1]
				where := d.name + ": " + strings.Join(path, ".")
				parent := ""
				if len(path) > 1 {
					parent = path[len(path)-2] + "."
				}
				switch {
				case key == "$ref":
					if !strings.HasPrefix(v, "#/") {
						t.Errorf("%s = %q: not a reference inside the document", where, v)
					}
				case len(path) == 2 && path[0] == "servers" && key == "url":
					if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
						t.Errorf("%s = %q: not a path on this server", where, v)
					}
				case key == "description" || key == "summary" || key == "title":
					if m := embeds.FindString(v); m != "" {
						t.Errorf("%s embeds something (%q)", where, m)
					}
				case linkOnly[parent+key] || shownAsText[key]:
				default:
					if m := anyHost.FindString(v); m != "" {
						t.Errorf("%s = %q names another host where a viewer may fetch it", where, v)
					}
				}
			}
		}
		walk([]string{}, doc)
	}
}

// document is the part of an OpenAPI document these tests read.
type document struct {
	Tags []struct {
		Name string `json:"name"`
	} `json:"tags"`
	TagGroups []struct {
		Tags []string `json:"tags"`
	} `json:"x-tagGroups"`
	Paths map[string]map[string]operation `json:"-"` // path → method → operation
}

type operation struct {
	Tags        []string `json:"tags"`
	OperationID string   `json:"operationId"`
	Summary     string   `json:"summary"`
	Description string   `json:"description"`
	Security    string   `json:"-"` // compact JSON; "" when not stated
}

func (op *operation) UnmarshalJSON(b []byte) error {
	type plain operation
	var v struct {
		plain
		Security json.RawMessage `json:"security"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*op = operation(v.plain)
	if v.Security != nil {
		var compact bytes.Buffer
		if err := json.Compact(&compact, v.Security); err != nil {
			return err
		}
		op.Security = compact.String()
	}
	return nil
}

func load(t *testing.T, spec []byte) document {
	t.Helper()
	var doc document
	var paths struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(spec, &paths); err != nil {
		t.Fatal(err)
	}
	doc.Paths = map[string]map[string]operation{}
	for path, item := range paths.Paths {
		doc.Paths[path] = map[string]operation{}
		for key, raw := range item {
			if !slices.Contains(methods, key) {
				continue // the path's parameters, summary, servers…
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			doc.Paths[path][key] = op
		}
	}
	return doc
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
