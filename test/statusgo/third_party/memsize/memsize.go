// Package memsize is a no-op stand-in for github.com/fjl/memsize.
//
// The real module reaches into the runtime with go:linkname
// (runtime.stopTheWorld), which the Go 1.23+ linker refuses. go-ethereum
// v1.9.20 imports it only through node -> internal/debug -> memsizeui for a
// debug HTTP page that the whisper reference never serves, so an empty
// package is enough to make the reference link on current Go.
package memsize
