package ratchet_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/store"
)

// fakeClock is a settable clock shared by the ratchets of a test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// openStore opens a fresh SQLite store in the test's directory (the real store: the
// ratchet's tests run on what production runs on).
func openStore(tb testing.TB, path string) *store.Store {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "ratchet.db")
	}
	s, err := store.Open(context.Background(), store.Config{Path: path})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// keyOf derives a fixed identity from a name: keccak256(name) as the private key.
func keyOf(tb testing.TB, name string) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// party is one installation of a user: its ratchet, store and settings.
type party struct {
	name string
	key  *ecdsa.PrivateKey
	inst string
	path string
	st   *store.Store
	r    *ratchet.Ratchet
	cfg  ratchet.Config
}

func newParty(tb testing.TB, name string, key *ecdsa.PrivateKey, clock *fakeClock, mod func(*ratchet.Config)) *party {
	tb.Helper()
	p := &party{name: name, key: key, inst: name + "-installation", path: filepath.Join(tb.TempDir(), name+".db")}
	p.cfg = ratchet.Config{Identity: key, InstallationID: p.inst, Clock: clock.Now}
	if mod != nil {
		mod(&p.cfg)
	}
	p.open(tb)
	return p
}

// open (re)opens the party's store and ratchet, as a process restart would.
func (p *party) open(tb testing.TB) {
	tb.Helper()
	p.st = openStore(tb, p.path)
	cfg := p.cfg
	cfg.Store = p.st
	r, err := ratchet.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p.r = r
}

// restart closes the store and opens everything again from disk.
func (p *party) restart(tb testing.TB) {
	tb.Helper()
	if err := p.st.Close(); err != nil {
		tb.Fatal(err)
	}
	p.open(tb)
}

func (p *party) pub() *ecdsa.PublicKey { return &p.key.PublicKey }

func (p *party) encrypt(tb testing.TB, to *party, text string) *ratchet.Outgoing {
	tb.Helper()
	out, err := p.r.Encrypt(context.Background(), to.pub(), []byte(text))
	if err != nil {
		tb.Fatalf("%s encrypt to %s: %v", p.name, to.name, err)
	}
	return out
}

// receive decrypts, checks the text and confirms processing.
func (p *party) receive(tb testing.TB, from *party, out *ratchet.Outgoing, want string) *ratchet.Incoming {
	tb.Helper()
	in, err := p.r.Receive(context.Background(), from.pub(), out.Payload)
	if err != nil {
		tb.Fatalf("%s receive %q from %s: %v", p.name, want, from.name, err)
	}
	if in.Kind != ratchet.KindDirect || string(in.Payload) != want {
		tb.Fatalf("%s received %v %q, want direct %q", p.name, in.Kind, in.Payload, want)
	}
	if !sameKey(in.Sender, from.pub()) || in.InstallationID != from.inst {
		tb.Fatalf("%s: sender %x/%s, want %s/%s", p.name, crypto.CompressPubkey(in.Sender)[:4], in.InstallationID, from.name, from.inst)
	}
	if err := p.r.Processed(context.Background(), in.Receipt); err != nil {
		tb.Fatal(err)
	}
	return in
}

// expectDrop checks that receiving payload fails with want.
func (p *party) expectDrop(tb testing.TB, from *ecdsa.PublicKey, payload []byte, want error) {
	tb.Helper()
	in, err := p.r.Receive(context.Background(), from, payload)
	if !errors.Is(err, want) {
		tb.Fatalf("%s: receive gave %v (%+v), want %v", p.name, err, in, want)
	}
}

func sameKey(a, b *ecdsa.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(crypto.FromECDSAPub(a), crypto.FromECDSAPub(b))
}
