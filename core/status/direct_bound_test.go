package status

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestDirect_evictedPeersUnlistened: what strangers make a Direct keep is bounded by
// the Ratchet's MaxPeers (here 1): each stranger's first message (DH, with a bundle of
// protocol version 1) records a negotiated secret, and Direct listens on its topic;
// when the next stranger evicts the previous one, Direct stops listening on the evicted
// peer's topic and forgets its clock, so subscriptions and clocks stay bounded too. A
// peer with an open Conversation is pinned and keeps both.
func TestDirect_evictedPeersUnlistened(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	st := tempStore(t)
	c, err := New(nodes[1], Config{Ratchets: StoreRatchets(st, ratchet.Config{MaxPeers: 1}), Identity: bobKey, Seen: st})
	if err != nil {
		t.Fatal(err)
	}
	d := startDirect(t, c, bobKey)
	strangersRatchets := StoreRatchets(tempStore(t), ratchet.Config{})

	// say has a new identity send bob a first 1:1 message (DH, with its bundle) and
	// waits until it is delivered; it returns the negotiated topic and the peer's key.
	say := func(name string) (topic whisper.Topic, peer string) {
		t.Helper()
		k, _ := crypto.ToECDSA(crypto.Keccak256([]byte(name)))
		r, err := strangersRatchets(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out := postDirect(t, nodes[0], k, r, &bobKey.PublicKey, "hi from "+name)
		select {
		case m := <-d.Messages():
			if m.Text != "hi from "+name {
				t.Fatalf("got %q, want %q", m.Text, "hi from "+name)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s's message not delivered within 15 s", name)
		}
		return out.NewSecret.Topic, string(crypto.CompressPubkey(&k.PublicKey))
	}
	listening := func(topic whisper.Topic, peer string) (sub, clk bool) {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.subs[topic] != nil, d.clocks[peer] != nil
	}
	var prevTopic whisper.Topic
	var prevPeer string
	for i := range 3 {
		topic, peer := say(fmt.Sprintf("stranger %d", i))
		if sub, clk := listening(topic, peer); !sub || !clk {
			t.Fatalf("stranger %d: listening %v, clock %v; want both", i, sub, clk)
		}
		if i > 0 {
			if sub, clk := listening(prevTopic, prevPeer); sub || clk {
				t.Fatalf("stranger %d evicted: still listening %v, clock %v", i-1, sub, clk)
			}
		}
		prevTopic, prevPeer = topic, peer
	}
	r, err := c.cfg.Ratchets(ctx, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.PeersEvicted != 2 {
		t.Fatalf("evicted %d, want 2", s.PeersEvicted)
	}
	// Bob opens the last stranger's conversation: pinned, it stays through the next.
	k2, _ := crypto.ToECDSA(crypto.Keccak256([]byte("stranger 2")))
	if _, err := d.Open(&k2.PublicKey); err != nil {
		t.Fatal(err)
	}
	topic, peer := say("stranger 3")
	if sub, _ := listening(prevTopic, prevPeer); !sub {
		t.Fatal("an opened conversation's topic was dropped")
	}
	if sub, _ := listening(topic, peer); sub {
		t.Fatal("a stranger beyond the bound (every kept peer pinned) got a negotiated topic")
	}
}
