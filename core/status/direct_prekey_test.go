package status

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestDirect_expiredPrekeyAnswered: Erin holds a bundle of Bob's whose signed prekey
// Bob deleted (replaced 40 days ago, beyond ratchet.DefaultPrekeyRetention and beyond
// the newest replaced ones Bob keeps whatever their age: here 1, by default 1000, so
// that this takes two replacements rather than a thousand). Her first
// message cannot start a session and is dropped; Direct answers it with Bob's current
// bundle, over Whisper, and Erin's next message, from that bundle, is delivered.
func TestDirect_expiredPrekeyAnswered(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	clock := newTestClock()

	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	st := tempStore(t)
	c, err := New(nodes[1], Config{Ratchets: StoreRatchets(st, ratchet.Config{Clock: clock.Now, PrekeysKept: 1}), Identity: bobKey, Seen: st})
	if err != nil {
		t.Fatal(err)
	}
	bobR, err := c.cfg.Ratchets(ctx, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	erinKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("erin")))
	erin, err := StoreRatchets(tempStore(t), ratchet.Config{})(ctx, erinKey)
	if err != nil {
		t.Fatal(err)
	}
	old, err := bobR.Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := erin.HandleBundle(ctx, &bobKey.PublicKey, old); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{48 * time.Hour, 40 * 24 * time.Hour} { // two refreshes: the first prekey pruned
		clock.Advance(d)
		if _, err := bobR.Bundle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s := bobR.Stats(); s.PrekeysPruned != 1 {
		t.Fatalf("pruned %d prekeys, want 1", s.PrekeysPruned)
	}

	d := startDirect(t, c, bobKey)
	// Erin listens where Bob's answer comes: her partitioned topic.
	erinTopic := whisper.TopicFromName(ratchet.PartitionedTopicName(&erinKey.PublicKey))
	sub, err := nodes[0].Subscribe(whisper.Filter{Topics: []whisper.Topic{erinTopic}, AsymKey: erinKey, AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	say := func(text string) *ratchet.Outgoing {
		t.Helper()
		out := postDirect(t, nodes[0], erinKey, erin, &bobKey.PublicKey, text)
		return out
	}
	if out := say("from an expired bundle"); out.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("erin's first message: %v, want X3DH", out.Copies[0].Mode)
	}
	select {
	case rm := <-sub.C():
		if _, err := erin.Receive(ctx, &bobKey.PublicKey, rm.Payload); err != nil {
			t.Fatalf("erin reads bob's answer: %v", err)
		}
		ds, err := erin.Installations(ctx, &bobKey.PublicKey)
		if err != nil || len(ds) != 1 || bytes.Equal(ds[0].SignedPreKey, old.GetSignedPreKeys()[bobR.InstallationID()].GetSignedPreKey()) {
			t.Fatalf("after bob's answer erin holds %+v (%v), want bob's installation with a new signed prekey", ds, err)
		}
	case m := <-d.Messages():
		t.Fatalf("a message from an expired bundle delivered: %q", m.Text)
	case <-time.After(15 * time.Second):
		t.Fatal("no answer to a message from an expired bundle within 15 s")
	}
	say("from the current bundle")
	select {
	case m := <-d.Messages():
		if m.Text != "from the current bundle" {
			t.Fatalf("got %q", m.Text)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("erin's message from the current bundle not delivered within 15 s")
	}
	if s := bobR.Stats(); s.UnknownPrekey != 1 || s.BundleBacks != 1 {
		t.Fatalf("unknown prekey %d, bundle-backs %d; want 1, 1", s.UnknownPrekey, s.BundleBacks)
	}
}
