// Package app holds Quid's use cases and the ports (interfaces) they need
// from storage, signing and delivery adapters. Each service is built by its
// constructor from the ports it uses (NewContracts, NewMembers, NewExchanges,
// NewEnforcement, NewAccrual, NewDispatcher, NewVerifier); a use case's file
// (join.go, points.go, erasure.go, …) has the same name in infra/http.
package app
