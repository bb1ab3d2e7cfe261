// Package statusnet starts statusgate nodes in the test process, on 127.0.0.1 with
// real RLPx between them, and wires them into topologies. Every node stops when its test
// ends. It is imported only by _test.go files.
package statusnet

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
)

// WaitTimeout bounds every wait in this package.
const WaitTimeout = 20 * time.Second

// NewNode starts a node listening on a free loopback port with a fresh key, and returns
// it once it listens. cfg.ListenAddr and cfg.MaxPeers are set unless given.
func NewNode(tb testing.TB, cfg node.Config) *node.Node {
	tb.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = 50
	}
	n, err := node.New(cfg, key)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("node run: %v", err)
			}
		case <-time.After(WaitTimeout):
			tb.Errorf("node did not stop within %v", WaitTimeout)
		}
	})
	select {
	case <-n.Ready():
	case err := <-done:
		tb.Fatalf("node run: %v", err)
	case <-time.After(WaitTimeout):
		tb.Fatal("node did not start")
	}
	return n
}

// NewNodes starts k nodes with the same configuration.
func NewNodes(tb testing.TB, k int, cfg node.Config) []*node.Node {
	tb.Helper()
	out := make([]*node.Node, k)
	for i := range out {
		out[i] = NewNode(tb, cfg)
	}
	return out
}

// Connect makes a dial b and waits until each lists the other as a Whisper peer.
func Connect(tb testing.TB, a, b *node.Node) {
	tb.Helper()
	if err := a.AddPeer(b.Enode(), false); err != nil {
		tb.Fatal(err)
	}
	WaitPeer(tb, a, b.ID())
	WaitPeer(tb, b, a.ID())
}

// WaitPeer waits until n has a Whisper peer with id.
func WaitPeer(tb testing.TB, n *node.Node, id enode.ID) {
	tb.Helper()
	WaitPeerInfo(tb, n, func(p whisper.PeerInfo) bool { return p.ID == id })
}

// WaitPeerInfo waits until n has a peer whose description satisfies cond (a peer
// connecting, leaving or changing its settings wakes it) and returns that description;
// it fails tb after WaitTimeout.
func WaitPeerInfo(tb testing.TB, n *node.Node, cond func(whisper.PeerInfo) bool) whisper.PeerInfo {
	tb.Helper()
	deadline := time.After(WaitTimeout)
	for {
		changed := n.Whisper().PeersChanged()
		for _, p := range n.Peers() {
			if cond(p) {
				return p
			}
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("node %s: no such peer within %v; peers %+v", n.ID().TerminalString(), WaitTimeout, n.Peers())
			return whisper.PeerInfo{}
		}
	}
}

// HasPeer reports whether n has a Whisper peer with id.
func HasPeer(n *node.Node, id enode.ID) bool {
	return slices.ContainsFunc(n.Peers(), func(p whisper.PeerInfo) bool { return p.ID == id })
}

// Line connects nodes[i] to nodes[i+1].
func Line(tb testing.TB, nodes []*node.Node) {
	tb.Helper()
	for i := 0; i+1 < len(nodes); i++ {
		Connect(tb, nodes[i], nodes[i+1])
	}
}

// Ring is Line plus an edge from the last node to the first.
func Ring(tb testing.TB, nodes []*node.Node) {
	tb.Helper()
	Line(tb, nodes)
	if len(nodes) > 2 {
		Connect(tb, nodes[len(nodes)-1], nodes[0])
	}
}
