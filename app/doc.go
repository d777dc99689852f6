// Package app holds Quid's use cases and the ports (interfaces) they need
// from storage, signing and delivery adapters.
package app
