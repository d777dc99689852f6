package app

import (
	"context"
	"time"
)

// WebSession is one signed-in browser of the web preference centre: the
// principal its requests act as, until ExpiresAt.
type WebSession struct {
	Principal Principal
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SignIn is an OpenID Connect sign-in in progress: what the callback needs
// to finish it (OpenID Connect Core §3.1.2; PKCE, RFC 7636).
type SignIn struct {
	CodeVerifier string
	Nonce        string
	// ReturnTo is the local path to show once signed in.
	ReturnTo  string
	ExpiresAt time.Time
}

// WebSessions keeps web sessions and sign-ins in progress, server side, so
// every replica sees them and ending one ends it everywhere. Keys are the
// SHA-256 of the browser's random token, never the token itself.
type WebSessions interface {
	// CreateSession stores s under the token's hash.
	CreateSession(ctx context.Context, tokenHash []byte, s WebSession) error
	// Session returns the unexpired session with the hash; ok is false when
	// there is none.
	Session(ctx context.Context, tokenHash []byte) (s WebSession, ok bool, err error)
	// EndSession deletes the session with the hash (no error when absent).
	EndSession(ctx context.Context, tokenHash []byte) error
	// SaveSignIn stores a sign-in in progress under its state's hash.
	SaveSignIn(ctx context.Context, stateHash []byte, s SignIn) error
	// TakeSignIn deletes and returns the unexpired sign-in with the hash, so
	// a callback can use it once; ok is false when there is none.
	TakeSignIn(ctx context.Context, stateHash []byte) (s SignIn, ok bool, err error)
}
