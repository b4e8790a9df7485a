package httpx

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/munnerz/goautoneg"
)

// ProblemMediaType is the media type of every problem (RFC 9457).
const ProblemMediaType = "application/problem+json"

// AcceptJSON answers 406 to a request whose Accept header does not accept
// application/json, the media type of every answer that succeeds, and
// lets every other request through: one without Accept (which accepts
// anything, RFC 9110 §12.5.1) or with an empty one included. The media
// type checked is the one a success is sent as: a request that accepts
// only application/problem+json (or refuses application/json,
// "application/json;q=0, */*;q=0.1") could be answered only if it failed,
// so it is refused whatever it asks. Mount it on every route that answers
// JSON, before anything else, so a request refused here changes nothing;
// the operational endpoints that answer other media types (/metrics, the
// viewers) negotiate on their own. The 406 itself is a problem, sent as
// application/problem+json whatever Accept says (RFC 9110 §15.5.7 lets a
// server answer so rather than with nothing).
//
// The header is read as RFC 9110 says: its fields form one list; a media
// range matches by type and subtype, either of which may be *, and the
// most specific range that matches a media type gives its weight: an
// exact type/subtype over type/* over */*, and, between ranges of the
// same one, a range with parameters over one without (so
// "*/*;charset=utf-8, application/json;q=0" does not accept JSON); q=0 is
// "not acceptable"; a range with parameters other than q and
// charset=utf-8 (JSON has no other) does not match; type, subtype and
// parameter names are case-insensitive. The list is split and its ranges
// read by goautoneg (the parser Prometheus's own negotiation uses).
func AcceptJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := r.Header.Values("Accept")
		header := strings.TrimSpace(strings.Join(fields, ","))
		if header == "" || Acceptable(header, JSONMediaType) {
			next.ServeHTTP(w, r)
			return
		}
		p := InvalidField(TypeNotAcceptable, "Accept", "must accept "+JSONMediaType)
		p.Detail = "This endpoint answers " + JSONMediaType + " (and problems as " + ProblemMediaType +
			"); the Accept header does not accept " + JSONMediaType + "."
		WriteProblem(w, p)
	})
}

// Acceptable reports whether the Accept header value accept (every field
// of it, joined with commas) accepts mediaType, a type/subtype without
// parameters, as AcceptJSON reads it.
func Acceptable(accept, mediaType string) bool {
	typ, sub, _ := strings.Cut(strings.ToLower(mediaType), "/")
	best, q := -1, 0.0
	for _, a := range goautoneg.ParseAccept(wellFormedQ(strings.ToLower(strings.ReplaceAll(accept, "\t", " ")))) {
		// The range's precedence (§12.5.1): the type it names first
		// (exact 4, type/* 2, */* 0), its parameters only between ranges
		// of the same type (+1).
		specificity := 0
		switch {
		case a.Type == typ && a.SubType == sub:
			specificity = 4
		case a.Type == typ && a.SubType == "*":
			specificity = 2
		case a.Type == "*" && a.SubType == "*":
		default:
			continue
		}
		if len(a.Params) > 0 {
			if !onlyUTF8(a.Params) {
				continue // a range for a representation this is not
			}
			specificity++
		}
		switch {
		case specificity > best:
			best, q = specificity, a.Q
		case specificity == best:
			q = max(q, a.Q)
		}
	}
	return best >= 0 && q > 0
}

// onlyUTF8 reports whether a media range's parameters (q aside) are only
// charset=utf-8, which every JSON answer is.
func onlyUTF8(params map[string]string) bool {
	for k, v := range params {
		if k != "charset" || strings.Trim(v, `"`) != "utf-8" {
			return false
		}
	}
	return true
}

// qvalue is a weight as RFC 9110 §12.4.2 writes it: 0 to 1, at most three
// decimals.
var qvalue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// wellFormedQ returns accept with every range whose weight is not a
// qvalue (q=1.0001, q=abc, q= or two weights) weighted 0: one reading of
// every malformed weight, "not acceptable", rather than the parser's
// (which takes some and refuses others).
func wellFormedQ(accept string) string {
	ranges := strings.Split(accept, ",")
	for i, r := range ranges {
		params := strings.Split(r, ";")
		weights, ok := 0, true
		for _, p := range params[1:] {
			name, value, _ := strings.Cut(p, "=")
			if strings.TrimSpace(name) == "q" {
				weights++
				ok = ok && qvalue.MatchString(strings.TrimSpace(value))
			}
		}
		if weights > 1 || !ok {
			ranges[i] = strings.TrimSpace(params[0]) + ";q=0"
		}
	}
	return strings.Join(ranges, ",")
}
