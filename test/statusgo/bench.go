package main

// "statusgo-ref bench": status-go v0.70.1's protocol/encryption on the workloads of
// core/ratchet's benchmarks (bench_test.go there), same names, printed like `go test
// -bench -benchmem` so that test/benchreport pairs them: a 200-byte payload on an
// established session, encrypted (BuildDirectMessage + encoding) and decrypted (decoding +
// HandleMessage + ConfirmMessageProcessed), and the first message to a recipient whose
// bundle is known (X3DH). Each party is an encryption.Protocol on its own sqlcipher
// database (protocol/sqlite.Open, as status-go's own tests) in a temporary directory on
// disk, and for the …RAM variants on /dev/shm (tmpfs), as core/ratchet's twins do.

import (
	"bytes"
	"crypto/ecdsa"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"go.uber.org/zap"

	"github.com/status-im/status-go/protocol/encryption"
	"github.com/status-im/status-go/protocol/sqlite"
)

var benchPayload = bytes.Repeat([]byte("x"), 200)

type benchParty struct {
	key *ecdsa.PrivateKey
	p   *encryption.Protocol
}

func newBenchParty(dir, name string) (*benchParty, func(), error) {
	db, err := sqlite.Open(filepath.Join(dir, name+".sql"), "statusgo-ref")
	if err != nil {
		return nil, nil, err
	}
	return &benchParty{key: keyFrom(name), p: encryption.New(db, name+"-installation", zap.NewNop())}, func() { db.Close() }, nil
}

// send builds a direct message and encodes it, as the Messenger does before posting.
func (a *benchParty) send(to *benchParty) ([]byte, error) {
	spec, err := a.p.BuildDirectMessage(a.key, &to.key.PublicKey, benchPayload)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(spec.Message)
}

// receive decodes, handles and confirms a message.
func (b *benchParty) receive(from *benchParty, raw []byte, id []byte) error {
	var pm encryption.ProtocolMessage
	if err := proto.Unmarshal(raw, &pm); err != nil {
		return err
	}
	if _, err := b.p.HandleMessage(b.key, &from.key.PublicKey, &pm, id); err != nil {
		return err
	}
	return b.p.ConfirmMessageProcessed(id)
}

// benchPair is Alice and Bob after DH, X3DH and one Double Ratchet message each way.
func benchPair(dir string) (alice, bob *benchParty, cleanup func(), err error) {
	alice, ca, err := newBenchParty(dir, "alice")
	if err != nil {
		return nil, nil, nil, err
	}
	bob, cb, err := newBenchParty(dir, "bob")
	if err != nil {
		ca()
		return nil, nil, nil, err
	}
	cleanup = func() { ca(); cb() }
	n := 0
	for _, dirn := range [][2]*benchParty{{alice, bob}, {bob, alice}, {alice, bob}, {bob, alice}} {
		raw, err := dirn[0].send(dirn[1])
		if err != nil {
			cleanup()
			return nil, nil, nil, err
		}
		n++
		if err := dirn[1].receive(dirn[0], raw, []byte(fmt.Sprintf("setup-%d", n))); err != nil {
			cleanup()
			return nil, nil, nil, err
		}
	}
	return alice, bob, cleanup, nil
}

type encWorkload struct {
	name string
	run  func(b *testing.B) error
}

// benchDir makes a fresh directory on disk (the system temporary directory) or in RAM.
func benchDir(ram bool) (string, error) {
	parent := ""
	if ram {
		parent = "/dev/shm"
	}
	return os.MkdirTemp(parent, "statusgo-bench-")
}

func encWorkloads() []encWorkload {
	var ws []encWorkload
	for _, ram := range []bool{false, true} {
		suffix := ""
		if ram {
			suffix = "RAM"
		}
		for _, w := range encWorkloadsIn(ram) {
			w.name += suffix
			ws = append(ws, w)
		}
	}
	return ws
}

func encWorkloadsIn(ram bool) []encWorkload {
	return []encWorkload{
		{"Ratchet_Encrypt200", func(b *testing.B) error {
			dir, err := benchDir(ram)
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			alice, bob, cleanup, err := benchPair(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := alice.send(bob); err != nil {
					return err
				}
			}
			return nil
		}},
		{"Ratchet_Decrypt200", func(b *testing.B) error {
			dir, err := benchDir(ram)
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			alice, bob, cleanup, err := benchPair(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			msgs := make([][]byte, b.N)
			for i := range msgs {
				if msgs[i], err = alice.send(bob); err != nil {
					return err
				}
			}
			b.ResetTimer()
			for i, m := range msgs {
				if err := bob.receive(alice, m, []byte(fmt.Sprintf("m-%d", i))); err != nil {
					return err
				}
			}
			return nil
		}},
		{"Ratchet_X3DHStart", func(b *testing.B) error {
			dir, err := benchDir(ram)
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			alice, cleanup, err := newBenchParty(dir, "alice")
			if err != nil {
				return err
			}
			defer cleanup()
			recipients := make([]*ecdsa.PrivateKey, b.N)
			for i := range recipients {
				recipients[i] = keyFrom(fmt.Sprintf("recipient %d", i))
				bc, err := encryption.NewBundleContainer(recipients[i], "installation")
				if err != nil {
					return err
				}
				if err := encryption.SignBundle(recipients[i], bc); err != nil {
					return err
				}
				if _, err := alice.p.ProcessPublicBundle(alice.key, bc.Bundle); err != nil {
					return err
				}
			}
			b.ResetTimer()
			for _, r := range recipients {
				spec, err := alice.p.BuildDirectMessage(alice.key, &r.PublicKey, benchPayload)
				if err != nil {
					return err
				}
				if spec.Message.DirectMessage["installation"].GetX3DHHeader() == nil {
					return fmt.Errorf("no x3dh header")
				}
				if _, err := proto.Marshal(spec.Message); err != nil {
					return err
				}
			}
			return nil
		}},
	}
}

func runBench(args []string, out, diag io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(diag)
	benchtime := fs.String("benchtime", "1s", "run each benchmark for `D` (a duration, or Nx for N iterations)")
	count := fs.Int("count", 1, "run each benchmark `N` times")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *count < 1 {
		return fmt.Errorf("bench: usage: bench [-benchtime D] [-count N]")
	}
	testing.Init()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		return fmt.Errorf("bench: -benchtime: %w", err)
	}
	start := time.Now()
	procs := runtime.GOMAXPROCS(0)
	fmt.Fprintf(out, "goos: %s\ngoarch: %s\npkg: reference/status-go-v0.70.1-encryption\n", runtime.GOOS, runtime.GOARCH)
	for _, w := range encWorkloads() {
		name := "Benchmark" + w.name
		if procs != 1 {
			name += fmt.Sprintf("-%d", procs)
		}
		for range *count {
			var failure error
			r := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				if err := w.run(b); err != nil {
					failure = err
					b.Fatal(err)
				}
			})
			if failure != nil {
				return fmt.Errorf("%s: %w", name, failure)
			}
			if r.N == 0 {
				return fmt.Errorf("%s: benchmark did not run", name)
			}
			fmt.Fprintf(out, "%s\t%s\t%s\n", name, r.String(), r.MemString())
		}
	}
	fmt.Fprintf(diag, "statusgo-ref: bench took %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}
