package kurrentdbtest

import (
	"regexp"
	"strings"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// defaultSearchWindow is the search window of a filter that sends "count"
// instead of a maximum window.
const defaultSearchWindow = 32

// filter is a server-side $all filter (notes §2): by stream name or by
// event type, as prefixes or one regular expression. A nil *filter keeps
// every event.
type filter struct {
	byEventType bool
	prefixes    []string
	re          *regexp.Regexp
	// checkpointEvery is how many considered events — matching or not —
	// a subscription reads between checkpoints: window × multiplier
	// (notes §3).
	checkpointEvery int
}

// newFilter builds the filter of a read's filter option; nil options
// (no_filter) give a nil filter. Errors: InvalidArgument when the options
// have neither or both prefixes and a regex, or the regex does not
// compile (Go syntax, not .NET: notes §5).
func newFilter(o *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if o == nil {
		return nil, nil
	}
	f := &filter{}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	switch v := o.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.byEventType = v.EventType, true
	default:
		return nil, status.Error(codes.InvalidArgument, "filter needs a stream identifier or an event type expression")
	}
	hasRegex, hasPrefixes := expr.GetRegex() != "", len(expr.GetPrefix()) > 0
	if hasRegex == hasPrefixes {
		return nil, status.Error(codes.InvalidArgument, "filter needs either prefixes or a regex")
	}
	if hasRegex {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
		f.re = re
	}
	f.prefixes = expr.GetPrefix()
	window := defaultSearchWindow
	if w := o.GetMax(); w > 0 {
		window = int(w)
	}
	f.checkpointEvery = window * max(int(o.GetCheckpointIntervalMultiplier()), 1)
	return f, nil
}

// match reports whether r passes the filter: its stream name or event
// type matches the regex, or starts with one of the prefixes (notes §3:
// the event-type filter matches by prefix too).
func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	subject := r.stream
	if f.byEventType {
		subject = r.eventType
	}
	if f.re != nil {
		return f.re.MatchString(subject)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}
