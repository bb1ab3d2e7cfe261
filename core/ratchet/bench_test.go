package ratchet_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// The benchmarks have twins of the same names in statusgo-ref's bench mode
// (test/statusgo/bench.go), which runs status-go v0.70.1's protocol/encryption on the same
// workloads: `make bench` prints the ratio. Both sides run on their production storage
// (ours: store on SQLite, WAL, synchronous FULL; status-go: sqlcipher through
// protocol/sqlite) with a 200-byte payload: in the temporary directory (a disk: every
// commit waits for its fsync), and, in the …RAM variants, on /dev/shm (tmpfs: the fsyncs
// cost nothing, what is left is crypto, encoding and SQL).

var benchPayload = bytes.Repeat([]byte("x"), 200)

// benchPair returns Alice and Bob after DH, X3DH and one Double Ratchet message each
// way: an established, agreed session.
func benchPair(b *testing.B, dir string) (alice, bob *party) {
	b.Helper()
	alice = benchParty(b, dir, "alice")
	bob = benchParty(b, dir, "bob")
	bob.receive(b, alice, alice.encrypt(b, bob, "dh"), "dh")
	alice.receive(b, bob, bob.encrypt(b, alice, "x3dh"), "x3dh")
	bob.receive(b, alice, alice.encrypt(b, bob, "dr"), "dr")
	alice.receive(b, bob, bob.encrypt(b, alice, "dr"), "dr")
	return alice, bob
}

// benchDir is where the parties' databases go: the test's temporary directory, or for
// ram a fresh directory on /dev/shm.
func benchDir(b *testing.B, ram bool) string {
	b.Helper()
	if !ram {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ratchet-bench-")
	if err != nil {
		b.Skipf("no tmpfs at /dev/shm: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func benchParty(b *testing.B, dir, name string) *party {
	b.Helper()
	key := keyOf(b, name)
	p := &party{name: name, key: key, inst: name + "-installation", path: filepath.Join(dir, name+".db")}
	// The X3DH benchmark meets b.N recipients: above the default bound on kept peers
	// the first ones would be evicted (their bundles gone, DH instead of X3DH).
	// The same for the work budgets: b.N bundles from b.N strangers in the set-up are
	// past the global bundle budget (burst 200), and a bundle not stored means DH.
	// What is timed is our own Encrypt, which no budget limits.
	p.cfg = ratchet.Config{Identity: key, InstallationID: p.inst, MaxPeers: 1 << 30,
		WorkPerMinute: 1 << 30, WorkBurst: 1 << 30}
	p.open(b)
	return p
}

func BenchmarkRatchet_Encrypt200(b *testing.B)    { benchEncrypt(b, false) }
func BenchmarkRatchet_Encrypt200RAM(b *testing.B) { benchEncrypt(b, true) }
func BenchmarkRatchet_Decrypt200(b *testing.B)    { benchDecrypt(b, false) }
func BenchmarkRatchet_Decrypt200RAM(b *testing.B) { benchDecrypt(b, true) }
func BenchmarkRatchet_X3DHStart(b *testing.B)     { benchX3DH(b, false) }
func BenchmarkRatchet_X3DHStartRAM(b *testing.B)  { benchX3DH(b, true) }

// benchEncrypt: one Double Ratchet message of 200 bytes on an established session,
// wrapped with our signed bundle and committed (Encrypt).
func benchEncrypt(b *testing.B, ram bool) {
	alice, bob := benchPair(b, benchDir(b, ram))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := alice.r.Encrypt(ctx, bob.pub(), benchPayload); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDecrypt: decode, verify the bundle, decrypt and commit one such message, then
// delete its key (Receive + Processed).
func benchDecrypt(b *testing.B, ram bool) {
	alice, bob := benchPair(b, benchDir(b, ram))
	ctx := context.Background()
	msgs := make([][]byte, b.N)
	for i := range msgs {
		out, err := alice.r.Encrypt(ctx, bob.pub(), benchPayload)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = out.Payload
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, m := range msgs {
		in, err := bob.r.Receive(ctx, alice.pub(), m)
		if err != nil {
			b.Fatal(err)
		}
		if err := bob.r.Processed(ctx, in.Receipt); err != nil {
			b.Fatal(err)
		}
	}
}

// benchX3DH: the first message to a recipient whose bundle is known: X3DH, a new session,
// its first Double Ratchet message, committed (Encrypt).
func benchX3DH(b *testing.B, ram bool) {
	ctx := context.Background()
	alice := benchParty(b, benchDir(b, ram), "alice")
	recipients := make([]*party, b.N)
	for i := range recipients {
		key := keyOf(b, fmt.Sprintf("recipient %d", i))
		recipients[i] = &party{key: key}
		if _, err := alice.r.HandleBundle(ctx, &key.PublicKey, signedBundle(b, key, "installation")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range recipients {
		out, err := alice.r.Encrypt(ctx, r.pub(), benchPayload)
		if err != nil {
			b.Fatal(err)
		}
		if out.Copies[0].Mode != ratchet.ModeX3DH {
			b.Fatalf("mode %v", out.Copies[0].Mode)
		}
	}
}

// signedBundle is a bundle of key with one installation and a fresh signed prekey.
func signedBundle(tb testing.TB, key *ecdsa.PrivateKey, installation string) *protobuf.Bundle {
	tb.Helper()
	spk := keyOf(tb, fmt.Sprintf("%x prekey", crypto.FromECDSA(key)))
	b := &protobuf.Bundle{
		Identity: crypto.CompressPubkey(&key.PublicKey),
		SignedPreKeys: map[string]*protobuf.SignedPreKey{
			installation: {SignedPreKey: crypto.CompressPubkey(&spk.PublicKey), Version: 1, ProtocolVersion: 1},
		},
		Timestamp: time.Now().UnixNano(),
	}
	signAs(tb, b, key)
	return b
}
