package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// sqlLogger logs failed and slow statements only. Unlike gorm's own slog
// logger it renders the statement only when it will be logged — rendering
// it for every query cost a noticeable share of a join's CPU — and never
// includes parameter values, which may be personal data: the statement
// keeps its placeholders and the error is rendered by SafeError.
type sqlLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func (l sqlLogger) LogMode(logger.LogLevel) logger.Interface { return l }

// gorm's Info/Warn/Error messages are format strings whose arguments may
// hold values; only the format and the number of arguments are logged.
func (l sqlLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, safeMessage(msg, args))
}

func (l sqlLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, safeMessage(msg, args))
}

func (l sqlLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, safeMessage(msg, args))
}

// safeMessage fills gorm's format string with errors rendered by SafeError
// and every other argument, which may be a value, blanked.
func safeMessage(format string, args []any) string {
	safe := make([]any, len(args))
	for i, a := range args {
		if err, ok := a.(error); ok {
			safe[i] = SafeError(err)
		} else {
			safe[i] = "…"
		}
	}
	return fmt.Sprintf(format, safe...)
}

func (l sqlLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		level := slog.LevelWarn // the caller decides whether the error matters; it logs 5xx once
		if errors.Is(err, context.Canceled) {
			level = slog.LevelDebug
		}
		sql, _ := fc()
		l.log.Log(ctx, level, "statement failed", "sql", statementShape(sql), "ms", elapsed.Milliseconds(), "error", SafeError(err))
	case elapsed > l.slow:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow statement", "sql", statementShape(sql), "rows", rows, "ms", elapsed.Milliseconds())
	}
}

// ParamsFilter drops every parameter so a logged statement keeps its
// placeholders and no value.
func (l sqlLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

// gorm renders the statement of Raw(…).Scan(…) through its recorder, which
// ignores the logger's ParamsFilter and inlines every value unless this
// package-level filter drops them too.
func init() {
	logger.RecorderParamsFilter = func(_ context.Context, sql string, _ ...any) (string, []any) { return sql, nil }
}

var (
	// quoted finds quoted text in messages: Go's %q, PostgreSQL's "…" and
	// '…', JSON's `…`. Messages quote the values they echo.
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'` + "|`[^`]*`")
	// placeholderRun collapses long placeholder lists ($1, $2, …, $5000).
	placeholderRun = regexp.MustCompile(`(\$\d+\s*,\s*){8,}\$\d+`)
	// gorm's renderer writes a placeholder it has no value for as $1$.
	unfilled = regexp.MustCompile(`\$(\d+)\$`)
)

// statementShape is a statement with its literals blanked and long
// placeholder lists shortened: the shape of what ran, never a value.
func statementShape(sql string) string {
	sql = quoted.ReplaceAllStringFunc(sql, func(s string) string {
		if s[0] == '"' {
			return s // identifiers in SQL are double-quoted, not values
		}
		return s[:1] + "…" + s[len(s)-1:]
	})
	sql = unfilled.ReplaceAllString(sql, "$$$1")
	return placeholderRun.ReplaceAllString(sql, "$$1, …")
}

// SafeError renders an error for a log line without the values it may
// carry. A PostgreSQL error becomes its SQLSTATE, constraint, table and
// column — never its message, detail or hint, which echo values ("Key
// (member_id)=(alice) already exists", `invalid input syntax for type uuid:
// "…"`). Every other message keeps its words and loses what it quotes. The
// HTTP 5xx log and the workers' logs use it too (cmd wires it into the
// logger), so there is one rendering for every logged error.
func SafeError(err error) string {
	if err == nil {
		return ""
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		parts := []string{}
		for _, e := range joined.Unwrap() {
			parts = append(parts, SafeError(e))
		}
		return strings.Join(parts, "; ")
	}
	if pg, ok := err.(*pgconn.PgError); ok {
		return pgShape(pg)
	}
	inner := errors.Unwrap(err)
	msg := err.Error()
	if inner == nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) { // a wrapper that hides its chain
			return redact(strings.TrimSuffix(msg, pg.Error())) + pgShape(pg)
		}
		return redact(msg)
	}
	if innerMsg := inner.Error(); strings.HasSuffix(msg, innerMsg) {
		return redact(strings.TrimSuffix(msg, innerMsg)) + SafeError(inner)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return fmt.Sprintf("%T: ", err) + pgShape(pg)
	}
	return redact(msg)
}

func pgShape(pg *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString("postgres error SQLSTATE " + pg.Code)
	for _, f := range []struct{ k, v string }{{"schema", pg.SchemaName}, {"table", pg.TableName}, {"column", pg.ColumnName},
		{"constraint", pg.ConstraintName}, {"type", pg.DataTypeName}, {"routine", pg.Routine}} {
		if f.v != "" {
			b.WriteString(" " + f.k + "=" + f.v)
		}
	}
	return b.String()
}

func redact(msg string) string {
	return quoted.ReplaceAllStringFunc(msg, func(s string) string { return s[:1] + "…" + s[len(s)-1:] })
}
