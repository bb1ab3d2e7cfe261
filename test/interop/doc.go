// Package interop holds the conformance harness against go-ethereum v1.9.20
// whisperv6 run as a separate process: the reference implementation in
// test/reference, built on demand into the user cache directory as the
// whisper-ref binary and driven over its line-oriented JSON protocol.
//
// The reference cannot be linked into statusgate, because a module holds
// only one version of go-ethereum and whisper was removed after v1.9.20, so
// the tests talk to it through a Reference (see StartReference). The package
// uses only the standard library and imports no statusgate package; like
// everything under test/, it is imported only by _test.go files.
package interop
