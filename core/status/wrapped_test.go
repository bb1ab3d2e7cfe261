package status_test

import (
	"context"
	"log/slog"
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
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestChat_wrappedPublic: a public message in the wrapped form (a ProtocolMessage with
// the sender's bundle) reaches a reader once, with the id of the inner payload and the
// sender's installation; the reader stores the bundle for its identity, so its first
// 1:1 message to the author is X3DH. A wrapped message whose bundle does not verify (a
// signature recovering another key, another identity's bundle, four installations) is
// dropped as bad_bundle, and a ProtocolMessage without public_message as unsupported.
func TestChat_wrappedPublic(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, bob, mallory := key(t, "alice"), key(t, "bob"), key(t, "mallory")
	aliceRatchets := status.StoreRatchets(openStore(t, "state.db"), ratchet.Config{})
	sender, err := status.New(nodes[0], status.Config{Ratchets: aliceRatchets, SendFormat: chat.SendWrapped})
	if err != nil {
		t.Fatal(err)
	}
	bobRatchets := status.StoreRatchets(openStore(t, "state.db"), ratchet.Config{})
	drops := dropWatch{reasons: make(chan string, 64)}
	reader, err := status.New(nodes[1], status.Config{Ratchets: bobRatchets, Identity: bob, Logger: slog.New(drops)})
	if err != nil {
		t.Fatal(err)
	}
	chA, err := sender.Join(ctx, "wrapped")
	if err != nil {
		t.Fatal(err)
	}
	defer chA.Leave()
	chB, err := reader.Join(ctx, "wrapped")
	if err != nil {
		t.Fatal(err)
	}
	defer chB.Leave()

	ids, err := chA.Send(ctx, "wrapped hello", alice)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := aliceRatchets(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, chB)
	if len(ids) != 1 || m.ID != ids[0] || m.Text != "wrapped hello" || !m.Author.Equal(&alice.PublicKey) ||
		m.Installation != ra.InstallationID() || m.Format != chat.FormatProtobuf {
		t.Fatalf("got %+v, sent ids %v from installation %s", m, ids, ra.InstallationID())
	}
	rb, err := bobRatchets(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rb.Encrypt(ctx, &alice.PublicKey, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Copies) != 1 || out.Copies[0].Mode != ratchet.ModeX3DH || out.Copies[0].InstallationID != ra.InstallationID() {
		t.Fatalf("first 1:1 after the public message: %+v, want X3DH to alice's installation", out.Copies)
	}

	// Bad bundles, posted by hand: the inner payload is good, the wrapping is not.
	inner, err := chat.Encode(&chat.Message{Clock: uint64(time.Now().UnixMilli()), Timestamp: uint64(time.Now().UnixMilli()),
		Text: "bad", ChatID: "wrapped", MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, alice)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ra.WrapPublic(ctx, inner)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := bobRatchets(ctx, mallory) // any other identity's bundle
	if err != nil {
		t.Fatal(err)
	}
	malloryBundle, err := rm.Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	symKey, err := chat.PublicChatKey("wrapped")
	if err != nil {
		t.Fatal(err)
	}
	post := func(f func(*rpb.ProtocolMessage)) {
		t.Helper()
		pm, err := ratchet.DecodeProtocolMessage(good)
		if err != nil {
			t.Fatal(err)
		}
		f(pm)
		b, err := proto.Marshal(pm)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: chat.PublicChatTopic("wrapped"), KeySym: symKey, Src: alice,
			Payload: b, TTL: status.DefaultTTL, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	k, _ := crypto.GenerateKey()
	for _, tc := range []struct {
		name string
		f    func(*rpb.ProtocolMessage)
		want string
	}{
		{"signature of another key", func(pm *rpb.ProtocolMessage) { pm.Bundles[0].Signature[3] ^= 1 }, status.DropBadBundle},
		{"another identity's bundle", func(pm *rpb.ProtocolMessage) { pm.Bundles = []*rpb.Bundle{malloryBundle} }, status.DropBadBundle},
		{"four installations", func(pm *rpb.ProtocolMessage) {
			for _, id := range []string{"x", "y", "z"} {
				pm.Bundles[0].SignedPreKeys[id] = &rpb.SignedPreKey{SignedPreKey: crypto.CompressPubkey(&k.PublicKey), Version: 1}
			}
		}, status.DropBadBundle},
		{"no public message", func(pm *rpb.ProtocolMessage) { pm.PublicMessage = nil }, status.DropUnsupported},
	} {
		post(tc.f)
		if r := drops.next(t); r != tc.want {
			t.Fatalf("%s: dropped as %q, want %q", tc.name, r, tc.want)
		}
	}
	if n := reader.Stats().Dropped[status.DropBadBundle]; n != 3 {
		t.Fatalf("%d bad_bundle drops, want 3", n)
	}
	// The good one still goes through after them.
	if _, err := chA.Send(ctx, "still wrapped", alice); err != nil {
		t.Fatal(err)
	}
	if m := next(t, chB); m.Text != "still wrapped" {
		t.Fatalf("after the bad ones: %q", m.Text)
	}
}
