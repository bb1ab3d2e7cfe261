package statusref

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/interop"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestBridge_gethAndStatusGo: the two network generations in one public chat through
// our node. go-ethereum v1.9.20 speaks only Whisper (shh/6), status-go v0.70.1 here only
// Waku (waku/1); each is connected to our node alone, which speaks both. Every message
// from each reaches the other exactly once, with its signature and message id intact:
// status-go's Messenger's (a ProtocolMessage around the signed ApplicationMetadataMessage)
// at geth, and ours sent from geth (the 1.x protobuf payload, signed by a key of geth's
// sender) at status-go's Messenger. Our node counts what it relayed between them.
func TestBridge_gethAndStatusGo(t *testing.T) {
	const name, n = "statusgate-generations", 3
	topic := whisper.TopicFromName(name)
	sym, err := whisper.SymKeyFromPassword(name)
	if err != nil {
		t.Fatal(err)
	}
	mid := statusnet.NewNode(t, node.Config{})
	geth := interop.StartRefNode(t, interop.RefNodeOptions{MinPoW: 0.001})
	ref := startWaku(t, WakuOptions{}, Options{})
	if err := geth.AddPeer(mid.Enode(), false); err != nil {
		t.Fatal(err)
	}
	if err := ref.AddPeer(mid.Enode()); err != nil {
		t.Fatal(err)
	}
	for id, proto := range map[enode.ID]string{enode.HexID(geth.ID()): "shh/6", enode.HexID(ref.ID()): "waku/1"} {
		p := statusnet.WaitPeerInfo(t, mid, func(p whisper.PeerInfo) bool { return p.ID == id })
		if p.Protocol != proto {
			t.Fatalf("peer %s speaks %s, want %s", id.TerminalString(), p.Protocol, proto)
		}
	}
	if err := ref.JoinPublic(name); err != nil {
		t.Fatal(err)
	}
	if _, err := geth.Subscribe(topic, sym.Bytes(), nil, 0); err != nil {
		t.Fatal(err)
	}
	// status-go's topic interest with the chat has reached our node.
	statusnet.WaitPeerInfo(t, mid, func(p whisper.PeerInfo) bool { return p.ID == enode.HexID(ref.ID()) && p.Topics > 0 })

	// status-go → geth.
	sent := map[[32]byte]string{}
	for i := range n {
		text := fmt.Sprintf("from status-go %d", i)
		s, err := ref.Send(name, text, "")
		if err != nil {
			t.Fatal(err)
		}
		sent[s.ID] = text
	}
	seen := map[[32]byte]int{}
	readGeth := func(until [32]byte) {
		for seen[until] == 0 {
			m := geth.WaitMessage(t, wait)
			if m.Topic != topic {
				continue
			}
			id, text, author := readStatusGo(t, m)
			if !author.Equal(ref.PublicKey()) {
				t.Fatalf("geth got a message signed by %x, want status-go's key", crypto.FromECDSAPub(author))
			}
			if want, ok := sent[id]; !ok || want != text {
				t.Fatalf("geth got %q with id %x, which status-go did not send", text, id)
			}
			seen[id]++
		}
	}
	for id := range sent {
		readGeth(id)
	}
	// One more after all have arrived: a repeat of any would come before it.
	last, err := ref.Send(name, "status-go, last", "")
	if err != nil {
		t.Fatal(err)
	}
	sent[last.ID] = "status-go, last"
	readGeth(last.ID)
	for id, text := range sent {
		if seen[id] != 1 {
			t.Fatalf("%q reached geth %d times", text, seen[id])
		}
	}

	// geth → status-go, signed by a key of geth's user.
	alice, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[[32]byte]string{}
	post := func(i int, text string) [32]byte {
		now := time.Now()
		payload, err := chat.Encode(&chat.Message{Text: text, ChatID: name, Clock: uint64(now.UnixMilli()) + uint64(i),
			Timestamp: uint64(now.UnixMilli()), MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain},
			chat.FormatProtobuf, alice)
		if err != nil {
			t.Fatal(err)
		}
		id, err := chat.MessageID(&alice.PublicKey, payload)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = text
		if _, _, err := geth.Post(interop.SealRequest{Payload: payload, Topic: topic, TTL: 15, PoW: 0.002, WorkTime: 5,
			SymKey: sym.Bytes(), SrcPriv: crypto.FromECDSA(alice)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := range n {
		post(i, fmt.Sprintf("from geth %d", i))
	}
	got := map[[32]byte]int{}
	readRef := func(until [32]byte) {
		for got[until] == 0 {
			m := ref.WaitMessage(t, wait)
			if text, ok := ids[m.ID]; !ok || text != m.Text || !m.From.Equal(&alice.PublicKey) || m.ChatID != name {
				t.Fatalf("status-go got %q (id %x) from %x in %q", m.Text, m.ID, crypto.FromECDSAPub(m.From), m.ChatID)
			}
			got[m.ID]++
		}
	}
	for id := range ids {
		readRef(id)
	}
	readRef(post(n, "geth, last"))
	for id, text := range ids {
		if got[id] != 1 {
			t.Fatalf("%q reached status-go %d times", text, got[id])
		}
	}
	var wakuStats, shhStats whisper.ProtocolStats
	for _, p := range mid.Whisper().Stats().Protocols {
		switch p.Name {
		case "waku":
			wakuStats = p
		case "shh":
			shhStats = p
		}
	}
	if shhStats.SentFrom["waku"] < n+1 || wakuStats.SentFrom["shh"] < n+1 {
		t.Fatalf("relayed waku→shh %d, shh→waku %d; want at least %d each", shhStats.SentFrom["waku"], wakuStats.SentFrom["shh"], n+1)
	}
	t.Logf("relayed waku→shh %d, shh→waku %d", shhStats.SentFrom["waku"], wakuStats.SentFrom["shh"])
}

// readStatusGo decodes what status-go's Messenger posts to a public chat, as geth
// delivered it: a ProtocolMessage whose public_message is the signed
// ApplicationMetadataMessage. It returns the message id (over those inner bytes), the
// text and the author the inner signature names, which must be the envelope's signer.
func readStatusGo(t *testing.T, m interop.NodeMessage) (id [32]byte, text string, author *ecdsa.PublicKey) {
	t.Helper()
	inner := m.Payload
	if pm, err := ratchet.DecodeProtocolMessage(m.Payload); err == nil && len(pm.PublicMessage) > 0 {
		inner = pm.PublicMessage
	}
	d, err := chat.Decode(inner)
	if err != nil {
		t.Fatalf("status-go's payload at geth: %v", err)
	}
	signer, err := crypto.UnmarshalPubkey(m.Signer)
	if err != nil || d.Author == nil || !bytes.Equal(crypto.FromECDSAPub(d.Author), m.Signer) {
		t.Fatalf("envelope signer %x, inner author %v (%v)", m.Signer, d.Author, err)
	}
	cid, err := chat.MessageID(signer, inner)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(cid), d.Message.Text, signer
}
