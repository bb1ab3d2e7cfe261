package status

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
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
	var mu sync.Mutex
	bobNow := time.Now()
	bobClock := func() time.Time { mu.Lock(); defer mu.Unlock(); return bobNow }
	advance := func(d time.Duration) { mu.Lock(); bobNow = bobNow.Add(d); mu.Unlock() }

	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	st := tempStore(t)
	c, err := New(nodes[1], Config{Ratchets: StoreRatchets(st, ratchet.Config{Clock: bobClock, PrekeysKept: 1}), Identity: bobKey, Seen: st})
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
		advance(d)
		if _, err := bobR.Bundle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s := bobR.Stats(); s.PrekeysPruned != 1 {
		t.Fatalf("pruned %d prekeys, want 1", s.PrekeysPruned)
	}

	dctx, cancel := context.WithCancel(ctx)
	d, err := c.Direct(dctx, bobKey)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); d.Close() })
	// Erin listens where Bob's answer comes: her partitioned topic.
	erinTopic := whisper.TopicFromName(ratchet.PartitionedTopicName(&erinKey.PublicKey))
	sub, err := nodes[0].Subscribe(whisper.Filter{Topics: []whisper.Topic{erinTopic}, AsymKey: erinKey, AllowP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	say := func(text string) *ratchet.Outgoing {
		t.Helper()
		now := uint64(time.Now().UnixMilli())
		p, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: text, ChatID: "0x04",
			MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, erinKey)
		if err != nil {
			t.Fatal(err)
		}
		out, err := erin.Encrypt(ctx, &bobKey.PublicKey, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: out.Envelope.Topic, KeySym: out.Envelope.SymKey, Dst: out.Envelope.Dst,
			Src: erinKey, Payload: out.Payload, TTL: DefaultTTL, PoW: DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
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
