package logging

import (
	"context"
	"log/slog"
)

// NewHandler wraps inner so that every record gets the attributes its
// context carries (With, Scope and Add; trace_id and span_id of a valid
// span), at the top level, after the record's own. A key the record or
// the logger (slog.Logger.With) has already is not added again.
func NewHandler(inner slog.Handler) slog.Handler {
	return &handler{inner: inner}
}

type handler struct {
	inner slog.Handler
	// keys are the top-level keys of the logger's own attributes (those
	// given to WithAttrs before any group was opened).
	keys []string
	// opened are the groups opened (WithGroup) and the attributes given
	// after the first, in order. They are kept here rather than passed to
	// inner, so that the context's attributes can still be added at the
	// top level, outside them.
	opened []groupOrAttrs
}

type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	if len(h.opened) == 0 {
		c.inner = h.inner.WithAttrs(attrs)
		c.keys = append(h.keys[:len(h.keys):len(h.keys)], topKeys(attrs)...)
		return &c
	}
	c.opened = append(h.opened[:len(h.opened):len(h.opened)], groupOrAttrs{attrs: attrs})
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.opened = append(h.opened[:len(h.opened):len(h.opened)], groupOrAttrs{group: name})
	return &c
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	extra := attrsOf(ctx)
	if len(extra) == 0 && len(h.opened) == 0 {
		return h.inner.Handle(ctx, r)
	}
	own := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		own = append(own, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	taken := h.keys
	if len(h.opened) == 0 {
		taken = append(taken[:len(taken):len(taken)], topKeys(own)...)
		out.AddAttrs(own...)
	} else {
		out.AddAttrs(h.nest(own))
	}
	for _, a := range extra {
		if !contains(taken, a.Key) {
			out.AddAttrs(a)
		}
	}
	return h.inner.Handle(ctx, out)
}

// nest puts the record's attributes own into the groups opened, with the
// attributes given after each.
func (h *handler) nest(own []slog.Attr) slog.Attr {
	attrs := own
	for i := len(h.opened) - 1; i >= 0; i-- {
		g := h.opened[i]
		if g.group == "" {
			attrs = append(g.attrs[:len(g.attrs):len(g.attrs)], attrs...)
			continue
		}
		attrs = []slog.Attr{{Key: g.group, Value: slog.GroupValue(attrs...)}}
	}
	return attrs[0]
}

// topKeys returns the keys attrs put at the top level: their own, and
// those of the groups without a key, which slog inlines.
func topKeys(attrs []slog.Attr) []string {
	var keys []string
	for _, a := range attrs {
		if a.Key == "" && a.Value.Kind() == slog.KindGroup {
			keys = append(keys, topKeys(a.Value.Group())...)
			continue
		}
		keys = append(keys, a.Key)
	}
	return keys
}

func contains(keys []string, key string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}
