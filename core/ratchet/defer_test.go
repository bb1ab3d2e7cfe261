package ratchet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

func cloneMessage(t *testing.T, pm *protobuf.ProtocolMessage) *protobuf.ProtocolMessage {
	t.Helper()
	return proto.Clone(pm).(*protobuf.ProtocolMessage)
}

// floodRig is bob under a tight global work budget (burst 6, 6 a minute: one unit
// every 10 s) with a small deferred queue (8 messages, 2 per sender), and a way to
// make a new identity that holds bob's bundle.
type floodRig struct {
	clock  *fakeClock
	bob    *party
	bundle *protobuf.Bundle
}

func newFloodRig(t testing.TB) *floodRig {
	t.Helper()
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, func(c *ratchet.Config) {
		c.WorkBurst, c.WorkPerMinute = 6, 6
		c.DeferredMessages, c.DeferredPerSender = 8, 2
	})
	b, err := bob.r.Bundle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &floodRig{clock: clock, bob: bob, bundle: b}
}

// peer returns a new installation of name holding bob's bundle (a fresh store: its
// next message to bob starts a session with X3DH).
func (fr *floodRig) peer(t testing.TB, name string) *party {
	t.Helper()
	p := newParty(t, name, keyOf(t, name), fr.clock, nil)
	if _, err := p.r.HandleBundle(context.Background(), fr.bob.pub(), fr.bundle); err != nil {
		t.Fatal(err)
	}
	return p
}

// spend has three strangers start sessions with bob: two units each, the global budget
// spent.
func (fr *floodRig) spend(t testing.TB) {
	t.Helper()
	for i := range 3 {
		s := fr.peer(t, fmt.Sprintf("stranger %d", i))
		fr.bob.receive(t, s, s.encrypt(t, fr.bob, "spend"), "spend")
	}
}

// TestDeferred_honestPeerUnderFlood: 20 strangers each start a session with bob at
// once, and mallory five (a fresh session each time), spending bob's global work
// budget (each new stranger costs two units: its bundle's rows, its session). Before,
// every refused X3DH message was dropped, and so was alice's, sent in the middle of the
// flood: lost unless her next message came. Now the refused ones are kept, within the
// queue's bounds (never more than 8; mallory never more than 2; drop-oldest-of-the-
// largest-sender: her own oldest when past her share, and hers first when the queue is
// full), and alice's, delivered again by the network while kept, is kept once. As the
// budget refills (the injected clock, 10 s a step), Retry processes them oldest first:
// alice's message is delivered exactly once, no message twice, and a later replay of
// it is refused.
func TestDeferred_honestPeerUnderFlood(t *testing.T) {
	ctx := context.Background()
	fr := newFloodRig(t)
	bob := fr.bob
	const queueMax = 8
	delivered := map[string]int{}
	deferred := 0
	send := func(p *party, text string) *ratchet.Outgoing {
		t.Helper()
		out := p.encrypt(t, bob, text)
		if out.Copies[0].Mode != ratchet.ModeX3DH {
			t.Fatalf("%s: %v, want X3DH", text, out.Copies[0].Mode)
		}
		in, err := bob.r.Receive(ctx, p.pub(), out.Payload)
		switch {
		case err == nil:
			delivered[string(in.Payload)]++
			if err := bob.r.Processed(ctx, in.Receipt); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, ratchet.ErrDeferred) && errors.Is(err, ratchet.ErrWorkRefused):
			deferred++
		default:
			t.Fatalf("%s: %v", text, err)
		}
		if n := bob.r.Deferred(); n > queueMax {
			t.Fatalf("after %s: %d kept, above the bound %d", text, n, queueMax)
		}
		return out
	}
	for i := range 20 {
		send(fr.peer(t, fmt.Sprintf("stranger %d", i)), fmt.Sprintf("stranger %d", i))
	}
	for i := range 5 {
		send(fr.peer(t, "mallory"), fmt.Sprintf("mallory %d", i))
	}
	alice := fr.peer(t, "alice")
	first := send(alice, "alice")
	if _, err := bob.r.Receive(ctx, alice.pub(), first.Payload); !errors.Is(err, ratchet.ErrDeferred) {
		t.Fatalf("alice's message delivered again while kept: %v, want ErrDeferred", err)
	}
	s := bob.r.Stats()
	t.Logf("flood: %d delivered at once, %d deferred, %d kept, %d dropped by the overflow policy", len(delivered), deferred, s.DeferredQueued, s.DeferredDropped)
	if len(delivered) != 3 || deferred != 23 || s.DeferredQueued != queueMax || s.Deferred != 23 || s.DeferredDropped != 23-queueMax {
		t.Fatalf("delivered %d, deferred %d (counted %d), kept %d, dropped %d; want 3, 23, %d, %d",
			len(delivered), deferred, s.Deferred, s.DeferredQueued, s.DeferredDropped, queueMax, 23-queueMax)
	}
	if s.RefusedX3DH+s.RefusedBundles < 23 {
		t.Fatalf("refusals counted %d + %d, want at least 23", s.RefusedX3DH, s.RefusedBundles)
	}

	var steps, retried int
	for ; bob.r.Deferred() > 0 && steps < 100; steps++ {
		fr.clock.Advance(10 * time.Second)
		for _, r := range bob.r.Retry(ctx) {
			retried++
			if r.Err != nil {
				t.Fatalf("retried message from %x: %v", r.Msg.Src.X.Bytes()[:4], r.Err)
			}
			delivered[string(r.In.Payload)]++
			if err := bob.r.Processed(ctx, r.In.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d steps of 10 s: %d retried and delivered; alice's delivered %d times", steps, retried, delivered["alice"])
	if bob.r.Deferred() != 0 || retried != queueMax {
		t.Fatalf("%d kept after %d steps, %d retried; want 0, %d", bob.r.Deferred(), steps, retried, queueMax)
	}
	for text, n := range delivered {
		if n != 1 {
			t.Fatalf("%q delivered %d times", text, n)
		}
	}
	if delivered["alice"] != 1 {
		t.Fatal("alice's message was not delivered")
	}
	if got := bob.r.Stats().DeferredRetried; got != queueMax {
		t.Fatalf("DeferredRetried %d, want %d", got, queueMax)
	}
	bob.expectDrop(t, alice.pub(), first.Payload, ratchet.ErrReplay)
	// The conversation goes on.
	alice.receive(t, bob, bob.encrypt(t, alice, "hello alice"), "hello alice")
	bob.receive(t, alice, alice.encrypt(t, bob, "hello bob"), "hello bob")
}

// TestDeferred_nextMessageFirst: alice's first message is kept (the budget spent by a
// flood); the budget refills and her second message, which repeats the X3DH header,
// starts the session before any Retry. The kept first message then decrypts on that
// session with the key the second one skipped: each delivered once.
func TestDeferred_nextMessageFirst(t *testing.T) {
	ctx := context.Background()
	fr := newFloodRig(t)
	bob := fr.bob
	fr.spend(t)
	alice := fr.peer(t, "alice")
	first := alice.encrypt(t, bob, "first")
	if _, err := bob.r.Receive(ctx, alice.pub(), first.Payload); !errors.Is(err, ratchet.ErrDeferred) {
		t.Fatalf("alice's first message: %v, want ErrDeferred", err)
	}
	second := alice.encrypt(t, bob, "second")
	fr.clock.Advance(time.Minute)
	bob.receive(t, alice, second, "second")
	rs := bob.r.Retry(ctx)
	if len(rs) != 1 || rs[0].Err != nil || string(rs[0].In.Payload) != "first" {
		t.Fatalf("retry: %+v, want alice's first message", rs)
	}
	if rs[0].In.Mode != ratchet.ModeDR { // on the session the second one started
		t.Fatalf("first message decrypted as %v, want dr", rs[0].In.Mode)
	}
	if err := bob.r.Processed(ctx, rs[0].In.Receipt); err != nil {
		t.Fatal(err)
	}
	if rs := bob.r.Retry(ctx); len(rs) != 0 || bob.r.Deferred() != 0 {
		t.Fatalf("a second retry gave %d, %d kept; want none", len(rs), bob.r.Deferred())
	}
	bob.expectDrop(t, alice.pub(), first.Payload, ratchet.ErrReplay)
}

// TestDeferred_garbageNotKept: with bob's work budget spent, bad input is dropped
// under its reason exactly as before, and none of it is kept or charged to the X3DH
// budget (Stats.RefusedX3DH and Deferred unchanged): only a message that passed every
// cheap check (decoded, bundles verified and signed by the sender, our copy well
// formed, naming a prekey we hold, within MaxSkip, from an installation its bundle made
// known) is kept. (A valid bundle riding in a bad copy is a bundle like any other: it
// is charged to, here refused by, the bundle budget, as before.)
func TestDeferred_garbageNotKept(t *testing.T) {
	ctx := context.Background()
	fr := newFloodRig(t)
	bob := fr.bob
	fr.spend(t)
	eve := fr.peer(t, "eve")
	valid := eve.encrypt(t, bob, "valid")
	pm, err := ratchet.DecodeProtocolMessage(valid.Payload)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(pm *protobuf.ProtocolMessage)) *protobuf.ProtocolMessage {
		c := cloneMessage(t, pm)
		f(c)
		return c
	}
	copyOf := func(pm *protobuf.ProtocolMessage) *protobuf.DirectMessageProtocol {
		return pm.GetDirectMessage()[bob.inst]
	}
	mallory := keyOf(t, "mallory")
	cases := []struct {
		name string
		pm   *protobuf.ProtocolMessage
		raw  []byte
		want error
	}{
		{name: "random bytes", raw: []byte("\x0a\x05hello, this is not a protocol message"), want: ratchet.ErrNotProtocolMessage},
		{name: "bundle signature", pm: mutate(func(pm *protobuf.ProtocolMessage) { pm.Bundles[0].Signature[5] ^= 1 }), want: ratchet.ErrBundleSignature},
		{name: "unknown prekey", pm: mutate(func(pm *protobuf.ProtocolMessage) {
			id := copyOf(pm).X3DHHeader.Id
			id[len(id)-1] ^= 1
			copyOf(pm).DRHeader.Id = id
		}), want: ratchet.ErrUnknownPrekey},
		{name: "bad ephemeral key", pm: mutate(func(pm *protobuf.ProtocolMessage) { copyOf(pm).X3DHHeader.Key[0] = 7 }), want: ratchet.ErrMalformed},
		{name: "too many skipped", pm: mutate(func(pm *protobuf.ProtocolMessage) { copyOf(pm).DRHeader.N = 5000 }), want: ratchet.ErrTooManySkipped},
		{name: "installation never made known", pm: mutate(func(pm *protobuf.ProtocolMessage) {
			pm.Bundles = nil
			pm.InstallationId = "00000000-0000-4000-8000-000000000000"
		}), want: ratchet.ErrUnknownInstallation},
	}
	before := bob.r.Stats()
	for _, tc := range cases {
		var err error
		if tc.raw != nil {
			_, err = bob.r.Receive(ctx, eve.pub(), tc.raw)
		} else {
			_, err = bob.r.ReceiveMessage(ctx, eve.pub(), tc.pm)
		}
		if !errors.Is(err, tc.want) || errors.Is(err, ratchet.ErrDeferred) || errors.Is(err, ratchet.ErrWorkRefused) {
			t.Fatalf("%s: %v, want %v and not deferred", tc.name, err, tc.want)
		}
	}
	// Eve's message signed by another identity than its bundle's.
	if _, err := bob.r.ReceiveMessage(ctx, &mallory.PublicKey, pm); !errors.Is(err, ratchet.ErrBundleSigner) {
		t.Fatalf("bundle of another signer: %v", err)
	}
	after := bob.r.Stats()
	if after.Deferred != 0 || bob.r.Deferred() != 0 || after.RefusedX3DH != before.RefusedX3DH {
		t.Fatalf("garbage kept or charged: deferred %d (%d kept), refused x3dh %d→%d", after.Deferred, bob.r.Deferred(),
			before.RefusedX3DH, after.RefusedX3DH)
	}
	// The valid message is kept.
	if _, err := bob.r.Receive(ctx, eve.pub(), valid.Payload); !errors.Is(err, ratchet.ErrDeferred) {
		t.Fatalf("eve's valid message: %v, want ErrDeferred", err)
	}
}

// FuzzReceive_deferred enters through Receive with bob's work budget spent: no input
// may panic, every failure wraps a sentinel (or ErrDeferred), the queue stays within
// its bound, and an input is kept only if it is a ProtocolMessage whose copy for bob
// carries an X3DH header naming bob's signed prekey (what passed the cheap checks).
func FuzzReceive_deferred(f *testing.F) {
	ctx := context.Background()
	fr := newFloodRig(f)
	bob := fr.bob
	fr.spend(f)
	eve := fr.peer(f, "eve")
	f.Add(eve.encrypt(f, bob, "x3dh").Payload)
	f.Add(eve.encrypt(f, bob, "x3dh again").Payload)
	f.Add([]byte{})
	prekey := fr.bundle.GetSignedPreKeys()[bob.inst].GetSignedPreKey()
	f.Fuzz(func(t *testing.T, data []byte) {
		before := bob.r.Stats().Deferred
		_, err := bob.r.Receive(ctx, eve.pub(), data)
		if errors.Is(err, ratchet.ErrDeferred) || errors.Is(err, ratchet.ErrWorkRefused) {
			if bob.r.Stats().Deferred == before && !errors.Is(err, ratchet.ErrDeferred) {
				return // refused, too large to keep
			}
			pm, derr := ratchet.DecodeProtocolMessage(data)
			if derr != nil {
				t.Fatalf("kept an input that does not decode: %v", derr)
			}
			x := pm.GetDirectMessage()[bob.inst].GetX3DHHeader()
			if x == nil || string(x.GetId()) != string(prekey) {
				t.Fatalf("kept an input without an x3dh header naming our prekey: %v", err)
			}
		} else {
			checkSentinel(t, err)
		}
		if n := bob.r.Deferred(); n > 8 {
			t.Fatalf("%d kept, above the bound 8", n)
		}
	})
}
