package main

import (
	"bytes"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// logSink hands every log line to a goroutine that writes it to the real
// output, so code that logs never waits for the output. Some log calls run
// while database locks are held — gorm's logger reports a failed or slow
// statement right after it, inside its transaction — and a full pipe, a
// stalled log collector or a paused terminal would otherwise keep those
// locks, and every member they cover, until the process died. While the
// output is blocked and the buffer full, lines are dropped and counted, and
// one line saying how many follows once the output takes lines again.
type logSink struct {
	out     io.Writer
	format  string
	lines   chan []byte
	dropped atomic.Int64
	pending atomic.Int64 // lines taken and not yet written
}

// logSinkLines is how many lines wait for a slow output before lines are
// dropped: about a second of a busy server's access log.
const logSinkLines = 4096

func newLogSink(out io.Writer, format string) *logSink {
	s := &logSink{out: out, format: format, lines: make(chan []byte, logSinkLines)}
	go s.drain()
	return s
}

// Write never blocks: slog handlers hand it one whole line per call.
func (s *logSink) Write(p []byte) (int, error) {
	s.pending.Add(1)
	select {
	case s.lines <- bytes.Clone(p):
	default:
		s.pending.Add(-1)
		s.dropped.Add(1)
	}
	return len(p), nil
}

func (s *logSink) drain() {
	for line := range s.lines {
		if n := s.dropped.Swap(0); n > 0 {
			var notice bytes.Buffer
			newLogger(&notice, slog.LevelWarn, s.format).Warn("log lines dropped while the log output was blocked", "dropped", n)
			_, _ = s.out.Write(notice.Bytes())
		}
		_, _ = s.out.Write(line)
		s.pending.Add(-1)
	}
}

// flush waits up to timeout for the lines written so far to reach the
// output, for a process about to exit.
func (s *logSink) flush(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for s.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// serviceLogger is the logger of the long-running commands: the configured
// level and format, writing through a logSink to out. flush is for exit.
func serviceLogger(out io.Writer, level slog.Level, format string) (log *slog.Logger, flush func()) {
	sink := newLogSink(out, format)
	return newLogger(sink, level, format), func() { sink.flush(2 * time.Second) }
}
