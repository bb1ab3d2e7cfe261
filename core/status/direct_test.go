package status_test

import (
	"context"
	"crypto/ecdsa"
	"path/filepath"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
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

// TestDirect_transitAndWrongType: a late-2019 client's 1:1 message (Transit c4 with
// :user-message, unsigned inside: the envelope's signer is the author) is delivered
// with its text, clock and author; a public-chat message inside a direct message is
// dropped as wrong_chat.
func TestDirect_transitAndWrongType(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	alice := newParty(t, nodes[0], "alice", t.TempDir())
	bob, drops := badParty(t, nodes[1], "bob")
	bob.start(t)
	ctx := context.Background()
	ra, err := alice.ratchets(ctx, alice.key)
	if err != nil {
		t.Fatal(err)
	}
	send := func(m *chat.Message, f chat.Format) {
		t.Helper()
		p, err := chat.Encode(m, f, alice.key)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ra.Encrypt(ctx, &bob.key.PublicKey, p) // DH: no bundle of bob's known
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: out.Envelope.Topic, KeySym: out.Envelope.SymKey, Dst: out.Envelope.Dst,
			Src: alice.key, Payload: out.Payload, TTL: status.DefaultTTL, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	now := uint64(time.Now().UnixMilli())
	send(&chat.Message{Clock: now * 100, Timestamp: now, Text: "hi from 2019", ChatID: identity.ChatKey(&bob.key.PublicKey),
		MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatTransit)
	m := nextDirect(t, bob.direct.Messages())
	if m.Text != "hi from 2019" || m.Format != chat.FormatTransit || m.Clock != now*100 || !m.Author.Equal(&alice.key.PublicKey) ||
		m.Mode != ratchet.ModeDH || m.Chat != identity.ChatKey(&alice.key.PublicKey) {
		t.Fatalf("got %+v", m)
	}
	send(&chat.Message{Clock: now + 1, Timestamp: now, Text: "public?", ChatID: "status",
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf)
	if r := drops.next(t); r != status.DropWrongChat {
		t.Fatalf("dropped as %q, want %q", r, status.DropWrongChat)
	}
}

// TestDirect_bundleBackPosted: a message addressed only to another installation of our
// identity (carol knows bob's second device, not this one) is answered by Direct over
// Whisper with a bundle-back: an empty DH message with our bundle, on carol's
// partitioned topic, ECIES to her key. Carol learns this installation from it, and her
// next message has a copy for it, which Direct delivers. (The answer's rate limit, one
// per peer per 2 h, is the Ratchet's: TestBundleBack in core/ratchet.)
func TestDirect_bundleBackPosted(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	bob1 := newParty(t, nodes[1], "bob", t.TempDir())
	bob1.start(t)
	ratchetsOf := func() status.Ratchets {
		st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return status.StoreRatchets(st, ratchet.Config{})
	}
	carolKey := key(t, "carol")
	carol, err := ratchetsOf()(ctx, carolKey)
	if err != nil {
		t.Fatal(err)
	}
	bob2, err := ratchetsOf()(ctx, bob1.key)
	if err != nil {
		t.Fatal(err)
	}
	// Carol knows bob's second device from a public message of it (a direct one would
	// agree the negotiated topic, which this installation has never heard of).
	hello, err := bob2.WrapPublic(ctx, []byte("public"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Receive(ctx, &bob1.key.PublicKey, hello); err != nil {
		t.Fatal(err)
	}
	sub, err := nodes[0].Subscribe(whisper.Filter{Topics: []whisper.Topic{whisper.TopicFromName(ratchet.PartitionedTopicName(&carolKey.PublicKey))},
		AsymKey: carolKey})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	send := func(text string) *ratchet.Outgoing {
		t.Helper()
		now := uint64(time.Now().UnixMilli())
		p, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: text, ChatID: identity.ChatKey(&bob1.key.PublicKey),
			MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, carolKey)
		if err != nil {
			t.Fatal(err)
		}
		out, err := carol.Encrypt(ctx, &bob1.key.PublicKey, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: out.Envelope.Topic, KeySym: out.Envelope.SymKey, Dst: out.Envelope.Dst,
			Src: carolKey, Payload: out.Payload, TTL: status.DefaultTTL, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := send("for your other device"); len(out.Copies) != 1 || out.Copies[0].InstallationID == bob1.direct.Installation() {
		t.Fatalf("carol's copies %+v, want one, not for this installation", out.Copies)
	}
	select {
	case rm := <-sub.C():
		if rm.Src == nil || !rm.Src.Equal(&bob1.key.PublicKey) {
			t.Fatalf("answer signed by %v, want bob", rm.Src)
		}
		in, err := carol.Receive(ctx, rm.Src, rm.Payload)
		if err != nil || in.Kind != ratchet.KindDirect || in.Mode != ratchet.ModeDH || len(in.Payload) != 0 ||
			len(in.NewInstallations) != 1 || in.NewInstallations[0] != bob1.direct.Installation() {
			t.Fatalf("carol on the bundle-back: %+v %v", in, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no bundle-back within 15 s")
	}
	if out := send("now for both devices"); len(out.Copies) != 2 {
		t.Fatalf("carol's copies after the bundle-back: %+v, want two", out.Copies)
	}
	if m := nextDirect(t, bob1.direct.Messages()); m.Text != "now for both devices" || !m.Author.Equal(&carolKey.PublicKey) {
		t.Fatalf("got %q from %s", m.Text, m.AuthorKey)
	}
}

// TestDirect_discoveryTopics: Direct hears a first message on each asymmetric topic a
// sender may use for it: its partitioned topic (status-go v0.70.1), the generic
// "contact-discovery" topic (late-2019 clients) and its personal discovery topic.
func TestDirect_discoveryTopics(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	alice := newParty(t, nodes[0], "alice", t.TempDir())
	bob := newParty(t, nodes[1], "bob", t.TempDir())
	bob.start(t)
	ra, err := alice.ratchets(ctx, alice.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ratchet.PartitionedTopicName(&bob.key.PublicKey), ratchet.DiscoveryTopicName,
		ratchet.PersonalDiscoveryTopicName(&bob.key.PublicKey)} {
		now := uint64(time.Now().UnixMilli())
		p, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: "on " + name, ChatID: identity.ChatKey(&bob.key.PublicKey),
			MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, alice.key)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ra.EncryptDH(ctx, &bob.key.PublicKey, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: whisper.TopicFromName(name), Dst: &bob.key.PublicKey, Src: alice.key,
			Payload: out.Payload, TTL: status.DefaultTTL, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if m := nextDirect(t, bob.direct.Messages()); m.Text != "on "+name || !m.Author.Equal(&alice.key.PublicKey) {
			t.Fatalf("got %q from %s, want %q", m.Text, m.AuthorKey, "on "+name)
		}
	}
}
