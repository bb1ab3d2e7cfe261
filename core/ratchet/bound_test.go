package ratchet_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/ratchet"
)

// TestPeers_bounded: the identities a Ratchet keeps state about are bounded
// (Config.MaxPeers, here 3). Strangers whose messages carry bundles are kept until the
// bound, then each new one evicts the least recently used peer that is not pinned,
// with all its state (counted, its negotiated topic reported); a peer the user
// started a conversation with is pinned and survives, its session intact. Once every
// kept peer is pinned, a stranger's bundle is not stored (counted) but its DH message
// still decrypts, and the user's own first message to it admits it beyond the bound.
// The bound holds across a restart.
func TestPeers_bounded(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	bounded := func(c *ratchet.Config) { c.MaxPeers = 3 }
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, bounded)
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	// Bob starts a conversation with Alice: pinned. It runs through X3DH to the ratchet.
	alice.receive(t, bob, bob.encrypt(t, alice, "hi alice"), "hi alice")
	bob.receive(t, alice, alice.encrypt(t, bob, "hi bob"), "hi bob")
	alice.receive(t, bob, bob.encrypt(t, alice, "ratchet"), "ratchet")

	known := func(p *party) bool {
		t.Helper()
		ds, err := bob.r.Installations(ctx, p.pub())
		if err != nil {
			t.Fatal(err)
		}
		return len(ds) > 0
	}
	strangers := make([]*party, 6)
	for i := range strangers {
		strangers[i] = newParty(t, fmt.Sprintf("stranger%d", i), keyOf(t, fmt.Sprintf("stranger%d", i)), clock, nil)
	}
	// hear has bob receive a first (DH) message from s, carrying s's bundle.
	hear := func(s *party) *ratchet.Incoming {
		t.Helper()
		clock.Advance(2 * time.Minute) // past the minute within which a use is not written again
		return bob.receive(t, s, s.encrypt(t, bob, "hello from "+s.name), "hello from "+s.name)
	}
	hear(strangers[0])
	hear(strangers[1]) // kept: alice, stranger0, stranger1
	hear(strangers[0]) // stranger0 used again: stranger1 is now the least recently used
	if !known(strangers[0]) || !known(strangers[1]) {
		t.Fatal("strangers within the bound not kept")
	}
	in := hear(strangers[2])
	if known(strangers[1]) || !known(strangers[0]) || !known(strangers[2]) || !known(alice) {
		t.Fatalf("after a fourth identity: stranger1 kept %v (want evicted), stranger0 %v, stranger2 %v, alice %v",
			known(strangers[1]), known(strangers[0]), known(strangers[2]), known(alice))
	}
	if s := bob.r.Stats(); s.PeersEvicted != 1 || s.PeersRefused != 0 {
		t.Fatalf("evicted %d, refused %d; want 1, 0", s.PeersEvicted, s.PeersRefused)
	}
	if len(in.Evicted) != 1 || !in.Evicted[0].Peer.Equal(strangers[1].pub()) {
		t.Fatalf("evicted secrets reported %v, want stranger1's", in.Evicted)
	}
	// Bob answers stranger0 and stranger2: now every kept peer is pinned.
	for _, s := range []*party{strangers[0], strangers[2]} {
		s.receive(t, bob, bob.encrypt(t, s, "answer"), "answer")
	}
	in = hear(strangers[3])
	if known(strangers[3]) {
		t.Fatal("a stranger's bundle was stored with every kept peer pinned")
	}
	if s := bob.r.Stats(); s.PeersRefused == 0 || s.PeersEvicted != 1 {
		t.Fatalf("refused %d, evicted %d; want > 0, 1", s.PeersRefused, s.PeersEvicted)
	}
	// Bob answers stranger3 anyway: his conversation, admitted beyond the bound (DH: its
	// bundle was not stored).
	out := bob.encrypt(t, strangers[3], "answer beyond the bound")
	if out.Copies[0].Mode != ratchet.ModeDH {
		t.Fatalf("answer to a refused peer: %+v, want DH", out.Copies)
	}
	strangers[3].receive(t, bob, out, "answer beyond the bound")
	hear(strangers[3])
	if !known(strangers[3]) {
		t.Fatal("a peer the user wrote to is not kept")
	}
	// The conversation with Alice went on through all of that, on the same session.
	out = bob.encrypt(t, alice, "still here")
	if out.Copies[0].Mode != ratchet.ModeDR {
		t.Fatalf("bob to alice after the strangers: %+v, want DR", out.Copies)
	}
	alice.receive(t, bob, out, "still here")
	bob.receive(t, alice, alice.encrypt(t, bob, "me too"), "me too")

	// After a restart the bound still holds: every kept peer is pinned.
	bob.restart(t)
	hear(strangers[4])
	if known(strangers[4]) {
		t.Fatal("after a restart, a stranger's bundle was stored with every kept peer pinned")
	}
	if s := bob.r.Stats(); s.PeersRefused != 1 {
		t.Fatalf("after restart: refused %d, want 1", s.PeersRefused)
	}
}

// TestPeers_pinnedByOpen: a peer that is neither pinned nor recently used loses its
// state when evicted, yet a conversation it started recovers by itself (until we answer,
// its messages repeat the X3DH header and its bundle); Pin (the SDK's Open) keeps a
// peer the user opened a conversation with before writing to it.
func TestPeers_pinnedByOpen(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) { c.MaxPeers = 1 })
	dave := newParty(t, "dave", keyOf(t, "dave"), clock, nil)
	// Dave learns bob's bundle from a public message and starts X3DH: bob responds.
	wrapped, err := bob.r.WrapPublic(ctx, []byte("public"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dave.r.Receive(ctx, bob.pub(), wrapped); err != nil {
		t.Fatal(err)
	}
	bob.receive(t, dave, dave.encrypt(t, bob, "x3dh from dave"), "x3dh from dave")
	// Carol's message evicts dave (bob never answered nor opened him).
	carol := newParty(t, "carol", keyOf(t, "carol"), clock, nil)
	clock.Advance(2 * time.Minute)
	bob.receive(t, carol, carol.encrypt(t, bob, "carol's dh"), "carol's dh")
	if s := bob.r.Stats(); s.PeersEvicted != 1 {
		t.Fatalf("evicted %d, want dave", s.PeersEvicted)
	}
	clock.Advance(2 * time.Minute)
	if in := bob.receive(t, dave, dave.encrypt(t, bob, "dave again"), "dave again"); in.Mode != ratchet.ModeX3DH {
		t.Fatalf("dave after his eviction: mode %v, want a new X3DH from the header he repeats", in.Mode)
	}
	// Bob opens carol's conversation: pinned (dave, least recently used, goes).
	clock.Advance(2 * time.Minute)
	if err := bob.r.Pin(ctx, carol.pub()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	bob.receive(t, carol, carol.encrypt(t, bob, "carol again"), "carol again")
	eve := newParty(t, "eve", keyOf(t, "eve"), clock, nil)
	clock.Advance(2 * time.Minute)
	bob.receive(t, eve, eve.encrypt(t, bob, "eve's dh"), "eve's dh")
	if ds, err := bob.r.Installations(ctx, carol.pub()); err != nil || len(ds) != 1 {
		t.Fatalf("carol (opened) forgotten: %v %v", ds, err)
	}
	if ds, _ := bob.r.Installations(ctx, eve.pub()); len(ds) != 0 {
		t.Fatalf("eve kept beyond the bound with every kept peer pinned: %+v", ds)
	}
	if s := bob.r.Stats(); s.PeersEvicted != 3 || s.PeersRefused != 1 {
		t.Fatalf("evicted %d, refused %d; want 3 (dave, carol, dave), 1 (eve)", s.PeersEvicted, s.PeersRefused)
	}
	if err := bob.r.Pin(ctx, &ecdsa.PublicKey{}); err == nil {
		t.Fatal("pinned an invalid key")
	}
}
