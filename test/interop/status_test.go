package interop

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/identity"
)

// joinStatus joins #status through the SDK on n until the test ends.
func joinStatus(t *testing.T, n *node.Node, cfg status.Config) *status.Chat {
	t.Helper()
	client, err := status.New(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	room, err := client.Join(ctx, "status")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); room.Leave() })
	return room
}

// TestStatus_gethToSDK: a Status message posted by geth v1.9.20, with a payload built as
// a 2019 client (Transit) and as a 2020 client (protobuf) would, reaches our SDK stream
// with the right author, alias and text.
func TestStatus_gethToSDK(t *testing.T) {
	ref, ours := linkedPair(t, node.Config{})
	room := joinStatus(t, ours, status.Config{Namer: identity.NewNamer(nil)})
	bob := mustKey(t, "bob")
	sym, err := chat.PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().UnixMilli())
	for i, f := range []chat.Format{chat.FormatTransit, chat.FormatProtobuf} {
		text := "hello from geth in " + f.String()
		payload, err := chat.Encode(&chat.Message{Clock: now + uint64(i), Timestamp: now, Text: text, ChatID: "status",
			MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}, f, bob)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ref.Post(SealRequest{Payload: payload, Topic: chat.PublicChatTopic("status"), TTL: 15, PoW: 0.002,
			WorkTime: 5, SymKey: sym.Bytes(), SrcPriv: crypto.FromECDSA(bob)}); err != nil {
			t.Fatal(err)
		}
		var m *status.Message
		select {
		case m = <-room.Messages():
		case <-time.After(msgTimeout):
			t.Fatalf("%v: no message in the SDK stream", f)
		}
		wantAlias := identity.NewNamer(nil).Name(&bob.PublicKey)
		wantID, _ := chat.MessageID(&bob.PublicKey, payload)
		if m.Text != text || !m.Author.Equal(&bob.PublicKey) || m.Alias != wantAlias || m.Format != f || m.ID != wantID ||
			m.Clock != now+uint64(i) || m.Timestamp.UnixMilli() != int64(now) {
			t.Errorf("%v: got %+v, want author bob, alias %q, id %v", f, m, wantAlias, wantID)
		}
	}
}

// TestStatus_SDKToGeth: what our SDK sends opens in geth v1.9.20 to exactly the payload
// bytes the protocol describes, in both generations: the Transit record of PROTOCOL.md
// §7.1 and the protobuf ApplicationMetadataMessage of §7.3, the latter assembled here
// field by field from the spec's field numbers (not with our codec).
func TestStatus_SDKToGeth(t *testing.T) {
	ref, ours := linkedPair(t, node.Config{})
	sym, err := chat.PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Subscribe(chat.PublicChatTopic("status"), sym.Bytes(), nil, 0); err != nil {
		t.Fatal(err)
	}
	fixed := time.UnixMilli(1575000000000)
	room := joinStatus(t, ours, status.Config{Clock: func() time.Time { return fixed }})
	alice := mustKey(t, "alice")
	if _, err := room.Send(context.Background(), "hello", alice); err != nil {
		t.Fatal(err)
	}

	wantTransit := []byte(`["~#c4",["hello","text/plain","~:public-group-user-message",1575000000000,1575000000000,["^ ","~:chat-id","status","~:text","hello"]]]`)
	var cm []byte // ChatMessage, §7.3
	cm = protowire.AppendTag(cm, 1, protowire.VarintType)
	cm = protowire.AppendVarint(cm, 1575000000000) // clock
	cm = protowire.AppendTag(cm, 2, protowire.VarintType)
	cm = protowire.AppendVarint(cm, 1575000000000) // timestamp
	cm = protowire.AppendTag(cm, 3, protowire.BytesType)
	cm = protowire.AppendString(cm, "hello") // text
	cm = protowire.AppendTag(cm, 6, protowire.BytesType)
	cm = protowire.AppendString(cm, "status") // chat_id
	cm = protowire.AppendTag(cm, 7, protowire.VarintType)
	cm = protowire.AppendVarint(cm, 2) // PUBLIC_GROUP
	cm = protowire.AppendTag(cm, 8, protowire.VarintType)
	cm = protowire.AppendVarint(cm, 1) // TEXT_PLAIN
	sig, err := crypto.Sign(crypto.Keccak256(cm), alice)
	if err != nil {
		t.Fatal(err)
	}
	var wantProto []byte // ApplicationMetadataMessage
	wantProto = protowire.AppendTag(wantProto, 1, protowire.BytesType)
	wantProto = protowire.AppendBytes(wantProto, sig)
	wantProto = protowire.AppendTag(wantProto, 2, protowire.BytesType)
	wantProto = protowire.AppendBytes(wantProto, cm)
	wantProto = protowire.AppendTag(wantProto, 3, protowire.VarintType)
	wantProto = protowire.AppendVarint(wantProto, 1) // CHAT_MESSAGE

	got := map[string][]byte{}
	for len(got) < 2 {
		m := ref.WaitMessage(t, msgTimeout)
		if !bytes.Equal(m.Signer, crypto.FromECDSAPub(&alice.PublicKey)) {
			t.Fatalf("geth: signer %x, want alice", m.Signer)
		}
		if m.PoW < 0.002 || m.TTL != 15 {
			t.Errorf("envelope PoW %v TTL %d, want ≥ 0.002 and 15", m.PoW, m.TTL)
		}
		if len(m.Payload) > 0 && m.Payload[0] == '[' {
			got["transit"] = m.Payload
		} else {
			got["protobuf"] = m.Payload
		}
	}
	if !bytes.Equal(got["transit"], wantTransit) {
		t.Errorf("Transit payload\n got %s\nwant %s", got["transit"], wantTransit)
	}
	if !bytes.Equal(got["protobuf"], wantProto) {
		t.Errorf("protobuf payload\n got %x\nwant %x", got["protobuf"], wantProto)
	}
}
