package ratchet_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// TestConversation_outOfOrder: 20 messages delivered in reverse order all decrypt, each
// once: after processing, every one of them replayed is a replay.
func TestConversation_outOfOrder(t *testing.T) {
	alice, bob, _ := established(t)
	var outs []*ratchet.Outgoing
	for i := range 20 {
		outs = append(outs, alice.encrypt(t, bob, fmt.Sprintf("m%d", i)))
	}
	for i := 19; i >= 0; i-- {
		bob.receive(t, alice, outs[i], fmt.Sprintf("m%d", i))
	}
	for i := range outs {
		bob.expectDrop(t, alice.pub(), outs[i].Payload, ratchet.ErrReplay)
	}
	alice.receive(t, bob, bob.encrypt(t, alice, "all 20"), "all 20")
}

// TestConversation_restart: both sides restart from their databases mid-conversation
// and continue on the same sessions (no new X3DH); a message decrypted but not
// processed before the restart decrypts again after it.
func TestConversation_restart(t *testing.T) {
	alice, bob, _ := established(t)
	pending := alice.encrypt(t, bob, "decrypted before the crash")
	if _, err := bob.r.Receive(context.Background(), alice.pub(), pending.Payload); err != nil {
		t.Fatal(err)
	}
	inFlight := alice.encrypt(t, bob, "in flight during the restart")
	alice.restart(t)
	bob.restart(t)
	bob.receive(t, alice, pending, "decrypted before the crash")
	bob.receive(t, alice, inFlight, "in flight during the restart")
	for i := range 6 {
		from, to := bob, alice
		if i%2 == 1 {
			from, to = alice, bob
		}
		out := from.encrypt(t, to, fmt.Sprintf("after restart %d", i))
		if out.Copies[0].Mode != ratchet.ModeDR || !out.Agreed {
			t.Fatalf("after restart: %+v agreed=%v, want DR on the negotiated topic", out.Copies, out.Agreed)
		}
		if in := to.receive(t, from, out, fmt.Sprintf("after restart %d", i)); in.Mode != ratchet.ModeDR {
			t.Fatalf("after restart: mode %v", in.Mode)
		}
	}
	secrets, err := alice.r.Secrets(context.Background())
	if err != nil || len(secrets) != 1 {
		t.Fatalf("secrets after restart: %v %v", secrets, err)
	}
}

// TestConversation_multiDevice: Bob on two installations. Alice's first message (DH)
// reaches both; each answers with X3DH; from then on Alice encrypts one copy per
// installation and, having heard from both, uses the negotiated topic.
func TestConversation_multiDevice(t *testing.T) {
	clock := newClock()
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	bobKey := keyOf(t, "bob")
	bob1 := newParty(t, "bob1", bobKey, clock, nil)
	bob2 := newParty(t, "bob2", bobKey, clock, nil)

	first := alice.encrypt(t, bob1, "to any bob")
	bob1.receive(t, alice, first, "to any bob")
	bob2.receive(t, alice, first, "to any bob")
	alice.receive(t, bob1, bob1.encrypt(t, alice, "bob1 here"), "bob1 here")
	clock.Advance(time.Second) // bob2's bundle is the newer
	alice.receive(t, bob2, bob2.encrypt(t, alice, "bob2 here"), "bob2 here")

	out := alice.encrypt(t, bob1, "to both")
	var ids []string
	for _, c := range out.Copies {
		ids = append(ids, c.InstallationID)
		if c.Mode != ratchet.ModeDR {
			t.Fatalf("copy %+v, want DR", c)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{bob1.inst, bob2.inst}) || !out.Agreed {
		t.Fatalf("copies for %v agreed=%v, want both installations, agreed", ids, out.Agreed)
	}
	bob1.receive(t, alice, out, "to both")
	bob2.receive(t, alice, out, "to both")
	ds, err := alice.r.Installations(context.Background(), bob1.pub())
	if err != nil || len(ds) != 2 || ds[0].InstallationID != bob2.inst {
		t.Fatalf("alice knows %+v, want bob2 then bob1", ds)
	}
}

// TestInstallations_max3: a fourth installation of a peer evicts the least recently
// seen; messages then go to the three most recent.
func TestInstallations_max3(t *testing.T) {
	clock := newClock()
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	daveKey := keyOf(t, "dave")
	var daves []*party
	for i := range 4 {
		d := newParty(t, fmt.Sprintf("dave%d", i), daveKey, clock, nil)
		clock.Advance(time.Second)
		bob.receive(t, d, d.encrypt(t, bob, "from "+d.name), "from "+d.name) // DH, with d's bundle
		daves = append(daves, d)
	}
	ds, err := bob.r.Installations(context.Background(), daves[0].pub())
	if err != nil || len(ds) != 3 || ds[0].InstallationID != daves[3].inst || ds[2].InstallationID != daves[1].inst {
		t.Fatalf("installations %+v, want dave3, dave2, dave1", ds)
	}
	if s := bob.r.Stats(); s.DevicesEvicted != 1 {
		t.Fatalf("evicted %d", s.DevicesEvicted)
	}
	out := bob.encrypt(t, daves[0], "to the three")
	if len(out.Copies) != 3 {
		t.Fatalf("copies %+v", out.Copies)
	}
	for _, d := range daves[1:] {
		d.receive(t, bob, out, "to the three")
	}
	in, err := daves[0].r.Receive(context.Background(), bob.pub(), out.Payload)
	if err != nil || in.Kind != ratchet.KindNotForUs {
		t.Fatalf("evicted installation: %+v %v, want not-for-us", in, err)
	}
}

// TestPairing: Alice's second installation announces itself with a DH message to her own
// key; it stays disabled until enabled; then Alice's bundle lists it and a message to
// herself reaches it.
func TestPairing(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	aliceKey := keyOf(t, "alice")
	a1 := newParty(t, "alice1", aliceKey, clock, nil)
	a2 := newParty(t, "alice2", aliceKey, clock, nil)
	pair, err := a2.r.EncryptDH(ctx, a2.pub(), []byte("pair"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := a1.r.Receive(ctx, a2.pub(), pair.Payload)
	if err != nil || in.Kind != ratchet.KindDirect || string(in.Payload) != "pair" || !slices.Equal(in.NewInstallations, []string{a2.inst}) {
		t.Fatalf("pair message: %+v %v", in, err)
	}
	if _, err := a1.r.Encrypt(ctx, a1.pub(), []byte("sync")); err == nil {
		t.Fatal("encrypted to a disabled installation")
	}
	if b, _ := a1.r.Bundle(ctx); len(b.GetSignedPreKeys()) != 1 {
		t.Fatalf("bundle lists %d installations before pairing", len(b.GetSignedPreKeys()))
	}
	if err := a1.r.SetInstallationEnabled(ctx, a2.inst, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := a1.r.Bundle(ctx); len(b.GetSignedPreKeys()) != 2 {
		t.Fatalf("bundle lists %d installations after pairing", len(b.GetSignedPreKeys()))
	}
	sync := a1.encrypt(t, a1, "sync")
	if len(sync.Copies) != 1 || sync.Copies[0].InstallationID != a2.inst || sync.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("sync copies %+v", sync.Copies)
	}
	a2.receive(t, a1, sync, "sync")
	if err := a1.r.SetInstallationEnabled(ctx, "unknown", true); err == nil {
		t.Fatal("enabled an unknown installation")
	}
}

// TestBundle_refresh: after 24 h our signed prekey is replaced (version 2); the peer,
// once it sees the new bundle, starts a new session with it, and so do we; messages
// of the old sessions still decrypt.
func TestBundle_refresh(t *testing.T) {
	alice, bob, clock := established(t)
	late := bob.encrypt(t, alice, "sent before the refresh")
	clock.Advance(25 * time.Hour)
	b, err := alice.r.Bundle(context.Background())
	if err != nil || b.GetSignedPreKeys()[alice.inst].GetVersion() != 2 {
		t.Fatalf("bundle after 25 h: %v %v, want prekey version 2", b, err)
	}
	out := alice.encrypt(t, bob, "with my new prekey")
	if out.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("alice after her refresh: %+v, want a new X3DH", out.Copies)
	}
	bob.receive(t, alice, out, "with my new prekey")
	ans := bob.encrypt(t, alice, "to your new prekey")
	if ans.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("bob after alice's new bundle: %+v, want a new X3DH", ans.Copies)
	}
	alice.receive(t, bob, ans, "to your new prekey")
	alice.receive(t, bob, late, "sent before the refresh")
	for i := range 4 {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		if out := from.encrypt(t, to, "dr"); out.Copies[0].Mode != ratchet.ModeDR {
			t.Fatalf("after refresh: %+v", out.Copies)
		} else {
			to.receive(t, from, out, "dr")
		}
	}
}

// TestBundleBack: a message with no copy for this installation gets an empty DH answer
// carrying our bundle, at most once per peer per two hours; the sender learns us from it.
func TestBundleBack(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	carol := newParty(t, "carol", keyOf(t, "carol"), clock, nil)
	bobKey := keyOf(t, "bob")
	bob1 := newParty(t, "bob1", bobKey, clock, nil)
	bob2 := newParty(t, "bob2", bobKey, clock, nil)
	carol.receive(t, bob2, bob2.encrypt(t, carol, "bob2 only"), "bob2 only")
	out := carol.encrypt(t, bob1, "for bob2")
	if len(out.Copies) != 1 || out.Copies[0].InstallationID != bob2.inst {
		t.Fatalf("copies %+v", out.Copies)
	}
	in, err := bob1.r.Receive(ctx, carol.pub(), out.Payload)
	if err != nil || in.Kind != ratchet.KindNotForUs || in.Reply == nil {
		t.Fatalf("bob1: %+v %v, want not-for-us with a reply", in, err)
	}
	if c := in.Reply.Copies; len(c) != 1 || c[0].Mode != ratchet.ModeDH || in.Reply.Envelope.Dst == nil {
		t.Fatalf("reply %+v", in.Reply)
	}
	back, err := carol.r.Receive(ctx, bob1.pub(), in.Reply.Payload)
	if err != nil || back.Kind != ratchet.KindDirect || len(back.Payload) != 0 || !slices.Equal(back.NewInstallations, []string{bob1.inst}) {
		t.Fatalf("carol on the bundle-back: %+v %v", back, err)
	}
	in, err = bob1.r.Receive(ctx, carol.pub(), carol.encrypt(t, bob2, "again").Payload)
	if err != nil || in.Kind != ratchet.KindDirect {
		t.Fatalf("carol now addresses bob1: %+v %v", in, err)
	}
	// Rate limit: a second not-for-us message within 2 h gets no answer; after, one.
	dan := newParty(t, "dan", keyOf(t, "dan"), clock, nil)
	dan.receive(t, bob2, bob2.encrypt(t, dan, "hi dan"), "hi dan")
	for i, wantReply := range []bool{true, false, false} {
		in, err := bob1.r.Receive(ctx, dan.pub(), dan.encrypt(t, bob2, "x").Payload)
		if err != nil || in.Kind != ratchet.KindNotForUs || (in.Reply != nil) != wantReply {
			t.Fatalf("not-for-us %d: %+v %v, want reply=%v", i, in, err, wantReply)
		}
		clock.Advance(time.Hour - time.Second)
	}
	clock.Advance(time.Minute)
	if in, err := bob1.r.Receive(ctx, dan.pub(), dan.encrypt(t, bob2, "x").Payload); err != nil || in.Reply == nil {
		t.Fatalf("after 2 h: %+v %v, want a reply", in, err)
	}
	if s := bob1.r.Stats(); s.BundleBacks != 3 || s.NotForUs != 5 {
		t.Fatalf("stats %+v", s)
	}
}

// TestContactCode: the advertisement loop publishes at start, not again on a tick within
// 6 h, and again on the first tick after; a reader learns the bundle from it.
func TestContactCode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clock := newClock()
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	tick := make(chan time.Time)
	published := make(chan *ratchet.Outgoing, 10)
	done := make(chan error, 1)
	go func() {
		done <- alice.r.RunContactCode(ctx, tick, nil, func(_ context.Context, o *ratchet.Outgoing) error {
			published <- o
			return nil
		})
	}()
	var first *ratchet.Outgoing
	select {
	case first = <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("no contact code at start")
	}
	name := ratchet.ContactCodeTopicName(alice.pub())
	if first.Envelope.TopicName != name || first.Envelope.SymKey == nil || first.Envelope.Dst != nil {
		t.Fatalf("contact code envelope %+v", first.Envelope)
	}
	// Within 6 h: nothing. The second send returns only once the loop is back waiting,
	// so the first tick was handled before the clock moves.
	tick <- clock.Now()
	tick <- clock.Now()
	clock.Advance(6*time.Hour + time.Second)
	tick <- clock.Now()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("no contact code after 6 h")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("loop ended with %v", err)
	}
	if n := len(published); n != 0 {
		t.Fatalf("%d extra publications", n)
	}
	in, err := bob.r.Receive(context.Background(), alice.pub(), first.Payload)
	if err != nil || in.Kind != ratchet.KindBundles || !slices.Equal(in.NewInstallations, []string{alice.inst}) {
		t.Fatalf("bob on the contact code: %+v %v", in, err)
	}
	if out := bob.encrypt(t, alice, "x3dh from the contact code"); out.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("bob after the contact code: %+v", out.Copies)
	}
}

// TestWrapPublic: a public message wrapped with our bundle reads back as public with its
// payload, and teaches the reader our bundle (so its first DM can use X3DH).
func TestWrapPublic(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	wrapped, err := alice.r.WrapPublic(ctx, []byte("public payload"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := bob.r.Receive(ctx, alice.pub(), wrapped)
	if err != nil || in.Kind != ratchet.KindPublic || string(in.Payload) != "public payload" || in.InstallationID != alice.inst {
		t.Fatalf("public: %+v %v", in, err)
	}
	out := bob.encrypt(t, alice, "first dm")
	if out.Copies[0].Mode != ratchet.ModeX3DH || out.Agreed || out.Envelope.Dst == nil {
		t.Fatalf("first dm after a public message: %+v agreed=%v", out.Copies, out.Agreed)
	}
	alice.receive(t, bob, out, "first dm")
}

// TestLimits_skippedKeys: with small limits, a skip beyond MaxSkip is refused, and the
// skipped keys of a session are capped (MaxMessageKeysPerSession, oldest dropped first):
// a message whose key was dropped cannot be read any more, one whose key was kept can.
func TestLimits_skippedKeys(t *testing.T) {
	clock := newClock()
	small := func(c *ratchet.Config) { c.MaxSkip, c.MaxKeep, c.MaxMessageKeysPerSession = 10, 100, 15 }
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, small)
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, small)
	bob.receive(t, alice, alice.encrypt(t, bob, "dh"), "dh")
	alice.receive(t, bob, bob.encrypt(t, alice, "x3dh"), "x3dh")

	send := func(n int) []*ratchet.Outgoing {
		var outs []*ratchet.Outgoing
		for i := range n {
			outs = append(outs, alice.encrypt(t, bob, fmt.Sprintf("m%d", i)))
		}
		return outs
	}
	// 12 messages: the last skips 11 > MaxSkip; the 11th skips exactly 10.
	first := send(12)
	bob.expectDrop(t, alice.pub(), first[11].Payload, ratchet.ErrTooManySkipped)
	bob.receive(t, alice, first[10], "m10")
	// 10 more in the same chain (N 12…21): receiving the last skips N 11…20: 20 skipped
	// keys and the one just used (kept until processed) make 21, capped at 15: the six
	// oldest (m0…m5) are gone, the rest readable.
	second := send(10)
	bob.receive(t, alice, second[9], "m9")
	for i := range 6 {
		if _, err := bob.r.Receive(context.Background(), alice.pub(), first[i].Payload); err == nil {
			t.Fatalf("m%d readable after its key was dropped by the cap", i)
		}
	}
	for i := 6; i < 10; i++ {
		bob.receive(t, alice, first[i], fmt.Sprintf("m%d", i))
	}
	bob.receive(t, alice, first[11], "m11") // its key was skipped on the way to second[9]
	for i := range 9 {
		bob.receive(t, alice, second[i], fmt.Sprintf("m%d", i))
	}
}

// TestLimits_maxKeep: a stored message key is deleted once MaxKeep newer keys were
// derived in its session (status-go's WithMaxKeep), even below the per-session cap: a
// message that late cannot be read any more, and it is a counted drop; the newer ones
// still are.
func TestLimits_maxKeep(t *testing.T) {
	clock := newClock()
	small := func(c *ratchet.Config) { c.MaxSkip, c.MaxKeep, c.MaxMessageKeysPerSession = 20, 5, 100 }
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, small)
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, small)
	bob.receive(t, alice, alice.encrypt(t, bob, "dh"), "dh")
	alice.receive(t, bob, bob.encrypt(t, alice, "x3dh"), "x3dh")
	var outs []*ratchet.Outgoing
	for i := range 10 {
		outs = append(outs, alice.encrypt(t, bob, fmt.Sprintf("m%d", i)))
	}
	// Receiving m9 derives the keys of m0…m9 (10 keys); with MaxKeep 5, those more
	// than 5 keys back (m0…m5) are deleted at once.
	bob.receive(t, alice, outs[9], "m9")
	for i := range 6 {
		before := bob.r.Stats()
		if _, err := bob.r.Receive(context.Background(), alice.pub(), outs[i].Payload); err == nil {
			t.Fatalf("m%d readable after MaxKeep newer keys were derived", i)
		}
		if s := bob.r.Stats(); s.Replay+s.Decrypt != before.Replay+before.Decrypt+1 {
			t.Fatalf("the drop of m%d was not counted: %+v", i, s)
		}
	}
	for i := 6; i < 9; i++ {
		bob.receive(t, alice, outs[i], fmt.Sprintf("m%d", i))
	}
}

// TestBundle_olderNeverReplacesNewer: bundles of an installation replace what we
// stored only when newer: after Alice's refreshed bundle (prekey version 2), her older
// bundle arriving late (a delayed or replayed message) changes nothing, and Bob's next
// session with her uses the new prekey.
func TestBundle_olderNeverReplacesNewer(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	alice := newParty(t, "alice", keyOf(t, "alice"), clock, nil)
	bob := newParty(t, "bob", keyOf(t, "bob"), clock, nil)
	old, err := alice.r.Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * time.Hour)
	fresh, err := alice.r.Bundle(ctx)
	if err != nil || fresh.GetSignedPreKeys()[alice.inst].GetVersion() != 2 {
		t.Fatalf("refreshed bundle %v %v", fresh, err)
	}
	for i, b := range []*protobuf.Bundle{fresh, old} {
		if _, err := bob.r.HandleBundle(ctx, alice.pub(), b); err != nil {
			t.Fatalf("bundle %d: %v", i, err)
		}
	}
	ds, err := bob.r.Installations(ctx, alice.pub())
	want := fresh.GetSignedPreKeys()[alice.inst].GetSignedPreKey()
	if err != nil || len(ds) != 1 || ds[0].PrekeyVersion != 2 || !bytes.Equal(ds[0].SignedPreKey, want) || ds[0].Timestamp != fresh.GetTimestamp() {
		t.Fatalf("stored %+v %v, want the refreshed prekey (version 2)", ds, err)
	}
	out := bob.encrypt(t, alice, "to your new prekey")
	if out.Copies[0].Mode != ratchet.ModeX3DH || !bytes.Equal(out.Message.DirectMessage[alice.inst].GetX3DHHeader().GetId(), want) {
		t.Fatalf("bob's first message: %+v, want X3DH with the refreshed prekey", out.Copies)
	}
	alice.receive(t, bob, out, "to your new prekey")
}
