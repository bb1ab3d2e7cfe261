package interop

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestRefMail_historyFromGethMailserver runs geth's v6 mailserver between
// three reference nodes: A is the mailserver, B posts three short-lived
// messages that A archives, and after they have expired C connects to A,
// requests the history and receives them through its subscription. The
// messages are already expired when C connects, so they can only have come
// as code-127 history replies, not by gossip.
func TestRefMail_historyFromGethMailserver(t *testing.T) {
	const (
		password = "status-offline-inbox"
		ttl      = 3
	)
	ref := StartReference(t)
	status, err := ref.Derive("status")
	if err != nil {
		t.Fatal(err)
	}
	alice := mustHex(t, "9c0257114eb9399a2985f8e75dad7600c5d89fe3824ffa99ec1c3eb8bf3b0501")
	aliceSigner := mustHex(t, "045eed5fa3a67696c334762bb4823e585e2ee579aba3558d9955296d6c04541b426078dbd48d74af1fd0c72aa1a05147cf17be6b60bdbed6ba19b08ec28445b0ca")

	a := StartRefNode(t, RefNodeOptions{MinPoW: 0.001, MailserverPassword: password, MailserverPoW: 0.002})
	b := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	if err := b.AddPeer(a.Enode(), false); err != nil {
		t.Fatal(err)
	}
	waitPeerEvent(t, a, "add", 10*time.Second)
	waitPeerEvent(t, b, "add", 10*time.Second)

	posted := map[[32]byte][]byte{} // hash -> payload
	for i := range 3 {
		payload := []byte(fmt.Sprintf("history message %d", i))
		hash, _, err := b.Post(SealRequest{
			Payload:  payload,
			Topic:    status.Topic,
			TTL:      ttl,
			PoW:      0.002,
			WorkTime: 5,
			SymKey:   status.SymKey,
			SrcPriv:  alice,
		})
		if err != nil {
			t.Fatal(err)
		}
		posted[hash] = payload
	}
	lastPost := time.Now()

	// A archives what its pool accepts from B.
	deadline := time.Now().Add(10 * time.Second)
	for {
		archived, _, err := a.MailserverStats()
		if err != nil {
			t.Fatal(err)
		}
		if archived == 3 {
			break
		}
		if archived > 3 || time.Now().After(deadline) {
			t.Fatalf("mailserver archived %d envelopes, want 3", archived)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("A archived 3 envelopes %v after the last post", time.Since(lastPost))

	// Let every message expire (Expiry <= post second + ttl), and A's pool
	// drop them (its expiry cycle is 1 s).
	time.Sleep(time.Until(lastPost.Truncate(time.Second).Add((ttl + 2) * time.Second)))

	c := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	filter, err := c.Subscribe(status.Topic, status.SymKey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(a.Enode(), false); err != nil {
		t.Fatal(err)
	}
	waitPeerEvent(t, c, "add", 10*time.Second)

	now := uint32(time.Now().Unix())
	good := HistoryRequest{
		Peer:     a.ID(),
		Password: password,
		Lower:    now - 60,
		Upper:    now + 60,
		Bloom:    status.Bloom[:],
		PoW:      0.002,
	}
	// Requests that geth answers with nothing. A serves the requests of one
	// peer in order on one connection, so anything they returned would
	// arrive before the good request's replies and show as extra messages.
	wrongPassword := good
	wrongPassword.Password = "not the password"
	tooEarly := good
	tooEarly.Lower, tooEarly.Upper = now-3600, now-1800
	maxUpper := good // geth computes upper+1 in uint32: 0xFFFFFFFF+1 = 0
	maxUpper.Lower, maxUpper.Upper = 0, 0xFFFFFFFF
	byURL := good // the enode URL form of Peer, and the 8-byte payload
	byURL.Peer, byURL.Bloom = a.Enode(), nil
	byURL.Lower, byURL.Upper = now+3600, now+7200 // nothing there either
	for _, req := range []HistoryRequest{wrongPassword, tooEarly, maxUpper, byURL} {
		if _, err := c.RequestHistory(req); err != nil {
			t.Fatal(err)
		}
	}
	requested := time.Now()
	if _, err := c.RequestHistory(good); err != nil {
		t.Fatal(err)
	}

	var lastSent uint32
	for i := range 3 {
		m := c.WaitMessage(t, 10*time.Second)
		if i == 0 {
			t.Logf("C received the first history message %v after the request", time.Since(requested))
		}
		payload, ok := posted[m.Hash]
		if !ok {
			t.Fatalf("message %d: hash %x was not posted (payload %q)", i, m.Hash, m.Payload)
		}
		delete(posted, m.Hash)
		if !bytes.Equal(m.Payload, payload) {
			t.Errorf("message %d: payload %q, want %q", i, m.Payload, payload)
		}
		if !bytes.Equal(m.Signer, aliceSigner) {
			t.Errorf("message %d: signer %x, want %x", i, m.Signer, aliceSigner)
		}
		if m.Filter != filter || m.Topic != status.Topic || m.TTL != ttl {
			t.Errorf("message %d: filter %s topic %x ttl %d, want %s %x %d", i, m.Filter, m.Topic, m.TTL, filter, status.Topic, ttl)
		}
		if m.Sent < lastSent {
			t.Errorf("message %d: sent %d before the previous message's %d", i, m.Sent, lastSent)
		}
		lastSent = m.Sent
		if exp := int64(m.Sent + m.TTL); exp >= time.Now().Unix() {
			t.Errorf("message %d: expiry %d is not in the past, so it may have come by gossip", i, exp)
		}
	}
	select {
	case extra := <-c.Messages():
		t.Errorf("unexpected extra message %q (hash %x)", extra.Payload, extra.Hash)
	case <-time.After(time.Second):
	}
	archived, requests, err := a.MailserverStats()
	if err != nil {
		t.Fatal(err)
	}
	if archived != 3 || requests != 5 {
		t.Errorf("mailserver stats: archived %d requests %d, want 3 and 5", archived, requests)
	}
	if _, _, err := c.MailserverStats(); err == nil {
		t.Error("MailserverStats on a node without a mailserver succeeded")
	}
}
