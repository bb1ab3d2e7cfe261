package interop

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/whisper"
)

// waitPeerEvent waits for a peer event of the given kind on n.
func waitPeerEvent(tb testing.TB, n *RefNode, event string, timeout time.Duration) PeerEvent {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-n.PeerEvents():
			if ev.Event == event {
				return ev
			}
		case <-deadline:
			tb.Fatalf("no peer %q event within %v", event, timeout)
			return PeerEvent{}
		}
	}
}

func TestRefNode_twoNodesExchange(t *testing.T) {
	ref := StartReference(t)
	status, err := ref.Derive("status")
	if err != nil {
		t.Fatal(err)
	}
	topic := [4]byte{0xcd, 0x42, 0x37, 0x60}
	if status.Topic != topic {
		t.Fatalf("derived topic %x, want %x", status.Topic, topic)
	}

	a := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	b := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	start := time.Now()
	if err := b.AddPeer(a.Enode(), false); err != nil {
		t.Fatal(err)
	}
	if ev := waitPeerEvent(t, a, "add", 10*time.Second); ev.ID != b.ID() {
		t.Errorf("A: peer add of %s, want B %s", ev.ID, b.ID())
	}
	if ev := waitPeerEvent(t, b, "add", 10*time.Second); ev.ID != a.ID() {
		t.Errorf("B: peer add of %s, want A %s", ev.ID, a.ID())
	}
	t.Logf("peers connected after %v", time.Since(start))
	peers, err := b.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0] != a.ID() {
		t.Errorf("B peers = %v, want [%s]", peers, a.ID())
	}

	filter, err := b.Subscribe(topic, status.SymKey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	alice := mustHex(t, "9c0257114eb9399a2985f8e75dad7600c5d89fe3824ffa99ec1c3eb8bf3b0501")
	aliceSigner := mustHex(t, "045eed5fa3a67696c334762bb4823e585e2ee579aba3558d9955296d6c04541b426078dbd48d74af1fd0c72aa1a05147cf17be6b60bdbed6ba19b08ec28445b0ca")
	payload := []byte("hello from A")

	posted := time.Now()
	hash, env, err := a.Post(SealRequest{
		Payload:  payload,
		Topic:    topic,
		TTL:      15,
		PoW:      0.002,
		WorkTime: 5,
		SymKey:   status.SymKey,
		SrcPriv:  alice,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) == 0 {
		t.Fatal("post returned no envelope")
	}
	m := b.WaitMessage(t, 5*time.Second)
	t.Logf("B received the message %v after Post", time.Since(posted))
	if m.Filter != filter {
		t.Errorf("filter %s, want %s", m.Filter, filter)
	}
	if !bytes.Equal(m.Payload, payload) {
		t.Errorf("payload %q, want %q", m.Payload, payload)
	}
	if !bytes.Equal(m.Signer, aliceSigner) {
		t.Errorf("signer %x, want %x", m.Signer, aliceSigner)
	}
	if m.Hash != hash {
		t.Errorf("hash %x, want %x", m.Hash, hash)
	}
	if m.Topic != topic || m.TTL != 15 {
		t.Errorf("topic %x ttl %d, want %x 15", m.Topic, m.TTL, topic)
	}
	if m.PoW < 0.002 {
		t.Errorf("pow %v < 0.002", m.PoW)
	}
	select {
	case extra := <-b.Messages():
		t.Errorf("unexpected second message %+v", extra)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRefNode_sendRawRejectsLowPoW(t *testing.T) {
	ref := StartReference(t)
	status, err := ref.Derive("status")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ref.Seal(SealRequest{
		Payload: []byte("no work"),
		Topic:   status.Topic,
		TTL:     15,
		PoW:     0,
		SymKey:  status.SymKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Unsealed, nonce 0 has a PoW of 1 or more by chance (13 leading zero bits, one time
	// in 8,000): take the first nonce below the node's requirement.
	env, err := whisper.DecodeEnvelope(sealed.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	n := StartRefNode(t, RefNodeOptions{MinPoW: 1.0})
	err = n.SendRaw(powBetween(t, env, 0, 1.0).Bytes())
	if err == nil {
		t.Fatal("SendRaw of a PoW-0 envelope to a MinPoW-1.0 node succeeded")
	}
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("error %v does not wrap ErrRefused", err)
	}
	t.Logf("refused as expected: %v", err)

	if err := n.SetPoW(0.5); err != nil {
		t.Fatal(err)
	}
	var bloom [64]byte
	for i := range bloom {
		bloom[i] = 0xff
	}
	if err := n.SetBloom(bloom); err != nil {
		t.Fatal(err)
	}
	// Undecodable bytes are refused too, with rlp's error.
	if err := n.SendRaw([]byte{0x01, 0x02}); !errors.Is(err, ErrRefused) {
		t.Fatalf("SendRaw of garbage: %v, want ErrRefused", err)
	}
}
