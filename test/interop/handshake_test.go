package interop

import (
	"crypto/ecdsa"
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/whisper"
)

// startShhServer runs a current go-ethereum p2p.Server on loopback whose only protocol is
// shh/6 with run as its body.
func startShhServer(t *testing.T, run func(p *p2p.Peer, rw p2p.MsgReadWriter) error) (*p2p.Server, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey: key, ListenAddr: "127.0.0.1:0", NoDiscovery: true, MaxPeers: 10, Name: "statusgate-test",
		Protocols: []p2p.Protocol{{Name: whisper.ProtocolName, Version: uint(whisper.ProtocolVersion),
			Length: whisper.NumberOfMessageCodes, Run: run}},
	}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv, key
}

// drain keeps a protocol connection open until the peer goes away.
func drain(rw p2p.MsgReadWriter) error {
	for {
		msg, err := rw.ReadMsg()
		if err != nil {
			return err
		}
		msg.Discard()
	}
}

// TestHandshake_overRLPx: our status handshake against a go-ethereum v1.9.20 whisper node
// over real RLPx on loopback. Both sides must accept: we read geth's 4-item status, geth
// keeps us as a peer (it disconnects on a status it cannot parse).
func TestHandshake_overRLPx(t *testing.T) {
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	got := make(chan whisper.Status, 1)
	failed := make(chan error, 1)
	srv, _ := startShhServer(t, func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		st, err := whisper.Handshake(rw, whisper.Status{PoW: 0.001, Bloom: whisper.FullBloom(), Confirmations: true},
			whisper.HandshakePolicy{})
		if err != nil {
			failed <- err
			return err
		}
		got <- st
		return drain(rw)
	})
	srv.AddPeer(enode.MustParse(ref.Enode()))
	select {
	case st := <-got:
		if st.PoW != 0.001 || !st.Bloom.IsFull() || st.LightNode || st.Confirmations || st.RateLimits != nil {
			t.Errorf("geth's status as we read it: %+v", st)
		}
	case err := <-failed:
		t.Fatalf("handshake with geth: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake within 10 s")
	}
	// geth must still count us as a peer after reading our 5-item status.
	deadline := time.Now().Add(5 * time.Second)
	for {
		peers, err := ref.Peers()
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) == 1 && srv.PeerCount() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("geth peers %v, ours %d", peers, srv.PeerCount())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHandshake_gethDropsWrongVersion: a status with version 5 makes geth drop us.
func TestHandshake_gethDropsWrongVersion(t *testing.T) {
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	full := whisper.FullBloom()
	srv, _ := startShhServer(t, func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		if err := p2p.Send(rw, 0, []any{uint64(5), math.Float64bits(0.001), full[:], false, false}); err != nil {
			return err
		}
		return drain(rw)
	})
	srv.AddPeer(enode.MustParse(ref.Enode()))
	waitDrop(t, ref)
}
