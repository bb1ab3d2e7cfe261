package status_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/chat"
	pb "github.com/statusgate/statusgate/core/chat/protobuf"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestChat_recoveriesPerMessage counts the signer recoveries (libsecp256k1) of a chat's
// node, through the node's whisper.Signers, for what a Status client receives:
//
//   - a message in both formats from another node: the Transit envelope's signer (its
//     author) and the protobuf payload's inner signer (its author); the protobuf
//     envelope's own signature is not recovered, since the message is a duplicate of
//     the Transit one (2 recoveries, not 3);
//   - our own post read back by our own chat: none (its signatures were made through
//     the same cache);
//   - the same envelope again from a mailserver: none.
//
// And what may not be skipped is not: a protobuf message whose envelope signature
// recovers no key, or whose inner signature recovers none, is dropped.
func TestChat_recoveriesPerMessage(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	alice := key(t, "alice")
	dropsT, dropsP := dropWatch{reasons: make(chan string, 64)}, dropWatch{reasons: make(chan string, 64)}
	transitOnly, err := status.New(nodes[0], status.Config{SendFormat: chat.SendTransit, Logger: slog.New(dropsT)})
	if err != nil {
		t.Fatal(err)
	}
	protoOnly, err := status.New(nodes[0], status.Config{SendFormat: chat.SendProtobuf, Logger: slog.New(dropsP)})
	if err != nil {
		t.Fatal(err)
	}
	drops := dropWatch{reasons: make(chan string, 64)}
	reader, err := status.New(nodes[1], status.Config{Logger: slog.New(drops)})
	if err != nil {
		t.Fatal(err)
	}
	join := func(c *status.Client) *status.Chat {
		t.Helper()
		ch, err := c.Join(ctx, "status")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ch.Leave)
		return ch
	}
	chT, chP, chB := join(transitOnly), join(protoOnly), join(reader)
	recB := func() whisper.SignerStats { return nodes[1].Signers().Stats() }
	recA := func() whisper.SignerStats { return nodes[0].Signers().Stats() }

	// Both formats, Transit first (as SendBoth sends them), the same clock and time.
	at := time.Now().Truncate(time.Millisecond)
	out := status.Outgoing{Text: "twice", Clock: chT.NextClock(at), Timestamp: at}
	a0 := recA()
	if _, err := chT.SendMessage(ctx, out, alice); err != nil {
		t.Fatal(err)
	}
	if m := next(t, chB); m.Text != "twice" || !m.Author.Equal(&alice.PublicKey) || m.Format != chat.FormatTransit {
		t.Fatalf("got %+v", m)
	}
	b0 := recB()
	if b0.Recovered != 1 {
		t.Fatalf("node B: %d recoveries for a Transit message, want 1", b0.Recovered)
	}
	if _, err := chP.SendMessage(ctx, out, alice); err != nil {
		t.Fatal(err)
	}
	if r := drops.next(t); r != status.DropDuplicate {
		t.Fatalf("protobuf twin dropped as %q, want duplicate", r)
	}
	if n := recB().Recovered - b0.Recovered; n != 1 {
		t.Fatalf("node B: %d recoveries for the protobuf twin, want 1 (its inner signature only)", n)
	}
	// Node A's own chats read both posts back (the Transit one delivered, its protobuf
	// twin dropped): nothing recovered there.
	for i, ch := range []*status.Chat{chT, chP} {
		if m := next(t, ch); m.Text != "twice" || !m.Author.Equal(&alice.PublicKey) {
			t.Fatalf("echo %+v", m)
		}
		if r := []dropWatch{dropsT, dropsP}[i].next(t); r != status.DropDuplicate {
			t.Fatalf("echo of the protobuf twin dropped as %q, want duplicate", r)
		}
	}
	if a := recA(); a.Recovered != a0.Recovered {
		t.Fatalf("node A recovered %d signatures of its own posts, want 0 (stats %+v)", a.Recovered-a0.Recovered, a)
	}

	// A new protobuf message whose envelope signature recovers no key: refused.
	sym, err := chat.PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().UnixMilli())
	payload, err := chat.Encode(&chat.Message{Clock: now + 10, Timestamp: now, Text: "forged outer", ChatID: "status",
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, alice)
	if err != nil {
		t.Fatal(err)
	}
	postRaw(t, nodes[0], sym, payload, make([]byte, 65))
	if r := drops.next(t); r != status.DropBadSignature {
		t.Fatalf("forged envelope signature dropped as %q, want %q", r, status.DropBadSignature)
	}
	// A protobuf message whose inner signature recovers no key, in a good envelope.
	var amm pb.ApplicationMetadataMessage
	bad, err := chat.Encode(&chat.Message{Clock: now + 11, Timestamp: now, Text: "forged inner", ChatID: "status",
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(bad, &amm); err != nil {
		t.Fatal(err)
	}
	amm.Signature = make([]byte, 65)
	if bad, err = proto.Marshal(&amm); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: chat.PublicChatTopic("status"), KeySym: sym, Src: alice,
		Payload: bad, TTL: 15, PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if r := drops.next(t); r != status.DropUndecodable {
		t.Fatalf("forged inner signature dropped as %q, want %q", r, status.DropUndecodable)
	}
	// A marker: nothing of the two forged ones was delivered before it.
	if _, err := chT.Send(ctx, "marker", alice); err != nil {
		t.Fatal(err)
	}
	if m := next(t, chB); m.Text != "marker" {
		t.Fatalf("got %q, want the marker", m.Text)
	}
	if st := reader.Stats(); st.Delivered != 2 || st.Dropped[status.DropBadSignature] != 1 || st.Dropped[status.DropUndecodable] != 1 {
		t.Fatalf("reader stats %+v", st)
	}
}

// postRaw sends, from nd, a public chat envelope whose plaintext carries payload and the
// given 65 signature bytes, encrypted with sym: a signature no honest node makes.
func postRaw(t *testing.T, nd *node.Node, sym *whisper.SymKey, payload, sig []byte) {
	t.Helper()
	pt := []byte{0x04 | 2, byte(len(payload)), byte(len(payload) >> 8)} // signed, 2-byte size
	pt = append(pt, payload...)
	pad := make([]byte, whisper.PaddingLength(len(payload), true)-1) // the size field is one byte longer
	if _, err := rand.Read(pad); err != nil {
		t.Fatal(err)
	}
	pt = append(append(pt, pad...), sig...)
	block, err := aes.NewCipher(sym.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	data := append(gcm.Seal(nil, nonce, pt, nil), nonce...)
	env, err := whisper.NewEnvelope(uint32(time.Now().Unix())+15, 15, chat.PublicChatTopic("status"), data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if env, err = env.Seal(whisper.SealOptions{PoW: status.DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := nd.Whisper().Send(env); err != nil {
		t.Fatal(err)
	}
}
