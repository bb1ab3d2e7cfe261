package status_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// settableClock is the ratchet's clock in a test: time moves only when told.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestDirect_contactCodeEvery6h: the SDK publishes its identity's contact code over
// Whisper (symmetric, on the contact-code topic with the key derived from its name)
// when its 1:1 side starts, and again once 6 hours have passed, with a newly signed
// bundle; not in between, though it checks at every tick. A reader of the topic learns
// the bundle from it, so its first 1:1 message is X3DH.
func TestDirect_contactCodeEvery6h(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &settableClock{now: time.Unix(1_700_000_000, 0)}
	alice := &party{key: key(t, "alice"), store: st, ratchets: status.StoreRatchets(st, ratchet.Config{Clock: clock.Now})}
	// Ticks every 5 ms: a due check at each, a publication only when 6 h passed.
	if alice.client, err = status.New(nodes[0], status.Config{Ratchets: alice.ratchets, Identity: alice.key,
		ContactCodeTick: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	name := ratchet.ContactCodeTopicName(&alice.key.PublicKey)
	symKey, err := whisper.SymKeyFromPassword(name)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nodes[1].Subscribe(whisper.Filter{Topics: []whisper.Topic{whisper.TopicFromName(name)}, SymKey: symKey})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	bob := newParty(t, nodes[1], "bob", t.TempDir())
	rb, err := bob.ratchets(ctx, bob.key)
	if err != nil {
		t.Fatal(err)
	}
	// next returns the next advertisement's bundle timestamp, after bob's Ratchet read it.
	next := func() time.Time {
		t.Helper()
		select {
		case rm := <-sub.C():
			if rm.Src == nil || !rm.Src.Equal(&alice.key.PublicKey) {
				t.Fatalf("contact code signed by %v, want alice", rm.Src)
			}
			pm, err := ratchet.DecodeProtocolMessage(rm.Payload)
			if err != nil || len(pm.GetBundles()) != 1 || pm.GetDirectMessage() != nil {
				t.Fatalf("contact code %+v: %v", pm, err)
			}
			in, err := rb.Receive(ctx, rm.Src, rm.Payload)
			if err != nil || in.Kind != ratchet.KindBundles {
				t.Fatalf("bob on the contact code: %+v %v", in, err)
			}
			return time.Unix(0, pm.GetBundles()[0].GetTimestamp())
		case <-time.After(15 * time.Second):
			t.Fatal("no contact code within 15 s")
			return time.Time{}
		}
	}
	start := clock.Now()
	alice.start(t)
	if ts := next(); !ts.Equal(start) {
		t.Fatalf("first contact code signed at %v, want %v (at start)", ts, start)
	}
	// Bob learned alice's bundle: his first message to her is X3DH.
	out, err := rb.Encrypt(ctx, &alice.key.PublicKey, []byte("x"))
	if err != nil || out.Copies[0].Mode != ratchet.ModeX3DH {
		t.Fatalf("bob after the contact code: %+v %v, want X3DH", out, err)
	}
	clock.Advance(6*time.Hour + time.Second)
	// Whatever arrives now was published after the clock passed 6 h: an advertisement
	// published at any tick in between would carry the first one's timestamp.
	if ts := next(); ts.Before(start.Add(6 * time.Hour)) {
		t.Fatalf("second contact code signed at %v, before %v: published within 6 h", ts, start.Add(6*time.Hour))
	}
}
