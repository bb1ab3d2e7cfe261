package status_test

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	rpb "github.com/statusgate/statusgate/core/ratchet/protobuf"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// dropWatch is a slog handler that reports the reason of every "status message
// dropped" record: the tests wait on drops as events.
type dropWatch struct{ reasons chan string }

func (w dropWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w dropWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w dropWatch) WithGroup(string) slog.Handler            { return w }
func (w dropWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "status message dropped" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			w.reasons <- a.Value.String()
			return false
		}
		return true
	})
	return nil
}

func (w dropWatch) next(t *testing.T) string {
	t.Helper()
	select {
	case r := <-w.reasons:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no drop within 15 s")
		return ""
	}
}

// badParty is newParty with a drop watch on the client's logger.
func badParty(t *testing.T, nd *node.Node, seed string) (*party, dropWatch) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := dropWatch{reasons: make(chan string, 64)}
	k := key(t, seed)
	rs := status.StoreRatchets(st, ratchet.Config{})
	c, err := status.New(nd, status.Config{Ratchets: rs, Identity: k, Seen: st, Logger: slog.New(w)})
	if err != nil {
		t.Fatal(err)
	}
	return &party{key: k, client: c, store: st, ratchets: rs}, w
}

// TestDirect_badInput: every kind of bad 1:1 input reaches the SDK over a real node and
// is a counted, logged drop (reason ratchet, with the Ratchet's own reason), never a
// panic nor a stuck conversation: tampered ciphertext and header, a replay, a bundle
// whose signature recovers another key, a bundle of another identity, a bundle with
// four installations, an X3DH header naming an unknown prekey, a Double Ratchet message
// of a session never seen, a skip beyond MaxSkip, bytes that are not a ProtocolMessage,
// and a payload signed by another key than the envelope. The next good message arrives.
func TestDirect_badInput(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	alice := newParty(t, nodes[0], "alice", t.TempDir())
	bob, drops := badParty(t, nodes[1], "bob")
	alice.start(t)
	bob.start(t)
	ctx := context.Background()
	carol, mallory := key(t, "carol"), key(t, "mallory")

	// A session both ways: DH, X3DH, then the ratchet.
	for i, s := range []struct{ from, to *party }{{alice, bob}, {bob, alice}, {alice, bob}} {
		if _, err := s.from.direct.Send(ctx, &s.to.key.PublicKey, "setup"); err != nil {
			t.Fatal(err)
		}
		if m := nextDirect(t, s.to.direct.Messages()); m.Text != "setup" {
			t.Fatalf("setup %d: %q", i, m.Text)
		}
	}
	ra, err := alice.ratchets(ctx, alice.key)
	if err != nil {
		t.Fatal(err)
	}
	// encrypt is one message from alice to bob as her Ratchet builds it, not yet sent.
	encrypt := func(text string, signer *ecdsa.PrivateKey) *ratchet.Outgoing {
		t.Helper()
		p, err := chat.Encode(&chat.Message{Clock: uint64(time.Now().UnixMilli()), Timestamp: uint64(time.Now().UnixMilli()), Text: text,
			ChatID: "0x04", MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, signer)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ra.Encrypt(ctx, &bob.key.PublicKey, p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// post sends payload as signer on env's topic and key.
	post := func(payload []byte, env ratchet.Envelope, signer *ecdsa.PrivateKey) {
		t.Helper()
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: env.Topic, KeySym: env.SymKey, Dst: env.Dst, Src: signer,
			Payload: payload, TTL: status.DefaultTTL, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	// mutate sends a copy of a fresh message changed by f.
	mutate := func(f func(pm *rpb.ProtocolMessage, copyOf *rpb.DirectMessageProtocol), signer *ecdsa.PrivateKey) {
		t.Helper()
		out := encrypt("bad", alice.key)
		pm := proto.Clone(out.Message).(*rpb.ProtocolMessage)
		f(pm, pm.DirectMessage[bob.direct.Installation()])
		b, err := proto.Marshal(pm)
		if err != nil {
			t.Fatal(err)
		}
		post(b, out.Envelope, signer)
	}
	partitioned := ratchet.Envelope{Topic: whisper.TopicFromName(ratchet.PartitionedTopicName(&bob.key.PublicKey)), Dst: &bob.key.PublicKey}
	randomKey := func() []byte {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		return crypto.CompressPubkey(&k.PublicKey)
	}

	// A replay: the same ProtocolMessage again, in a new envelope.
	valid := encrypt("once", alice.key)
	post(valid.Payload, valid.Envelope, alice.key)
	if m := nextDirect(t, bob.direct.Messages()); m.Text != "once" {
		t.Fatalf("got %q", m.Text)
	}
	post(valid.Payload, valid.Envelope, alice.key)
	want := ratchet.Stats{Replay: 1}
	steps := []struct {
		name string
		send func()
		add  func(*ratchet.Stats)
	}{
		{"replay", func() {}, nil},
		{"tampered ciphertext", func() {
			mutate(func(_ *rpb.ProtocolMessage, c *rpb.DirectMessageProtocol) { c.Payload[len(c.Payload)/2] ^= 1 }, alice.key)
		}, func(s *ratchet.Stats) { s.Decrypt++ }},
		{"tampered header", func() {
			mutate(func(_ *rpb.ProtocolMessage, c *rpb.DirectMessageProtocol) { c.DRHeader.Pn++ }, alice.key)
		}, func(s *ratchet.Stats) { s.Decrypt++ }},
		{"bundle signature of another key", func() {
			mutate(func(pm *rpb.ProtocolMessage, _ *rpb.DirectMessageProtocol) { pm.Bundles[0].Signature[5] ^= 1 }, alice.key)
		}, func(s *ratchet.Stats) { s.BundleSignature++ }},
		{"bundle of another identity", func() {
			rm, err := bob.ratchets(ctx, mallory)
			if err != nil {
				t.Fatal(err)
			}
			b, err := rm.Bundle(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mutate(func(pm *rpb.ProtocolMessage, _ *rpb.DirectMessageProtocol) { pm.Bundles = []*rpb.Bundle{b} }, alice.key)
		}, func(s *ratchet.Stats) { s.BundleSigner++ }},
		{"four installations", func() {
			mutate(func(pm *rpb.ProtocolMessage, _ *rpb.DirectMessageProtocol) {
				for _, id := range []string{"x", "y", "z"} {
					pm.Bundles[0].SignedPreKeys[id] = &rpb.SignedPreKey{SignedPreKey: randomKey(), Version: 1, ProtocolVersion: 1}
				}
			}, alice.key)
		}, func(s *ratchet.Stats) { s.TooManyInstallations++ }},
		{"x3dh header naming an unknown prekey", func() {
			mutate(func(_ *rpb.ProtocolMessage, c *rpb.DirectMessageProtocol) {
				id := randomKey() // both headers name the same (unknown) bundle, as a real X3DH message does
				c.X3DHHeader, c.DRHeader.Id = &rpb.X3DHHeader{Key: randomKey(), Id: id}, id
			}, alice.key)
		}, func(s *ratchet.Stats) { s.UnknownPrekey++ }},
		{"session never seen", func() {
			mutate(func(pm *rpb.ProtocolMessage, _ *rpb.DirectMessageProtocol) { pm.Bundles = nil }, carol)
		}, func(s *ratchet.Stats) { s.SessionNotFound++ }},
		{"beyond MaxSkip", func() {
			mutate(func(_ *rpb.ProtocolMessage, c *rpb.DirectMessageProtocol) {
				c.DRHeader.N += ratchet.DefaultMaxSkip + 10
			}, alice.key)
		}, func(s *ratchet.Stats) { s.TooManySkipped++ }},
		{"not a protocol message", func() {
			post([]byte("\x0a\x05hello, not protobuf \xff\xff"), partitioned, alice.key)
		}, func(s *ratchet.Stats) { s.NotProtocolMessage++ }},
	}
	for _, st := range steps {
		st.send()
		if r := drops.next(t); r != status.DropRatchet {
			t.Fatalf("%s: dropped as %q, want %q", st.name, r, status.DropRatchet)
		}
		if st.add != nil {
			st.add(&want)
		}
	}
	// A payload signed by mallory inside alice's well-encrypted message.
	out := encrypt("signed by someone else", mallory)
	post(out.Payload, out.Envelope, alice.key)
	if r := drops.next(t); r != status.DropAuthorMismatch {
		t.Fatalf("foreign payload: dropped as %q, want %q", r, status.DropAuthorMismatch)
	}

	// Nothing is stuck: the conversation goes on both ways.
	if _, err := alice.direct.Send(ctx, &bob.key.PublicKey, "still here"); err != nil {
		t.Fatal(err)
	}
	if m := nextDirect(t, bob.direct.Messages()); m.Text != "still here" || m.Mode != ratchet.ModeDR {
		t.Fatalf("after the bad input: %q (%v)", m.Text, m.Mode)
	}
	if _, err := bob.direct.Send(ctx, &alice.key.PublicKey, "and back"); err != nil {
		t.Fatal(err)
	}
	if m := nextDirect(t, alice.direct.Messages()); m.Text != "and back" {
		t.Fatalf("answer: %q", m.Text)
	}
	rb, err := bob.ratchets(ctx, bob.key)
	if err != nil {
		t.Fatal(err)
	}
	got := rb.Stats()
	if got.Replay != want.Replay || got.Decrypt != want.Decrypt || got.BundleSignature != want.BundleSignature ||
		got.BundleSigner != want.BundleSigner || got.TooManyInstallations != want.TooManyInstallations ||
		got.UnknownPrekey != want.UnknownPrekey || got.SessionNotFound != want.SessionNotFound ||
		got.TooManySkipped != want.TooManySkipped || got.NotProtocolMessage != want.NotProtocolMessage {
		t.Fatalf("ratchet drops %+v, want %+v", got, want)
	}
	if n := bob.client.Stats().Dropped[status.DropRatchet]; n != uint64(len(steps)) {
		t.Fatalf("%d ratchet drops counted, want %d", n, len(steps))
	}
}

// TestDirect_onceAcrossRestart: each 1:1 message is delivered once, also across a
// restart: a DH-mode message (it has no key to delete, so it decrypts again) that
// comes back in a new envelope after our side restarted on the same store, as a
// mailserver or a peer's pool would re-deliver it, is a counted duplicate; the next
// message is delivered. Opened by chat key (the zQ3… form).
func TestDirect_onceAcrossRestart(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	alice := newParty(t, nodes[0], "alice", t.TempDir())
	bob, _ := badParty(t, nodes[1], "bob")
	bob.start(t)
	ra, err := alice.ratchets(ctx, alice.key)
	if err != nil {
		t.Fatal(err)
	}
	post := func(payload []byte, env ratchet.Envelope) {
		t.Helper()
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: env.Topic, KeySym: env.SymKey, Dst: env.Dst, Src: alice.key,
			Payload: payload, TTL: status.DefaultTTL, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	encrypt := func(text string) *ratchet.Outgoing {
		t.Helper()
		now := uint64(time.Now().UnixMilli())
		p, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: text, ChatID: identity.ChatKey(&bob.key.PublicKey),
			MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, alice.key)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ra.Encrypt(ctx, &bob.key.PublicKey, p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	once := encrypt("once") // DH: alice knows no bundle of bob's
	if once.Copies[0].Mode != ratchet.ModeDH {
		t.Fatalf("first message %+v, want DH", once.Copies)
	}
	post(once.Payload, once.Envelope)
	if m := nextDirect(t, bob.direct.Messages()); m.Text != "once" {
		t.Fatalf("got %q", m.Text)
	}

	// Our side restarts on the same store: a new client, Ratchet and Direct.
	bob.direct.Close()
	drops := dropWatch{reasons: make(chan string, 64)}
	c, err := status.New(nodes[1], status.Config{Ratchets: status.StoreRatchets(bob.store, ratchet.Config{}), Identity: bob.key,
		Seen: bob.store, Logger: slog.New(drops)})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	d, err := c.Direct(dctx, bob.key)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); d.Close() })
	cv, err := d.OpenChatKey(identity.DisplayKey(&alice.key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenChatKey("zQ3shNotAKey"); err == nil {
		t.Fatal("opened a conversation with a key that does not parse")
	}
	post(once.Payload, once.Envelope) // the same message, in a new envelope
	if r := drops.next(t); r != status.DropDuplicate {
		t.Fatalf("re-delivered message dropped as %q, want %q", r, status.DropDuplicate)
	}
	next := encrypt("next")
	post(next.Payload, next.Envelope)
	if m := nextDirect(t, cv.Messages()); m.Text != "next" || !m.Author.Equal(&alice.key.PublicKey) {
		t.Fatalf("after the duplicate: %q from %s", m.Text, m.AuthorKey)
	}
	if n := c.Stats().Dropped[status.DropDuplicate]; n != 1 {
		t.Fatalf("%d duplicates counted, want 1", n)
	}
}
