package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error so that adapters can map it to a transport status
// without knowing the rule that produced it.
type Kind string

const (
	KindInvalid         Kind = "invalid"
	KindNotFound        Kind = "not_found"
	KindConflict        Kind = "conflict"
	KindForbidden       Kind = "forbidden"
	KindUnauthenticated Kind = "unauthenticated"
)

// FieldError names one failing input field by JSON pointer.
type FieldError struct {
	Pointer string
	Reason  string
}

// Error is the one kinded error of the domain. Code is a stable slug clients
// may switch on (for example "insufficient-points").
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  []FieldError
	// ExchangeIDs names the member's exchanges a conflict is about (for
	// example those to cancel before an attribute can be removed).
	ExchangeIDs []string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s: %s %s", e.Message, e.Fields[0].Pointer, e.Fields[0].Reason)
}

// Is makes errors.Is(err, ErrNotFound) true for any not-found Error, so callers
// can test the kind without a type assertion.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Kind == e.Kind && (t.Code == "" || t.Code == e.Code)
}

// Sentinels for errors.Is checks by kind.
var (
	ErrNotFound        = &Error{Kind: KindNotFound}
	ErrConflict        = &Error{Kind: KindConflict}
	ErrInvalid         = &Error{Kind: KindInvalid}
	ErrForbidden       = &Error{Kind: KindForbidden}
	ErrUnauthenticated = &Error{Kind: KindUnauthenticated}
)

// Sentinels for errors that more than one place returns or compares. Each
// is the whole answer (kind, code and message), so errors.Is(err,
// ErrContractNotFound) holds for it however it was wrapped, and for any
// other error with its kind and code.
var (
	// ErrContractNotFound: no contract has this id, or the caller may not
	// see the draft that has it.
	ErrContractNotFound = NotFound("contract-not-found", "no contract with this id")
	// ErrRecipientNotFound: no recipient of the registry has this id.
	ErrRecipientNotFound = NotFound("recipient-not-found", "no recipient with this id")
)

func NotFound(code, msg string) *Error { return &Error{Kind: KindNotFound, Code: code, Message: msg} }
func Conflict(code, msg string) *Error { return &Error{Kind: KindConflict, Code: code, Message: msg} }

// At returns a copy of e that names the fields of the request (or of the
// member's profile, /attributes/<category>) the refusal is about, each with
// e's message, so that every refusal a field causes names it (RFC 9457
// "errors").
func (e *Error) At(pointers ...string) *Error {
	out := *e
	out.Fields = append([]FieldError(nil), e.Fields...)
	for _, p := range pointers {
		out.Fields = append(out.Fields, FieldError{Pointer: p, Reason: e.Message})
	}
	return &out
}
func Forbidden(code, msg string) *Error {
	return &Error{Kind: KindForbidden, Code: code, Message: msg}
}

// PointerToken escapes one reference token of a JSON pointer (RFC 6901
// section 3: "~" is "~0", "/" is "~1"), so a key such as "a/b" names one
// member, not a path of two.
func PointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Invalid reports one failing field.
func Invalid(pointer, reason string) *Error {
	return &Error{Kind: KindInvalid, Code: "validation-failed", Message: "the request is not valid",
		Fields: []FieldError{{Pointer: pointer, Reason: reason}}}
}

// Violations collects field errors so that a client learns every problem of a
// request at once instead of one per round trip.
type Violations struct{ fields []FieldError }

func (v *Violations) Add(pointer, reason string) {
	v.fields = append(v.fields, FieldError{Pointer: pointer, Reason: reason})
}

// Merge adds the fields of err when it is an invalid Error, prefixing pointers.
func (v *Violations) Merge(prefix string, err error) {
	var de *Error
	if errors.As(err, &de) && de.Kind == KindInvalid {
		for _, f := range de.Fields {
			v.Add(prefix+f.Pointer, f.Reason)
		}
		return
	}
	if err != nil {
		v.Add(prefix, err.Error())
	}
}

func (v *Violations) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Kind: KindInvalid, Code: "validation-failed", Message: "the request is not valid", Fields: v.fields}
}

// IsKind reports whether err is a domain Error of kind k.
func IsKind(err error, k Kind) bool {
	var de *Error
	return errors.As(err, &de) && de.Kind == k
}
