package interop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

const msgTimeout = 15 * time.Second

// linkedPair starts a reference node and one of ours, connected over RLPx on loopback.
func linkedPair(t *testing.T, cfg node.Config) (*RefNode, *node.Node) {
	t.Helper()
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	ours := statusnet.NewNode(t, cfg)
	if err := ours.AddPeer(ref.Enode(), false); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, ours, refID(t, ref))
	waitRefPeers(t, ref, 1)
	return ref, ours
}

func refID(t *testing.T, ref *RefNode) enode.ID {
	t.Helper()
	n, err := enode.ParseV4(ref.Enode())
	if err != nil {
		t.Fatal(err)
	}
	return n.ID()
}

func waitRefPeers(t *testing.T, ref *RefNode, k int) {
	t.Helper()
	deadline := time.Now().Add(msgTimeout)
	for {
		peers, err := ref.Peers()
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) == k {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reference has peers %v, want %d", peers, k)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func peerInfo(t *testing.T, n *node.Node, id enode.ID) whisper.PeerInfo {
	t.Helper()
	for _, p := range n.Peers() {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("no peer %s", id.TerminalString())
	return whisper.PeerInfo{}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(msgTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustKey(t *testing.T, seed string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSymKey(t *testing.T, name string) *whisper.SymKey {
	t.Helper()
	k, err := whisper.SymKeyFromPassword(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// lowEnvelope is a symmetric envelope of payload on topic (TTL 15 s) whose PoW lies in
// [min, max): above what its sender requires of its own posts, below the requirement the
// test has it miss. Sealing to a target (ours and geth's) stops at the first nonce that
// reaches it, but that nonce overshoots at random: sealed to 0.002, an envelope reaches
// 0.5 (8 more leading zero bits) one time in 256 and would meet that requirement. The
// first nonce in range is taken instead.
func lowEnvelope(t *testing.T, topic whisper.Topic, sym *whisper.SymKey, payload string, min, max float64) *whisper.Envelope {
	t.Helper()
	env, err := whisper.Wrap(&whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte(payload), TTL: 15})
	if err != nil {
		t.Fatal(err)
	}
	return powBetween(t, env, min, max)
}

// powBetween returns env with the first nonce from 0 whose PoW lies in [min, max).
func powBetween(t *testing.T, env *whisper.Envelope, min, max float64) *whisper.Envelope {
	t.Helper()
	for n := uint64(0); ; n++ {
		e, err := whisper.NewEnvelope(env.Expiry(), env.TTL(), env.Topic(), env.Data(), n)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.PoW(); p >= min && p < max {
			return e
		}
	}
}

func subscribeOurs(t *testing.T, n *node.Node, f whisper.Filter) *whisper.Subscription {
	t.Helper()
	sub, err := n.Subscribe(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Unsubscribe)
	return sub
}

func next(t *testing.T, sub *whisper.Subscription) *whisper.ReceivedMessage {
	t.Helper()
	select {
	case m := <-sub.C():
		return m
	case <-time.After(msgTimeout):
		t.Fatal("no message on our subscription")
		return nil
	}
}

func post(t *testing.T, n *node.Node, p *whisper.MessageParams) *whisper.Envelope {
	t.Helper()
	if p.TTL == 0 {
		p.TTL = 15
	}
	if p.WorkTime == 0 {
		p.WorkTime = 5 * time.Second
	}
	env, err := n.Post(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestRLPx_messagesBothWays: our node and geth v1.9.20 exchange signed messages over
// RLPx, symmetric and asymmetric, at Status's PoW of 0.002, in both directions.
func TestRLPx_messagesBothWays(t *testing.T) {
	ref, ours := linkedPair(t, node.Config{})
	topic := whisper.TopicFromName("status")
	sym := mustSymKey(t, "status")
	refFilterKey, ourKey, alice := mustKey(t, "ref filter"), mustKey(t, "our identity"), mustKey(t, "alice")

	symFilter, err := ref.Subscribe(topic, sym.Bytes(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	asymFilter, err := ref.Subscribe(topic, nil, crypto.FromECDSA(refFilterKey), 0)
	if err != nil {
		t.Fatal(err)
	}
	ourSym := subscribeOurs(t, ours, whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
	ourAsym := subscribeOurs(t, ours, whisper.Filter{Topics: []whisper.Topic{topic}, AsymKey: ourKey})

	// ours → geth
	env := post(t, ours, &whisper.MessageParams{Topic: topic, KeySym: sym, Src: alice, Payload: []byte("sym from statusgate"), PoW: 0.002})
	post(t, ours, &whisper.MessageParams{Topic: topic, Dst: &refFilterKey.PublicKey, Src: alice, Payload: []byte("asym from statusgate"), PoW: 0.002})
	got := map[string]NodeMessage{}
	for len(got) < 2 {
		m := ref.WaitMessage(t, msgTimeout)
		got[m.Filter] = m
	}
	aliceRaw := crypto.FromECDSAPub(&alice.PublicKey)
	if m := got[symFilter]; string(m.Payload) != "sym from statusgate" || !bytes.Equal(m.Signer, aliceRaw) || m.Hash != env.Hash() || m.PoW < 0.002 {
		t.Errorf("geth's symmetric message: %+v", m)
	}
	if m := got[asymFilter]; string(m.Payload) != "asym from statusgate" || !bytes.Equal(m.Signer, aliceRaw) {
		t.Errorf("geth's asymmetric message: %+v", m)
	}
	// Our own posts also reach our own subscriptions; skip them.
	if m := next(t, ourSym); string(m.Payload) != "sym from statusgate" {
		t.Fatalf("our own message: %q", m.Payload)
	}

	// geth → ours
	bob := mustKey(t, "bob")
	if _, _, err := ref.Post(SealRequest{Payload: []byte("sym from geth"), Topic: topic, TTL: 15, PoW: 0.002, WorkTime: 5,
		SymKey: sym.Bytes(), SrcPriv: crypto.FromECDSA(bob)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ref.Post(SealRequest{Payload: []byte("asym from geth"), Topic: topic, TTL: 15, PoW: 0.002, WorkTime: 5,
		DstPub: crypto.FromECDSAPub(&ourKey.PublicKey), SrcPriv: crypto.FromECDSA(bob)}); err != nil {
		t.Fatal(err)
	}
	m := next(t, ourSym)
	if string(m.Payload) != "sym from geth" || m.Src == nil || !m.Src.Equal(&bob.PublicKey) || m.PoW < 0.002 {
		t.Errorf("our symmetric message from geth: %q signed by %v, PoW %v", m.Payload, m.Src, m.PoW)
	}
	m = next(t, ourAsym)
	if string(m.Payload) != "asym from geth" || m.Src == nil || !m.Src.Equal(&bob.PublicKey) {
		t.Errorf("our asymmetric message from geth: %q signed by %v", m.Payload, m.Src)
	}
	if len(ours.Peers()) != 1 {
		t.Fatal("lost the reference peer")
	}
	waitRefPeers(t, ref, 1)
}

// TestRLPx_powRequirementHonoured: each side learns the other's PoW requirement (code 2)
// and does not send it envelopes below it.
func TestRLPx_powRequirementHonoured(t *testing.T) {
	ref, ours := linkedPair(t, node.Config{})
	gethID := refID(t, ref)
	topic := whisper.TopicFromName("status")
	sym := mustSymKey(t, "status")
	if _, err := ref.Subscribe(topic, sym.Bytes(), nil, 0); err != nil {
		t.Fatal(err)
	}
	ourSub := subscribeOurs(t, ours, whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})

	t.Run("geth's requirement", func(t *testing.T) {
		if err := ref.SetPoW(0.5); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "our node to learn geth's PoW", func() bool { return peerInfo(t, ours, gethID).PoW == 0.5 })
		before := peerInfo(t, ours, gethID).Sent
		if err := ours.Whisper().Send(lowEnvelope(t, topic, sym, "low", 0.002, 0.5)); err != nil {
			t.Fatal(err)
		}
		post(t, ours, &whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte("high"), PoW: 0.6})
		if m := ref.WaitMessage(t, msgTimeout); string(m.Payload) != "high" {
			t.Fatalf("geth got %q", m.Payload)
		}
		if sent := peerInfo(t, ours, gethID).Sent - before; sent != 1 {
			t.Fatalf("sent geth %d envelopes, want only the one meeting its PoW", sent)
		}
		for range 2 { // our own two
			next(t, ourSub)
		}
	})

	t.Run("our requirement", func(t *testing.T) {
		// Lowered again (so that geth's own Send takes cheap envelopes), geth now gets the
		// envelope we held back: still pooled, it is sent once the requirement allows.
		if err := ref.SetPoW(0.001); err != nil {
			t.Fatal(err)
		}
		if m := ref.WaitMessage(t, msgTimeout); string(m.Payload) != "low" {
			t.Fatalf("geth got %q, want the held-back envelope", m.Payload)
		}
		if err := ours.SetMinPoW(0.5); err != nil {
			t.Fatal(err)
		}
		// Our code 2 goes out before this envelope, so once geth has it, geth knows.
		post(t, ours, &whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte("sync"), PoW: 0.6})
		if m := ref.WaitMessage(t, msgTimeout); string(m.Payload) != "sync" {
			t.Fatalf("geth got %q", m.Payload)
		}
		next(t, ourSub) // our own sync
		before := peerInfo(t, ours, gethID).Received
		// Into geth's pool as its own post (geth's Send): above geth's 0.001, below our 0.5.
		if err := ref.SendRaw(lowEnvelope(t, topic, sym, "low", 0.001, 0.5).Bytes()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ref.Post(SealRequest{Payload: []byte("high"), Topic: topic, TTL: 15, PoW: 0.6, WorkTime: 5, SymKey: sym.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if m := next(t, ourSub); string(m.Payload) != "high" {
			t.Fatalf("we got %q", m.Payload)
		}
		// A marker in a later cycle: once we have it, anything geth sent before is counted.
		if _, _, err := ref.Post(SealRequest{Payload: []byte("marker"), Topic: topic, TTL: 15, PoW: 0.6, WorkTime: 5, SymKey: sym.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if m := next(t, ourSub); string(m.Payload) != "marker" {
			t.Fatalf("we got %q", m.Payload)
		}
		if got := peerInfo(t, ours, gethID).Received - before; got != 2 {
			t.Fatalf("geth sent us %d envelopes, want 2 (high, marker)", got)
		}
	})
}

// TestRLPx_bloomHonoured: each side learns the other's bloom filter (code 3) and sends
// only envelopes whose topic it covers.
func TestRLPx_bloomHonoured(t *testing.T) {
	ref, ours := linkedPair(t, node.Config{})
	gethID := refID(t, ref)
	wanted, unwanted := whisper.TopicFromName("wanted"), whisper.TopicFromName("unwanted")
	symW, symU := mustSymKey(t, "wanted"), mustSymKey(t, "unwanted")
	for _, f := range []struct {
		topic whisper.Topic
		key   *whisper.SymKey
	}{{wanted, symW}, {unwanted, symU}} {
		if _, err := ref.Subscribe(f.topic, f.key.Bytes(), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	ourW := subscribeOurs(t, ours, whisper.Filter{Topics: []whisper.Topic{wanted}, SymKey: symW})
	ourU := subscribeOurs(t, ours, whisper.Filter{Topics: []whisper.Topic{unwanted}, SymKey: symU})

	t.Run("geth's bloom", func(t *testing.T) {
		if err := ref.SetBloom(whisper.BloomOf(wanted)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "our node to learn geth's bloom", func() bool { return !peerInfo(t, ours, gethID).FullNode })
		before := peerInfo(t, ours, gethID).Sent
		post(t, ours, &whisper.MessageParams{Topic: unwanted, KeySym: symU, Payload: []byte("unwanted"), PoW: 0.002})
		post(t, ours, &whisper.MessageParams{Topic: wanted, KeySym: symW, Payload: []byte("wanted"), PoW: 0.002})
		if m := ref.WaitMessage(t, msgTimeout); string(m.Payload) != "wanted" {
			t.Fatalf("geth got %q", m.Payload)
		}
		if sent := peerInfo(t, ours, gethID).Sent - before; sent != 1 {
			t.Fatalf("sent geth %d envelopes, want only the one inside its bloom", sent)
		}
		next(t, ourW)
		next(t, ourU)
	})

	t.Run("our bloom", func(t *testing.T) {
		ours.SetBloom(whisper.BloomOf(wanted))
		post(t, ours, &whisper.MessageParams{Topic: wanted, KeySym: symW, Payload: []byte("sync"), PoW: 0.002})
		if m := ref.WaitMessage(t, msgTimeout); string(m.Payload) != "sync" {
			t.Fatalf("geth got %q", m.Payload)
		}
		next(t, ourW)
		before := peerInfo(t, ours, gethID).Received
		if _, _, err := ref.Post(SealRequest{Payload: []byte("unwanted"), Topic: unwanted, TTL: 15, PoW: 0.002, WorkTime: 5, SymKey: symU.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ref.Post(SealRequest{Payload: []byte("wanted"), Topic: wanted, TTL: 15, PoW: 0.002, WorkTime: 5, SymKey: symW.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if m := next(t, ourW); string(m.Payload) != "wanted" {
			t.Fatalf("we got %q", m.Payload)
		}
		if _, _, err := ref.Post(SealRequest{Payload: []byte("marker"), Topic: wanted, TTL: 15, PoW: 0.002, WorkTime: 5, SymKey: symW.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if m := next(t, ourW); string(m.Payload) != "marker" {
			t.Fatalf("we got %q", m.Payload)
		}
		if got := peerInfo(t, ours, gethID).Received - before; got != 2 {
			t.Fatalf("geth sent us %d envelopes, want 2 (wanted, marker)", got)
		}
		select {
		case m := <-ourU.C():
			t.Fatalf("unwanted topic delivered: %q", m.Payload)
		default:
		}
	})
}

// TestRLPx_gethDisconnectsOnLowPoW: an envelope below geth's PoW requirement makes geth
// drop the peer that sent it.
func TestRLPx_gethDisconnectsOnLowPoW(t *testing.T) {
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	sym := mustSymKey(t, "status")
	env, err := whisper.Wrap(&whisper.MessageParams{Topic: whisper.TopicFromName("status"), KeySym: sym, Payload: []byte("cheap"), TTL: 15})
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); env.PoW() >= 0.001; n++ {
		if env, err = whisper.NewEnvelope(env.Expiry(), env.TTL(), env.Topic(), env.Data(), n); err != nil {
			t.Fatal(err)
		}
	}
	result := make(chan error, 1)
	srv, _ := startShhServer(t, func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		if _, err := whisper.Handshake(rw, whisper.Status{PoW: 0.001, Bloom: whisper.FullBloom()}, whisper.HandshakePolicy{}); err != nil {
			result <- err
			return err
		}
		if err := p2p.Send(rw, 1, []*whisper.Envelope{env}); err != nil {
			result <- err
			return err
		}
		err := drain(rw)
		result <- err
		return err
	})
	srv.AddPeer(enode.MustParse(ref.Enode()))
	waitDrop(t, ref)
	select {
	case err := <-result:
		if err == nil {
			t.Fatal("connection ended without error")
		}
	case <-time.After(msgTimeout):
		t.Fatal("geth kept the connection")
	}
}

func waitDrop(t *testing.T, ref *RefNode) {
	t.Helper()
	timeout := time.After(msgTimeout)
	for {
		select {
		case ev := <-ref.PeerEvents():
			if ev.Event == "drop" {
				return
			}
		case <-timeout:
			t.Fatal("geth did not drop the peer")
		}
	}
}

// lyingRW advertises a PoW requirement of 0 in our handshake while the service enforces
// its real one: the only way to make geth send us an envelope below our requirement.
type lyingRW struct{ p2p.MsgReadWriter }

func (rw lyingRW) WriteMsg(msg p2p.Msg) error {
	if msg.Code == 0 {
		if _, err := io.Copy(io.Discard, msg.Payload); err != nil {
			return err
		}
		body, err := whisper.EncodeStatus(whisper.Status{Bloom: whisper.FullBloom()})
		if err != nil {
			return err
		}
		msg = p2p.Msg{Code: 0, Size: uint32(len(body)), Payload: bytes.NewReader(body)}
	}
	return rw.MsgReadWriter.WriteMsg(msg)
}

// TestRLPx_weDisconnectOnLowPoW: an envelope from geth below our PoW requirement makes
// our node drop geth, with ErrPoWTooLow.
func TestRLPx_weDisconnectOnLowPoW(t *testing.T) {
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	svc, err := whisper.NewService(whisper.Config{MinPoW: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })

	result := make(chan error, 1)
	srv, _ := startShhServer(t, func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		err := svc.RunPeer(p, lyingRW{rw})
		result <- err
		return err
	})
	srv.AddPeer(enode.MustParse(ref.Enode()))
	waitRefPeers(t, ref, 1)
	// Into geth's pool as its own post (geth's Send): above geth's 0.001, below our 0.5.
	if err := ref.SendRaw(lowEnvelope(t, whisper.TopicFromName("status"), mustSymKey(t, "status"), "cheap", 0.001, 0.5).Bytes()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if !errors.Is(err, whisper.ErrPoWTooLow) {
			t.Fatalf("disconnect reason %v, want ErrPoWTooLow", err)
		}
	case <-time.After(msgTimeout):
		t.Fatal("we kept geth after a low-PoW envelope")
	}
	waitDrop(t, ref)
}
