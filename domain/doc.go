// Package domain holds Quid's rules: contracts, exchanges, the ledger and the
// catalogue. It imports only the standard library and never reads the clock.
package domain
