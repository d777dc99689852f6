// Package speclint pins the tools `make lint` runs that are too heavy for the
// main module's go.mod (the vacuum OpenAPI linter), and the run-time
// dependencies of the Go client that `make lint` generates from openapi.yaml
// with oapi-codegen to prove standard tools can consume the spec.
package speclint

import (
	_ "github.com/oapi-codegen/runtime"
	_ "go.yaml.in/yaml/v3"
)
