package main

import (
	"context"
	"log/slog"

	"github.com/quidpro/quid/infra/postgres"
)

// safeErrors is a slog.Handler that renders every error-valued attribute
// with postgres.SafeError before the real handler sees it, so no log line —
// the SQL logger's, the HTTP 5xx log, the workers' — carries the values a
// database or decoder error echoes. Code logs errors as values ("error",
// err), never as err.Error() strings.
type safeErrors struct{ next slog.Handler }

func (h safeErrors) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h safeErrors) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(safeAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h safeErrors) WithAttrs(as []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(as))
	for i, a := range as {
		safe[i] = safeAttr(a)
	}
	return safeErrors{h.next.WithAttrs(safe)}
}

func (h safeErrors) WithGroup(name string) slog.Handler { return safeErrors{h.next.WithGroup(name)} }

func safeAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		safe := make([]any, len(g))
		for i, x := range g {
			safe[i] = safeAttr(x)
		}
		return slog.Group(a.Key, safe...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, postgres.SafeError(err))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
