package status_test

import (
	"context"
	"crypto/ecdsa"
	"path/filepath"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// party is one of our identities with its own node, store and client.
type party struct {
	key      *ecdsa.PrivateKey
	client   *status.Client
	direct   *status.Direct
	store    *store.Store
	ratchets status.Ratchets
}

// newParty opens a SQLite store in dir and a client on nd with ratchets over it.
func newParty(t *testing.T, nd *node.Node, seed, dir string) *party {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := key(t, seed)
	rs := status.StoreRatchets(st, ratchet.Config{})
	c, err := status.New(nd, status.Config{Ratchets: rs, Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	return &party{key: k, client: c, store: st, ratchets: rs}
}

func (p *party) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := p.client.Direct(ctx, p.key)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.direct = d
	t.Cleanup(func() { cancel(); d.Close() })
}

func nextDirect(t *testing.T, ch <-chan *status.Message) *status.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("closed")
		}
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no direct message within 15 s")
		return nil
	}
}

// TestDirect_dhThenX3DHThenRatchet: our two clients talk 1:1: the first message goes
// in DH mode (no bundle known), the answer starts X3DH from the bundle it carried, then
// the Double Ratchet; each message arrives once with its author, text and clock, and the
// conversation view receives only its peer's messages.
func TestDirect_dhThenX3DHThenRatchet(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	alice := newParty(t, nodes[0], "alice", t.TempDir())
	bob := newParty(t, nodes[1], "bob", t.TempDir())
	alice.start(t)
	bob.start(t)
	ctx := context.Background()
	conv, err := alice.direct.Open(&bob.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		from, to *party
		text     string
		mode     ratchet.Mode
	}{
		{alice, bob, "hi bob", ratchet.ModeDH},
		{bob, alice, "hi alice", ratchet.ModeX3DH},
		{alice, bob, "how are you", ratchet.ModeDR},
		{bob, alice, "fine", ratchet.ModeDR},
		{alice, bob, "good", ratchet.ModeDR},
	}
	for _, s := range steps {
		id, err := s.from.direct.Send(ctx, &s.to.key.PublicKey, s.text)
		if err != nil {
			t.Fatal(err)
		}
		in := s.to.direct.Messages()
		if s.to == alice {
			in = conv.Messages()
		}
		m := nextDirect(t, in)
		if m.ID != id || m.Text != s.text || !m.Author.Equal(&s.from.key.PublicKey) || m.Mode != s.mode ||
			m.Installation != s.from.direct.Installation() || m.Clock == 0 {
			t.Fatalf("%q: got %+v (mode %v), want id %s mode %v", s.text, m, m.Mode, id, s.mode)
		}
	}
	select {
	case m := <-alice.direct.Messages():
		t.Fatalf("bob's message %q reached Direct.Messages, not the open conversation", m.Text)
	default:
	}
}
