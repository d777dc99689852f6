// Package quid embeds the API contract so the binary can serve it and tests
// can validate responses against the very same bytes.
package quid

import _ "embed"

// OpenAPI is the content of openapi.yaml, the source of truth for the API.
//
//go:embed openapi.yaml
var OpenAPI []byte
