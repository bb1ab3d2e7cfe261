package ratchet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet"
)

// TestPrekeys_retention: our signed prekey is replaced every 24 h; beyond the newest
// PrekeysKept replaced ones (here 1, to reach the rule with few replacements; the
// default is 1000: TestPrekeys_silentPeers), a replaced one is kept for
// PrekeyRetention (30 days), then deleted. A peer holding a bundle of ours replaced
// within the window starts a session from it, and a late message of that session still
// decrypts after the prekey is deleted. A peer whose bundle of ours was deleted gets
// ErrUnknownPrekey and our current bundle in answer, and its next message starts a
// session.
func TestPrekeys_retention(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) { c.PrekeysKept = 1 })
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
	bundle() // version 3; version 1 was replaced 38 days ago and is not the newest replaced
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

// TestPrekeys_silentPeers: bob runs every day, so his signed prekey is replaced daily
// (the contact code attaches his bundle every 6 h). Erin learned his bundle on day 0
// and is silent for 32 days, Yara for a year (366 replacements later); each then
// starts a session from that day-0 bundle (replaced on day 1). With the prekeys
// deleted by age alone (30 days after replaced; here PrekeysKept 1) both first
// messages are lost
// (ErrUnknownPrekey: only a bundle-back answer goes back). With the default policy (the
// newest 1000 replaced prekeys kept whatever their age) both are decrypted.
func TestPrekeys_silentPeers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kept      int
		decrypted bool
	}{
		{"by age only (the policy before)", 1, false},
		{"newest 1000 kept", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newClock()
			bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) { c.PrekeysKept = tc.kept })
			erin := newParty(t, "erin", keyOf(t, "erin"), clock, nil)
			yara := newParty(t, "yara", keyOf(t, "yara"), clock, nil)
			b, err := bob.r.Bundle(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*party{erin, yara} {
				if _, err := p.r.HandleBundle(ctx, bob.pub(), b); err != nil {
					t.Fatal(err)
				}
			}
			days := 0
			liveUntil := func(day int) {
				t.Helper()
				for ; days < day; days++ {
					clock.Advance(24 * time.Hour)
					if _, err := bob.r.Bundle(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			check := func(p *party, silent int) {
				t.Helper()
				out := p.encrypt(t, bob, "after "+fmt.Sprint(silent)+" days")
				if out.Copies[0].Mode != ratchet.ModeX3DH {
					t.Fatalf("%s: %v, want X3DH from the day-0 bundle", p.name, out.Copies[0].Mode)
				}
				if tc.decrypted {
					bob.receive(t, p, out, "after "+fmt.Sprint(silent)+" days")
					return
				}
				bob.expectDrop(t, p.pub(), out.Payload, ratchet.ErrUnknownPrekey)
			}
			liveUntil(32)
			check(erin, 32)
			liveUntil(366)
			check(yara, 366)
			ps, err := bob.st.Prekeys(ctx, crypto.CompressPubkey(bob.pub()))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d daily replacements: %d prekeys stored, %d deleted", days, len(ps), bob.r.Stats().PrekeysPruned)
		})
	}
}

// TestPrekeys_boundedByCount: the prekeys kept are bounded by PrekeysKept, not by
// time. 1,100 daily replacements (three years) leave the current prekey and the
// newest 1,000 replaced ones: 1,001 rows (versions 101 to 1,101), 100 deleted. With a
// count of 50 and 120 replacements, 51 rows.
func TestPrekeys_boundedByCount(t *testing.T) {
	for _, tc := range []struct {
		kept, replacements, want int
	}{{0, 1100, ratchet.DefaultPrekeysKept + 1}, {50, 120, 51}} {
		t.Run(fmt.Sprint(tc.want, " rows"), func(t *testing.T) {
			ctx := context.Background()
			clock := newClock()
			bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) { c.PrekeysKept = tc.kept })
			replacements := tc.replacements
			for range replacements + 1 {
				if _, err := bob.r.Bundle(ctx); err != nil {
					t.Fatal(err)
				}
				clock.Advance(24 * time.Hour)
			}
			ps, err := bob.st.Prekeys(ctx, crypto.CompressPubkey(bob.pub()))
			if err != nil {
				t.Fatal(err)
			}
			pruned := bob.r.Stats().PrekeysPruned
			t.Logf("%d replacements: %d prekeys stored (versions %d..%d), %d deleted", replacements, len(ps), ps[len(ps)-1].Version, ps[0].Version, pruned)
			if len(ps) != tc.want || pruned != uint64(replacements+1-tc.want) || int(ps[0].Version) != replacements+1 ||
				int(ps[len(ps)-1].Version) != replacements+2-tc.want {
				t.Fatalf("%d prekeys (versions %d..%d), %d deleted; want %d, newest %d", len(ps),
					ps[len(ps)-1].Version, ps[0].Version, pruned, tc.want, replacements+1)
			}
		})
	}
}
