// Command statusgo-ref is the status-go v0.70.1 reference peer that statusgate's
// interop tests run as a separate process: a real status-go Messenger (the secure
// transport with X3DH bundles, the Double Ratchet, DH fallback and multi-device; public
// and 1:1 chats) on a go-ethereum devp2p node with status-go's Whisper v6 (shh/6).
//
// statusgate itself uses a current go-ethereum, and status-go v0.70.1 needs its fork of
// go-ethereum v1.9.5 (status-im/go-ethereum v1.9.5-status.9): one module cannot hold
// both, so this program lives in its own module (test/statusgo) with status-go's four
// replace directives copied into go.mod, and is driven over JSON lines by the harness
// in test/statusref, which builds it on first use.
//
// The module replaces github.com/fjl/memsize with a no-op stub in third_party/memsize:
// the real package uses go:linkname into the runtime, which the Go 1.23+ linker rejects;
// go-ethereum reaches it only through its debug HTTP handlers, never used here.
//
// Usage:
//
//	statusgo-ref node [-key HEX] [-node-key HEX] [-installation ID] [-data DIR] [-port N]
//	                  [-minpow F] [-datasync] [-device-name S] [-log LEVEL]
//
// "node" starts the Messenger and answers one JSON request per line on stdin; replies
// and asynchronous events (received messages with the envelope they came in, sent
// envelopes, installations) are JSON lines on stdout. See README.md.
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
	case "node":
		err = runNode(os.Args[2:], os.Stdin, os.Stdout)
	case "encryption":
		err = runEncryption(os.Args[2:], os.Stdin, os.Stdout)
	case "vectors":
		err = runVectors(os.Args[2:], os.Stdout)
	case "bench":
		err = runBench(os.Args[2:], os.Stdout, os.Stderr)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "statusgo-ref: unknown mode %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "statusgo-ref: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  statusgo-ref node [-key HEX] [-node-key HEX] [-installation ID] [-data DIR] [-port N]
                    [-minpow F] [-datasync] [-device-name S] [-log LEVEL]
      a status-go v0.70.1 Messenger over Whisper v6 on 127.0.0.1, driven by JSON lines
      (see README.md)
  statusgo-ref encryption
      status-go's protocol/encryption alone (parties on their own databases), driven by
      JSON lines: build and handle ProtocolMessages (see README.md)
  statusgo-ref bench [-benchtime D] [-count N]
      status-go's protocol/encryption on core/ratchet's benchmark workloads (same names)
  statusgo-ref vectors
      status-go's X3DH/Double Ratchet key schedule on fixed keys, as JSON (core/ratchet's
      testdata/statusgo-vectors.json)
`)
}
