// Package eventstream publishes outbox events to NATS JetStream (issue 15):
// subject quid.events.<type>, the event id as the JetStream message id
// (Nats-Msg-Id, so the stream drops a repeat within its duplicate window),
// and exactly the bytes the webhook worker posts as the body.
package eventstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quidpro/quid/app"
)

// Subjects is the subject filter the stream must cover.
const Subjects = "quid.events.>"

// Header names of a published event besides Nats-Msg-Id (the event id).
const (
	HeaderRecipientID = "Quid-Recipient-Id"
	HeaderCreatedAt   = "Quid-Created-At"
)

// Options configure a Publisher.
type Options struct {
	// URL is the NATS server URL (nats://, tls://; several comma-separated);
	// it may carry a user and password or a token. It is never logged.
	URL string
	// CredsFile is a NATS credentials file (JWT and NKey seed), when set.
	CredsFile string
	// Stream is the JetStream stream that must hold the events: created,
	// covering quid.events.>, when it does not exist.
	Stream string
	// Duplicates is the created stream's duplicate window; MaxAge how long it
	// keeps an event (0: forever). An existing stream is used as it is.
	Duplicates time.Duration
	MaxAge     time.Duration
	// Replicas is the created stream's replica count (1 for one server).
	Replicas int
	// AckTimeout bounds the wait for the stream's acknowledgement.
	AckTimeout time.Duration
	Log        *slog.Logger
}

// Publisher is an app.EventPublisher over one NATS connection, which
// reconnects by itself for ever: connecting at start does not wait for the
// server, and an outage only makes Ready fail.
type Publisher struct {
	opts Options
	nc   *nats.Conn
	js   jetstream.JetStream

	mu      sync.Mutex
	ensured bool
}

// Open connects (in the background when the server is not up yet).
func Open(opts Options) (*Publisher, error) {
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 5 * time.Second
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	log := opts.Log
	natsOpts := []nats.Option{
		nats.Name("quid"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// Errors name the server by host only: a URL may hold credentials.
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if log != nil && !nc.IsClosed() {
				log.Warn("nats disconnected", "error", errText(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			if log != nil {
				log.Info("nats reconnected", "server", Redact(nc.ConnectedUrlRedacted()))
			}
		}),
	}
	if opts.CredsFile != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(opts.CredsFile))
	}
	nc, err := nats.Connect(opts.URL, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("nats: %s", errText(err))
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(opts.AckTimeout), jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %s", errText(err))
	}
	return &Publisher{opts: opts, nc: nc, js: js}, nil
}

// Close drops the connection.
func (p *Publisher) Close() { p.nc.Close() }

// Ready reports whether the connection is up and the stream is there,
// making the stream the first time it can.
func (p *Publisher) Ready(ctx context.Context) error {
	if st := p.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats connection is %s", strings.ToLower(st.String()))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ensured {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.AckTimeout)
	defer cancel()
	if err := p.ensureStream(ctx); err != nil {
		return err
	}
	p.ensured = true
	return nil
}

// ensureStream uses the stream when it exists and covers quid.events.>
// (whatever else the brand configured on it), and creates it otherwise.
func (p *Publisher) ensureStream(ctx context.Context) error {
	s, err := p.js.Stream(ctx, p.opts.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = p.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        p.opts.Stream,
			Description: "Quid outbox events (quid.events.<type>), de-duplicated by event id",
			Subjects:    []string{Subjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    p.opts.Replicas,
			Duplicates:  p.opts.Duplicates,
			MaxAge:      p.opts.MaxAge,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another replica made it first
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %s", p.opts.Stream, errText(err))
		}
		if p.opts.Log != nil {
			p.opts.Log.Info("event stream created", "stream", p.opts.Stream, "subjects", Subjects,
				"duplicate_window", p.opts.Duplicates, "max_age", p.opts.MaxAge)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %s", p.opts.Stream, errText(err))
	}
	cfg := s.CachedInfo().Config
	for _, subj := range cfg.Subjects {
		if Covers(subj, Subjects) {
			return nil
		}
	}
	return fmt.Errorf("stream %s does not take %s (its subjects: %s)", p.opts.Stream, Subjects, strings.Join(cfg.Subjects, ", "))
}

// Publish publishes the events asynchronously, in order, and waits for
// every acknowledgement.
func (p *Publisher) Publish(ctx context.Context, events []app.StreamEvent) ([]uint64, []error) {
	seqs, errs := make([]uint64, len(events)), make([]error, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, e := range events {
		subject, err := app.StreamSubject(e.EventType)
		if err != nil {
			errs[i] = err
			continue
		}
		msg := nats.NewMsg(subject)
		msg.Data = e.Payload
		msg.Header.Set("Content-Type", "application/json")
		msg.Header.Set(HeaderRecipientID, e.RecipientID)
		msg.Header.Set(HeaderCreatedAt, e.CreatedAt.UTC().Format(time.RFC3339Nano))
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(p.opts.Stream))
		if err != nil {
			errs[i] = redacted{err}
			continue
		}
		futures[i] = f
	}
	wait, cancel := context.WithTimeout(ctx, p.opts.AckTimeout+time.Second)
	defer cancel()
	for i, f := range futures {
		if f == nil {
			continue
		}
		var ack *jetstream.PubAck
		ack, errs[i] = awaitAck(wait, f)
		if ack != nil {
			seqs[i] = ack.Sequence
		}
		if errs[i] != nil && (errors.Is(errs[i], jetstream.ErrStreamNotFound) || isNoResponders(errs[i])) {
			p.forgetStream()
		}
	}
	return seqs, errs
}

// awaitAck waits for one acknowledgement; one already in wins over a
// deadline that has passed meanwhile.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, redacted{err}
	default:
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, redacted{err}
	case <-ctx.Done():
		return nil, errors.New("no acknowledgement in time")
	}
}

// redacted is an error whose text hides URL user information (errText),
// keeping the cause for errors.Is.
type redacted struct{ cause error }

func (e redacted) Error() string { return errText(e.cause) }
func (e redacted) Unwrap() error { return e.cause }

func isNoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// forgetStream makes the next Ready look for (and make) the stream again:
// someone deleted it.
func (p *Publisher) forgetStream() {
	p.mu.Lock()
	p.ensured = false
	p.mu.Unlock()
}

// Covers reports whether the subject filter matches every subject subject
// matches (both may hold the wildcards * and >).
func Covers(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		if ft == ">" {
			return i < len(s)
		}
		if i >= len(s) {
			return false
		}
		switch {
		case ft == "*":
			if s[i] == ">" {
				return false
			}
		case ft != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

// errText is an error's text with any URL's user information hidden: the
// NATS client names servers in its errors, and a URL may carry a password
// or token.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return Redact(err.Error())
}

// Redact hides the user information of every URL in s.
func Redact(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/ ,\"'")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndex(s[:end], "@"); at >= 0 {
			b.WriteString("***@")
			s = s[at+1:]
		}
	}
}

// Metrics are the relay's Prometheus series.
type Metrics struct {
	published, failed prometheus.Counter
	lag               prometheus.Gauge
}

// NewMetrics registers quid_event_stream_published_total,
// quid_event_stream_failed_total and quid_event_stream_lag_seconds.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "quid_event_stream_published_total",
			Help: "Outbox events this replica published to the NATS event stream (stored or already held by it)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "quid_event_stream_failed_total",
			Help: "Attempts of this replica to publish an outbox event to the event stream that failed (retried)."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "quid_event_stream_lag_seconds",
			Help: "Age of the oldest outbox event not yet published to the event stream (0: none waits)."}),
	}
	reg.MustRegister(m.published, m.failed, m.lag)
	return m
}

func (m *Metrics) Published(n int)     { m.published.Add(float64(n)) }
func (m *Metrics) Failed(n int)        { m.failed.Add(float64(n)) }
func (m *Metrics) Lag(d time.Duration) { m.lag.Set(d.Seconds()) }
