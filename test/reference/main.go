// Command whisper-ref is the go-ethereum v1.9.20 whisperv6 reference
// implementation that statusgate's conformance tests and benchmarks run as a
// separate process.
//
// statusgate is built on a current go-ethereum (v1.17.x), which no longer
// contains whisper: it was removed in v1.9.21, so v1.9.20 is the last release
// with whisper/whisperv6. A Go module can only hold one version of a given
// module, so the old whisper code cannot be linked into the main module next
// to the new go-ethereum. This program therefore lives in its own module
// (test/reference, requiring go-ethereum v1.9.20) and is driven over a tiny
// line-oriented JSON protocol by test/interop, which builds it on demand.
//
// The module replaces github.com/fjl/memsize with a no-op stub in
// third_party/memsize: the real package uses go:linkname into the runtime,
// which the Go 1.23+ linker rejects, and whisperv6 only reaches it through
// go-ethereum's debug HTTP handlers, which are never used here.
//
// Usage:
//
//	whisper-ref serve
//	whisper-ref bench [-benchtime D] [-count N]
//	whisper-ref node [-key HEX] [-port N] [-minpow F] [-mailserver-password PW [-mailserver-pow F]]
//
// "serve" reads one JSON request per line on stdin and writes exactly one
// JSON reply per line on stdout until EOF; see README.md for the operations.
// "node" runs a whisper v6 node on a p2p server on 127.0.0.1 and drives it
// with JSON lines, printing asynchronous message and peer events as lines
// of their own; with -mailserver-password it also runs geth's LevelDB
// mailserver (whisper/mailserver.WMailServer). "bench" runs fixed whisperv6 workloads with testing.Benchmark and prints
// them in the format of "go test -bench -benchmem".
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Stdin, os.Stdout)
	case "node":
		err = runNode(os.Args[2:], os.Stdin, os.Stdout)
	case "bench":
		err = bench(os.Args[2:], os.Stdout, os.Stderr)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "whisper-ref: unknown mode %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "whisper-ref: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  whisper-ref serve                          JSON lines on stdin/stdout (see README.md)
  whisper-ref bench [-benchtime D] [-count N] run the reference benchmarks
  whisper-ref node [-key HEX] [-port N] [-minpow F] [-mailserver-password PW [-mailserver-pow F]]
                                             a whisper v6 p2p node driven by JSON lines,
                                             optionally geth's v6 mailserver
`)
}
