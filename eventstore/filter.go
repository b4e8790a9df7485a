package eventstore

import "strings"

// Filter selects events by stream id prefix and/or event type. An event
// matches when its stream starts with one of StreamPrefixes (or there are
// none) and its type is one of EventTypes (or there are none).
type Filter struct {
	StreamPrefixes []string
	EventTypes     []string
}

// IsZero reports whether f selects every event.
func (f Filter) IsZero() bool {
	return len(f.StreamPrefixes) == 0 && len(f.EventTypes) == 0
}

// Match reports whether an event of type eventType in stream matches f.
func (f Filter) Match(stream, eventType string) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if strings.HasPrefix(stream, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if t == eventType {
				return true
			}
		}
		return false
	}
	return true
}
