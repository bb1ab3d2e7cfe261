package status

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestDirect_remoteTopicKeysBounded: every stranger whose first message (DH, with a
// bundle of protocol version 1) agrees a negotiated secret with us made Direct derive
// that topic's key (PBKDF2) and subscribe to it: 12 strangers, 12 derivations and 12
// subscriptions. With the Ratchet's secret budget (here a burst of 3, no refill: the
// clock stands still), 3; the other strangers' messages are all delivered, their
// secrets deferred and counted. The deferral loses nothing: once we answer one of them,
// Direct listens on its topic (a peer uses it only after our answer).
func TestDirect_remoteTopicKeysBounded(t *testing.T) {
	const strangers, burst = 12, 3
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	st := tempStore(t)
	still := time.Now()
	c, err := New(nodes[1], Config{Ratchets: StoreRatchets(st, ratchet.Config{NewSecretsBurst: burst, NewSecretsPerMinute: 1,
		Clock: func() time.Time { return still }}), Identity: bobKey, Seen: st})
	if err != nil {
		t.Fatal(err)
	}
	d := startDirect(t, c, bobKey)
	strangersRatchets := StoreRatchets(tempStore(t), ratchet.Config{})
	negotiated := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.subs) - 1 // the asymmetric topics share one subscription
	}
	var last *ratchet.Secret // the last stranger's, as that stranger sees it
	var lastKey *ecdsa.PrivateKey
	for i := range strangers {
		name := fmt.Sprintf("stranger %d", i)
		k, _ := crypto.ToECDSA(crypto.Keccak256([]byte(name)))
		r, err := strangersRatchets(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out := postDirect(t, nodes[0], k, r, &bobKey.PublicKey, "hi from "+name)
		last, lastKey = out.NewSecret, k
		select {
		case m := <-d.Messages():
			if m.Text != "hi from "+name {
				t.Fatalf("got %q, want %q", m.Text, "hi from "+name)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s's message not delivered within 15 s", name)
		}
	}
	r, err := c.cfg.Ratchets(ctx, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	t.Logf("%d strangers: %d negotiated topics joined, %d topic keys derived (PBKDF2), %d secrets deferred",
		strangers, negotiated(), s.TopicKeysDerived, s.DeferredSecrets)
	if n := negotiated(); n != burst || s.TopicKeysDerived != burst || s.DeferredSecrets != strangers-burst {
		t.Fatalf("%d strangers: %d topics joined, %d keys derived, %d deferred; want %d, %d, %d",
			strangers, n, s.TopicKeysDerived, s.DeferredSecrets, burst, burst, strangers-burst)
	}
	// Bob answers the last stranger (deferred): his own message records the secret and
	// Direct listens on its topic before posting.
	if _, err := d.Send(ctx, &lastKey.PublicKey, "hello"); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	joined := d.subs[last.Topic] != nil
	d.mu.Unlock()
	if !joined {
		t.Fatal("after bob's answer to a deferred stranger, its negotiated topic is not joined")
	}
}

// deferrals is a slog.Handler that reports the peers (hex prefix of the compressed
// key, as the Ratchet logs them) whose X3DH messages the Ratchet deferred: the event a
// test waits on.
type deferrals struct{ c chan string }

func (h deferrals) Enabled(context.Context, slog.Level) bool { return true }
func (h deferrals) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h deferrals) WithGroup(string) slog.Handler            { return h }
func (h deferrals) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "ratchet x3dh message deferred: work budget spent" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "peer" {
				h.c <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

// TestDirect_deferredX3DHDelivered: six strangers start sessions with bob at once over
// Whisper and spend his global work budget (burst 4, 6 a minute, each new stranger
// costs two units); alice's first message, which comes next, is refused too. Before,
// Direct dropped it (DropRatchet, "work budget spent"). Now the Ratchet keeps it, and
// as bob's clock moves on (a minute a step: the injected clock, no sleeps) the receive
// loop's retries deliver the kept messages oldest first: alice's once, every message
// at most once, and the queue never holds more than its bound.
func TestDirect_deferredX3DHDelivered(t *testing.T) {
	const strangers = 6
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	clock := newTestClock()
	deferred := deferrals{c: make(chan string, 64)}

	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	st := tempStore(t)
	c, err := New(nodes[1], Config{Ratchets: StoreRatchets(st, ratchet.Config{Clock: clock.Now, Logger: slog.New(deferred),
		WorkBurst: 4, WorkPerMinute: 6, DeferredMessages: 8, DeferredPerSender: 2}), Identity: bobKey, Seen: st,
		RetryTick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bobR, err := c.cfg.Ratchets(ctx, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := bobR.Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := startDirect(t, c, bobKey)
	theirs := StoreRatchets(tempStore(t), ratchet.Config{})
	say := func(name string) string {
		t.Helper()
		k, _ := crypto.ToECDSA(crypto.Keccak256([]byte(name)))
		r, err := theirs(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.HandleBundle(ctx, &bobKey.PublicKey, bundle); err != nil {
			t.Fatal(err)
		}
		out := postDirect(t, nodes[0], k, r, &bobKey.PublicKey, "hi from "+name)
		if out.Copies[0].Mode != ratchet.ModeX3DH {
			t.Fatalf("%s: %v, want X3DH", name, out.Copies[0].Mode)
		}
		return fmt.Sprintf("%x", crypto.CompressPubkey(&k.PublicKey)[:6])
	}
	delivered := map[string]int{}
	next := func(what string) string {
		t.Helper()
		select {
		case m := <-d.Messages():
			delivered[m.Text]++
			return m.Text
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: nothing delivered within 15 s", what)
		}
		return ""
	}
	waitDeferred := func(n int, what string) {
		t.Helper()
		for range n {
			select {
			case <-deferred.c:
			case <-time.After(15 * time.Second):
				t.Fatalf("%s: not deferred within 15 s", what)
			}
		}
	}
	for i := range strangers {
		say(fmt.Sprintf("stranger %d", i))
	}
	next("the first stranger within budget")
	next("the second stranger within budget")
	waitDeferred(strangers-2, "the strangers beyond the budget")
	alice := say("alice")
	select {
	case p := <-deferred.c:
		if p != alice {
			t.Fatalf("deferred %s, want alice (%s)", p, alice)
		}
	case m := <-d.Messages():
		t.Fatalf("%q delivered while the budget is spent", m.Text)
	case <-time.After(15 * time.Second):
		t.Fatal("alice's message not deferred within 15 s")
	}
	if s := bobR.Stats(); s.DeferredQueued != strangers-2+1 || s.DeferredQueued > 8 {
		t.Fatalf("%d kept, want %d", s.DeferredQueued, strangers-2+1)
	}
	var steps int
	for delivered["hi from alice"] == 0 {
		if steps++; steps > 10 {
			t.Fatalf("alice's message not delivered after %d minutes of bob's clock", steps-1)
		}
		clock.Advance(time.Minute) // 4 units (the burst): two kept messages
		next(fmt.Sprintf("minute %d", steps))
	}
	s := bobR.Stats()
	t.Logf("alice's first message delivered by the %dth one-minute step of bob's clock; %d deferred, %d retried, %d dropped, %d kept",
		steps, s.Deferred, s.DeferredRetried, s.DeferredDropped, s.DeferredQueued)
	for text, n := range delivered {
		if n != 1 {
			t.Fatalf("%q delivered %d times", text, n)
		}
	}
	if s.Deferred != strangers-2+1 || s.DeferredDropped != 0 {
		t.Fatalf("deferred %d, dropped %d; want %d, 0", s.Deferred, s.DeferredDropped, strangers-2+1)
	}
}
