package ratchet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet"
)

// TestPrekeys_retention: our signed prekey is replaced every 24 h and a replaced one is
// kept for PrekeyRetention (30 days), then deleted (before: kept forever). A peer
// holding a bundle of ours replaced within the window starts a session from it, and a
// late message of that session still decrypts after the prekey is deleted. A peer whose
// bundle of ours was replaced longer ago gets ErrUnknownPrekey and our current bundle
// in answer, and its next message starts a session.
func TestPrekeys_retention(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	erin := newParty(t, "erin", keyOf(t, "erin"), clock, nil)
	prekeys := func() int {
		t.Helper()
		ps, err := bob.st.Prekeys(ctx, crypto.CompressPubkey(bob.pub()))
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	bundle := func() {
		t.Helper()
		if _, err := bob.r.Bundle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	learn := func(p *party) {
		t.Helper()
		b, err := bob.r.Bundle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.r.HandleBundle(ctx, bob.pub(), b); err != nil {
			t.Fatal(err)
		}
	}
	learn(alice) // version 1
	learn(erin)
	clock.Advance(48 * time.Hour)
	bundle() // version 2 replaces 1
	if n := prekeys(); n != 2 {
		t.Fatalf("%d prekeys after a refresh, want 2", n)
	}
	// Alice, holding version 1 (replaced 0 days ago), starts a session.
	if out := alice.encrypt(t, bob, "from v1"); out.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("alice's first message: %v, want X3DH", out.Copies[0].Mode)
	} else {
		bob.receive(t, alice, out, "from v1")
	}
	late := alice.encrypt(t, bob, "late") // same session, delivered after the prekey is gone

	clock.Advance(38 * 24 * time.Hour)
	bundle() // version 3; version 1 was replaced 38 days ago
	if n, pruned := prekeys(), bob.r.Stats().PrekeysPruned; n != 2 || pruned != 1 {
		t.Fatalf("%d prekeys, %d pruned; want 2 (versions 2 and 3), 1", n, pruned)
	}
	bob.receive(t, alice, late, "late")

	// Erin still holds version 1.
	out := erin.encrypt(t, bob, "from an expired bundle")
	in, err := bob.r.Receive(ctx, erin.pub(), out.Payload)
	if !errors.Is(err, ratchet.ErrUnknownPrekey) || in == nil || in.Reply == nil {
		t.Fatalf("erin's message from an expired bundle: %v, %+v; want ErrUnknownPrekey with a reply", err, in)
	}
	if _, err := erin.r.Receive(ctx, bob.pub(), in.Reply.Payload); err != nil {
		t.Fatalf("erin reads bob's answer: %v", err)
	}
	bob.receive(t, erin, erin.encrypt(t, bob, "from the new bundle"), "from the new bundle")
}
