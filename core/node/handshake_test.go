package node

import (
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"

	"github.com/statusgate/statusgate/core/whisper"
)

// TestNode_silentPeerDropped is issue 15 finding 14 for the shh handshake: a peer that
// completes RLPx and the devp2p hello, offers shh/6 and then never sends its status
// held a peer slot for as long as the connection lived (p2p's pings keep it up). The
// silent peer here is go-ethereum's own p2p.Server with a shh/6 protocol that only
// reads; the node must disconnect it after Whisper.HandshakeTimeout (shortened here).
func TestNode_silentPeerDropped(t *testing.T) {
	const timeout = 300 * time.Millisecond
	connected := make(chan time.Time, 8)
	dropped := make(chan time.Time, 8)
	silent := &p2p.Server{Config: p2p.Config{
		PrivateKey: newKey(t), MaxPeers: 4, ListenAddr: "127.0.0.1:0", NoDiscovery: true,
		Protocols: []p2p.Protocol{{
			Name: whisper.ProtocolName, Version: uint(whisper.ProtocolVersion), Length: whisper.NumberOfMessageCodes,
			Run: func(_ *p2p.Peer, rw p2p.MsgReadWriter) error {
				connected <- time.Now()
				for { // reads our status and whatever follows; never answers
					msg, err := rw.ReadMsg()
					if err != nil {
						dropped <- time.Now()
						return err
					}
					msg.Discard()
				}
			},
		}},
	}}
	if err := silent.Start(); err != nil {
		t.Fatal(err)
	}
	var stopOnce sync.Once
	t.Cleanup(func() { stopOnce.Do(silent.Stop) })

	n := start(t, Config{ZeroPoW: true, Whisper: whisper.Config{HandshakeTimeout: timeout}})
	if err := n.AddPeer(silent.Self().URLv4(), false); err != nil {
		t.Fatal(err)
	}
	var at time.Time
	select {
	case at = <-connected:
	case <-time.After(wait):
		t.Fatal("the silent peer did not connect")
	}
	select {
	case end := <-dropped:
		t.Logf("silent peer dropped %v after the protocol started (timeout %v)", end.Sub(at).Round(time.Millisecond), timeout)
	case <-time.After(5 * time.Second):
		t.Fatalf("the silent peer was still connected 5 s after the protocol started (handshake timeout %v)", timeout)
	}
	if got := len(n.Peers()); got != 0 {
		t.Errorf("%d Whisper peers, want 0", got)
	}
	stopOnce.Do(silent.Stop)
}
