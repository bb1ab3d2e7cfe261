package node

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/waku"
	"github.com/statusgate/statusgate/core/whisper"
)

func TestNew_rejectsProtocols(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown protocol", Config{Protocols: []string{"shh", "smtp"}}, "protocols[1]"},
		{"no protocol", Config{Protocols: []string{}}, "protocols: empty"},
		{"repeated protocol", Config{Protocols: []string{"waku", "waku"}}, "protocols[1]"},
		{"limits of no protocol", Config{Limits: map[string]Limits{"les": {}}}, "limits.les"},
		{"negative limit", Config{Limits: map[string]Limits{"waku": {PacketsPerSecond: -1}}}, "limits.waku"},
		{"waku version 2", Config{Waku: waku.Config{Versions: []uint{1, 2}}}, "waku.versions[1]"},
	}
	for _, tc := range cases {
		if _, err := New(tc.cfg, newKey(t)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}

// peerWith waits until n has a peer whose description satisfies cond.
func peerWith(t testing.TB, n *Node, cond func(whisper.PeerInfo) bool) whisper.PeerInfo {
	t.Helper()
	timeout := time.After(wait)
	for {
		changed := n.Whisper().PeersChanged()
		for _, p := range n.Peers() {
			if cond(p) {
				return p
			}
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no such peer: %+v", n.Peers())
		}
	}
}

func protocolStats(n *Node, name string) whisper.ProtocolStats {
	for _, p := range n.Whisper().Stats().Protocols {
		if p.Name == name {
			return p
		}
	}
	return whisper.ProtocolStats{}
}

// TestNode_bothProtocolsOneWire: two nodes that speak shh/6 and Waku run both on their
// connection, but envelopes go over one, Waku's: a message arrives once, and nothing is
// sent over shh/6.
func TestNode_bothProtocolsOneWire(t *testing.T) {
	a, b := pair(t, static)
	for _, n := range []*running{a, b} {
		p := peerWith(t, n.Node, func(p whisper.PeerInfo) bool { return len(p.Also) == 1 })
		if p.Protocol != "waku/1" || p.Also[0] != "shh/6" {
			t.Fatalf("peer %+v: want waku/1 gossiping, shh/6 beside", p)
		}
	}
	topic := whisper.TopicFromName("statusgate-both")
	sym, err := whisper.SymKeyFromPassword("statusgate-both")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	env, err := a.Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte("once"), TTL: 15})
	if err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); m.EnvelopeHash != env.Hash() {
		t.Fatalf("got %x, want %x", m.EnvelopeHash, env.Hash())
	}
	if w, s := protocolStats(a.Node, "waku"), protocolStats(a.Node, "shh"); w.SentFrom["local"] != 1 || len(s.SentFrom) != 0 {
		t.Fatalf("a sent: waku %+v, shh %+v", w, s)
	}
	if st := b.Whisper().Stats(); st.Duplicates != 0 {
		t.Fatalf("b saw %d duplicates", st.Duplicates)
	}
}

// TestNode_generationBridge: a Whisper-only node and a Waku-only node, each connected
// only to a node speaking both, over real RLPx: a message from each reaches the other,
// signed and with its envelope intact, and the middle node counts what it relayed from
// one generation to the other.
func TestNode_generationBridge(t *testing.T) {
	mid := start(t, Config{ZeroPoW: true})
	shhOnly := start(t, Config{ZeroPoW: true, Protocols: []string{ProtocolShh}, StaticPeers: []string{mid.Enode()}})
	wakuOnly := start(t, Config{ZeroPoW: true, Protocols: []string{ProtocolWaku}, StaticPeers: []string{mid.Enode()}})
	peerWith(t, mid.Node, func(p whisper.PeerInfo) bool { return p.ID == shhOnly.ID() && p.Protocol == "shh/6" })
	peerWith(t, mid.Node, func(p whisper.PeerInfo) bool { return p.ID == wakuOnly.ID() && p.Protocol == "waku/1" })

	topic := whisper.TopicFromName("statusgate-generations")
	sym, err := whisper.SymKeyFromPassword("statusgate-generations")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, dir := range []struct {
		name     string
		from, to *running
	}{{"shh → waku", shhOnly, wakuOnly}, {"waku → shh", wakuOnly, shhOnly}} {
		sub, err := dir.to.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
		if err != nil {
			t.Fatal(err)
		}
		src := newKey(t)
		env, err := dir.from.Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: sym, Src: src, Payload: []byte(dir.name), TTL: 15})
		if err != nil {
			t.Fatal(err)
		}
		m := receive(t, sub)
		if m.EnvelopeHash != env.Hash() || string(m.Payload) != dir.name || !samePub(m.Src, &src.PublicKey) {
			t.Fatalf("%s: got %q from %x, envelope %x; sent %x", dir.name, m.Payload, m.Src, m.EnvelopeHash, env.Hash())
		}
		sub.Unsubscribe()
	}
	w, s := protocolStats(mid.Node, "waku"), protocolStats(mid.Node, "shh")
	if w.Received != 1 || s.Received != 1 || w.SentFrom["shh"] != 1 || s.SentFrom["waku"] != 1 {
		t.Fatalf("mid: waku %+v, shh %+v", w, s)
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for _, p := range mid.Peers() {
			if !yield(p.Protocol) {
				return
			}
		}
	}); len(got) != 2 {
		t.Fatalf("mid's peers speak %v", got)
	}
}
