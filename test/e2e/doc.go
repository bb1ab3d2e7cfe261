// Package e2e holds the end-to-end tests of the gateway: the real `bridge` binary, built
// once per test run and started as a separate process on a generated configuration,
// between a go-ethereum v1.9.20 whisperv6 reference node (test/interop) on the Status
// side and the api connector's HTTP API (POST and Server-Sent Events) on the other.
//
// The tests see only what an operator and the two networks see: exit codes, stderr,
// /readyz, /metrics, the HTTP API and the envelopes the reference node receives, which
// they decode as a Status client does (core/chat). They cover the process lifecycle that
// in-process tests cannot: SIGTERM and restart on the same data dir, kill -9 in the
// middle of a burst, and start-up refusals of bad configurations and key files.
//
// Like everything under test/, it is for _test.go files only; this package has no
// non-test code besides this comment.
package e2e
