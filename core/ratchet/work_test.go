package ratchet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/ratchet"
)

// TestWork_x3dhPerSender: one identity (mallory, a known installation) that starts a
// new X3DH session with every message (a fresh ephemeral key and a fresh signed prekey
// each time: what a reinstall would look like, repeated) made bob run X3DH, retire a
// session and write a new one, and store the changed bundle, for every message. With a
// per-sender budget of 6 (no refill: the clock stands still) the first message spends
// two (its bundle admits mallory, its session), the next four one each (their bundles
// repeat the stored timestamp: nothing written), the rest are refused and counted; another
// sender is not held up by mallory; a minute later mallory's budget has refilled.
func TestWork_x3dhPerSender(t *testing.T) {
	for _, tc := range []struct {
		name       string
		burst      int
		wantX3DH   uint64
		wantRefuse bool
	}{
		{"unbounded (the behaviour before)", 1000, 20, false},
		{"bounded", 6, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newClock()
			bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) { c.SenderWorkBurst, c.SenderWorkPerMinute = tc.burst, 1 })
			b, err := bob.r.Bundle(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var refused int
			for i := range 20 {
				// A fresh store each time: mallory's installation has no session and a
				// new signed prekey.
				m := newParty(t, "mallory", keyOf(t, "mallory"), clock, nil)
				if _, err := m.r.HandleBundle(ctx, bob.pub(), b); err != nil {
					t.Fatal(err)
				}
				out := m.encrypt(t, bob, fmt.Sprintf("x3dh %d", i))
				if out.Copies[0].Mode != ratchet.ModeX3DH {
					t.Fatalf("mallory's message %d: mode %v, want X3DH", i, out.Copies[0].Mode)
				}
				_, err := bob.r.Receive(ctx, m.pub(), out.Payload)
				switch {
				case errors.Is(err, ratchet.ErrWorkRefused):
					refused++
				case err != nil:
					t.Fatalf("message %d: %v", i, err)
				}
			}
			s := bob.r.Stats()
			t.Logf("20 X3DH messages of one sender: %d sessions started, %d refused, %d bundles not stored", s.ReceivedX3DH, s.RefusedX3DH, s.RefusedBundles)
			if s.ReceivedX3DH != tc.wantX3DH || s.RefusedX3DH != uint64(refused) || (refused > 0) != tc.wantRefuse {
				t.Fatalf("sessions %d (want %d), refused %d (counted %d)", s.ReceivedX3DH, tc.wantX3DH, refused, s.RefusedX3DH)
			}
			if !tc.wantRefuse {
				return
			}
			// Another sender is not held up.
			alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
			bob.receive(t, alice, alice.encrypt(t, bob, "dh"), "dh")
			alice.receive(t, bob, bob.encrypt(t, alice, "x3dh to alice"), "x3dh to alice")
			bob.receive(t, alice, alice.encrypt(t, bob, "x3dh from alice"), "x3dh from alice")
			// Mallory's budget refills with time.
			clock.Advance(10 * time.Minute)
			m := newParty(t, "mallory", keyOf(t, "mallory"), clock, nil)
			if _, err := m.r.HandleBundle(ctx, bob.pub(), b); err != nil {
				t.Fatal(err)
			}
			bob.receive(t, m, m.encrypt(t, bob, "later"), "later")
		})
	}
}

// TestWork_secretsDeferred: each new identity agreeing a secret with bob (a DH message
// with a bundle of protocol version 1) reports a NewSecret, whose topic key a listener
// derives (PBKDF2). With the global secret budget (burst 4, 1 a minute), 40 strangers
// make 4 reported and 36 deferred; every message is still delivered. A deferred secret
// is recorded when bob answers (his own send) or by the stranger's next message once the
// budget has refilled; a bundle-back answer is not sent while the budget is spent.
// Topic keys are derived once per topic however many messages bob sends there.
func TestWork_secretsDeferred(t *testing.T) {
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) { c.NewSecretsBurst, c.NewSecretsPerMinute = 4, 1 })
	var reported int
	var strangers []*party
	for i := range 40 {
		s := newParty(t, fmt.Sprintf("s%d", i), keyOf(t, fmt.Sprintf("s%d", i)), clock, nil)
		strangers = append(strangers, s)
		in := bob.receive(t, s, s.encrypt(t, bob, "hi"), "hi")
		if in.NewSecret != nil {
			if _, err := in.NewSecret.SymKey(); err != nil {
				t.Fatal(err)
			}
			reported++
		}
	}
	st := bob.r.Stats()
	t.Logf("40 strangers: %d secrets reported, %d deferred, %d topic keys derived", reported, st.DeferredSecrets, st.TopicKeysDerived)
	if reported != 4 || st.DeferredSecrets != 36 || st.TopicKeysDerived != 4 {
		t.Fatalf("reported %d, deferred %d, derived %d; want 4, 36, 4", reported, st.DeferredSecrets, st.TopicKeysDerived)
	}
	// Bob answers a deferred stranger: recorded, reported to listen on. The stranger's
	// installation agreed already (its message), so the answer goes on the negotiated
	// topic, whose key is derived once however many messages go there.
	before := bob.r.Stats().TopicKeysDerived
	out := bob.encrypt(t, strangers[10], "answer")
	if out.NewSecret == nil {
		t.Fatal("bob's answer to a deferred stranger reports no secret to listen on")
	}
	// A deferred stranger's next message after a refill records it.
	clock.Advance(time.Minute)
	in := bob.receive(t, strangers[20], strangers[20].encrypt(t, bob, "again"), "again")
	if in.NewSecret == nil {
		t.Fatal("a deferred stranger's message after the budget refilled reports no secret")
	}
	strangers[10].receive(t, bob, out, "answer")
	bob.receive(t, strangers[10], strangers[10].encrypt(t, bob, "agreed"), "agreed")
	for i := range 5 {
		o := bob.encrypt(t, strangers[10], fmt.Sprint(i))
		if !o.Agreed || o.Envelope.SymKey == nil {
			t.Fatalf("message %d: not on the negotiated topic", i)
		}
	}
	if d := bob.r.Stats().TopicKeysDerived - before; d != 1 {
		t.Fatalf("6 messages on one negotiated topic derived its key %d times, want 1", d)
	}
}

// TestWork_topicKeysKeptAcrossRestarts: a start joins the negotiated topic of every
// recorded secret (at most MaxPeers), and derived each key again (PBKDF2): 6 peers, 6
// derivations at every start. The keys are kept in the store once derived: the first
// start after they were recorded derives them once, every later start none, and the
// kept keys are the derived ones.
func TestWork_topicKeysKeptAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	for i := range 6 {
		s := newParty(t, fmt.Sprintf("s%d", i), keyOf(t, fmt.Sprintf("s%d", i)), clock, nil)
		bob.receive(t, s, s.encrypt(t, bob, "hi"), "hi")
	}
	var first []*ratchet.Secret
	for start := range 3 {
		bob.restart(t)
		secrets, err := bob.r.Secrets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(secrets) != 6 {
			t.Fatalf("start %d: %d secrets, want 6", start, len(secrets))
		}
		for i, s := range secrets {
			k, err := s.SymKey()
			if err != nil {
				t.Fatal(err)
			}
			if start == 0 {
				first = secrets
			} else if fk, _ := first[i].SymKey(); !k.Equal(fk) {
				t.Fatalf("start %d: a kept key differs from the derived one", start)
			}
		}
		want := uint64(0)
		if start == 0 {
			want = 6
		}
		if d := bob.r.Stats().TopicKeysDerived; d != want {
			t.Fatalf("start %d: %d topic keys derived, want %d", start, d, want)
		}
	}
}
