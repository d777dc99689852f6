package app

import "errors"

// ErrUnavailable means a port could not reach what it depends on (the
// database is down, restarting or refusing connections). It is transient:
// the same request may succeed when retried. Adapters wrap their driver's
// error with it; the HTTP layer answers 503 with Retry-After.
var ErrUnavailable = errors.New("the database is unavailable")
