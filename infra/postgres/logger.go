package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// sqlLogger logs failed and slow statements only. Unlike gorm's own slog
// logger it renders the statement only when it will be logged — rendering
// it for every query cost a noticeable share of a join's CPU — and never
// includes parameter values, which may be personal data.
type sqlLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func (l sqlLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (l sqlLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, msg, "args", len(args))
}

func (l sqlLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, msg, "args", len(args))
}

func (l sqlLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, msg, "args", len(args))
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
		l.log.Log(ctx, level, "statement failed", "sql", sql, "ms", elapsed.Milliseconds(), "error", err.Error())
	case elapsed > l.slow:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow statement", "sql", sql, "rows", rows, "ms", elapsed.Milliseconds())
	}
}

// ParamsFilter drops every parameter so a logged statement keeps its
// placeholders and no value.
func (l sqlLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
