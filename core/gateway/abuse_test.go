package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/gateway/gatewaytest"
)

// redactConn is a testConn whose network can delete: Redact records the delete on the
// same channel as Send.
type redactConn struct{ *gatewaytest.Conn }

func (c redactConn) Redact(ctx context.Context, out bridges.Outbound) error {
	c.Record(out)
	return nil
}

// remoteChange is an edit (text set) or a delete of target by user in test:room.
func remoteChange(t *testing.T, id, user, target, text string) bridges.Event {
	t.Helper()
	ev := remoteEvent(t, id, user, user, text)
	ev.Kind, ev.Target = bridges.KindEdit, bridges.RemoteMsgID("test:"+target)
	if text == "" {
		ev.Kind = bridges.KindDelete
	}
	return ev
}

// TestGateway_editsAndDeletesOnlyByAuthor (issue 15 finding 2): on a route test:room ⇄
// Status ⇄ other:room, mallory's edit and delete of alice's message are dropped (the
// edit reaches neither Status nor other:room, the delete does not reach other:room);
// alice's own edit and delete go through, and a delete by a sender the connector
// vouches for as a moderator goes through. Before the fix mallory's edit reached
// Status as "(edited) I will pay you 500 EUR" and other:room as the new text.
func TestGateway_editsAndDeletesOnlyByAuthor(t *testing.T) {
	other := redactConn{gatewaytest.NewConn("other")}
	e := newEnv(t, envOpts{extra: []bridges.Connector{other}, cfg: func(c *gateway.Config) {
		c.Routes[0].Channels = append(c.Routes[0].Channels, gateway.RouteChannel{Channel: "other:room"})
	}})
	ctx := context.Background()
	deliver := func(ev bridges.Event) {
		t.Helper()
		if err := e.host.Deliver(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	deliver(remoteEvent(t, "alice1", "alice", "Alice", "I will pay you 5 EUR"))
	if m := nextStatus(t, e.user); m.Text != "[test] <Alice> I will pay you 5 EUR" {
		t.Fatalf("status got %q", m.Text)
	}
	if out := other.Next(t); out.Event.Text != "I will pay you 5 EUR" {
		t.Fatalf("other got %q", out.Event.Text)
	}
	// mallory edits and deletes alice's message: nothing anywhere. alice's own edit
	// follows, so the next thing each side sees must be hers.
	deliver(remoteChange(t, "mallory-edit", "mallory", "alice1", "I will pay you 500 EUR"))
	deliver(remoteChange(t, "mallory-del", "mallory", "alice1", ""))
	deliver(remoteChange(t, "alice-edit", "alice", "alice1", "I will pay you 6 EUR"))
	if m := nextStatus(t, e.user); m.Text != "[test] <alice> (edited) I will pay you 6 EUR" {
		t.Fatalf("status got %q, want alice's edit", m.Text)
	}
	if out := other.Next(t); out.Event.Kind != bridges.KindMessage || out.Event.Text != "I will pay you 6 EUR" ||
		out.Event.Sender.ID != "test:alice" {
		t.Fatalf("other got %s %q by %s, want alice's edit (sent as a message: no Editor)", out.Event.Kind, out.Event.Text, out.Event.Sender.ID)
	}
	// A delete by a moderator is relayed; so is alice's own.
	deliver(remoteEvent(t, "bob1", "bob", "Bob", "spam"))
	nextStatus(t, e.user)
	other.Next(t)
	mod := remoteChange(t, "mod-del", "carol", "bob1", "")
	mod.Sender.Moderator = true
	deliver(mod)
	if out := other.Next(t); out.Event.Kind != bridges.KindDelete || out.Event.Sender.ID != "test:carol" || out.Target != "other:m3" {
		t.Fatalf("other got %s of %s by %s, want carol's delete of other:m3", out.Event.Kind, out.Target, out.Event.Sender.ID)
	}
	deliver(remoteChange(t, "alice-del", "alice", "alice1", ""))
	if out := other.Next(t); out.Event.Kind != bridges.KindDelete || out.Event.Sender.ID != "test:alice" || out.Target != "other:m1" {
		t.Fatalf("other got %s of %s by %s, want alice's delete of other:m1", out.Event.Kind, out.Target, out.Event.Sender.ID)
	}
	// The Status side refuses a moderator's edit outright.
	bad := remoteChange(t, "mod-edit", "carol", "bob1", "edited by a moderator")
	bad.Sender.Moderator = true
	if err := e.host.Deliver(ctx, bad); !bridges.IsPermanent(err) {
		t.Fatalf("a moderator's edit: %v, want a permanent error", err)
	}
	quietStatus(t, e.user, 300*time.Millisecond)
}

// TestGateway_floodControl (issue 15 finding 8): with a burst of 3 and the gateway's
// clock standing still, a sender's fourth and fifth events are dropped while another sender
// still gets through; a Status user's flood is cut the same way; a network's new
// senders beyond its budget are dropped. Before the fix every event was relayed.
func TestGateway_floodControl(t *testing.T) {
	// The gateway's clock stands still (its timers run): no bucket refills during the test.
	e := newEnv(t, envOpts{cfg: func(c *gateway.Config) {
		c.RateLimit = gateway.RateLimit{Burst: 3, NewSendersPerMinute: 3}
		c.Clock = frozenClock{time.Now()}
	}})
	ctx := context.Background()
	for i := range 5 {
		if err := e.host.Deliver(ctx, remoteEvent(t, fmt.Sprintf("a%d", i), "alice", "Alice", fmt.Sprintf("alice %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.host.Deliver(ctx, remoteEvent(t, "b0", "bob", "Bob", "bob 0")); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 4 {
		got[nextStatus(t, e.user).Text] = true
	}
	for _, want := range []string{"[test] <Alice> alice 0", "[test] <Alice> alice 1", "[test] <Alice> alice 2", "[test] <Bob> bob 0"} {
		if !got[want] {
			t.Errorf("Status got %v, missing %q", got, want)
		}
	}
	quietStatus(t, e.user, 300*time.Millisecond)

	// New senders: alice and bob took two of the network's three; carol takes the
	// last, dave gets none.
	for _, u := range []string{"carol", "dave"} {
		if err := e.host.Deliver(ctx, remoteEvent(t, u+"0", u, u, "hi from "+u)); err != nil {
			t.Fatal(err)
		}
	}
	if m := nextStatus(t, e.user); m.Text != "[test] <carol> hi from carol" {
		t.Errorf("Status got %q, want carol's", m.Text)
	}
	quietStatus(t, e.user, 300*time.Millisecond)

	// A Status user's flood.
	for i := range 5 {
		if _, err := e.user.Send(ctx, fmt.Sprintf("status %d", i), e.userKey); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if out := e.conn.Next(t); out.Event.Text != fmt.Sprintf("status %d", i) {
			t.Errorf("connector got %q, want status %d", out.Event.Text, i)
		}
	}
	e.conn.Quiet(t, 300*time.Millisecond)
}

// frozenClock reads one instant; its timers are the system's.
type frozenClock struct{ at time.Time }

func (c frozenClock) Now() time.Time { return c.at }
func (c frozenClock) NewTimer(d time.Duration) gateway.Timer {
	return gateway.SystemClock{}.NewTimer(d)
}

// TestGateway_puppetKeyCacheBounded is the review of issue 15's "byte bounds on every map
// remote input can grow": every remote user relayed to Status adds its puppet's chat
// key to the gateway's cache of its own keys (loop prevention), and nothing took them
// out. 12 remote users through a cache bounded to 4: it never holds more than 4 (before:
// 12), and the echoes of every puppet's post, cached or not, are still recognised as
// ours (the registry answers for the ones cleared), so none loops back.
func TestGateway_puppetKeyCacheBounded(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *gateway.Config) { c.RateLimit.Disabled = true }})
	e.gw.SetOursLimit(4)
	most := 0
	for i := range 12 {
		ev := remoteEvent(t, fmt.Sprint("m", i), fmt.Sprint("user-", i), fmt.Sprint("User ", i), fmt.Sprint("hello ", i))
		if err := e.host.Deliver(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if m := nextStatus(t, e.user); m.Text != fmt.Sprintf("[test] <User %d> hello %d", i, i) {
			t.Fatalf("Status got %q", m.Text)
		}
		most = max(most, e.gw.OursLen())
	}
	if most > 4 {
		t.Errorf("the puppet key cache held %d keys, over its bound of 4", most)
	}
	e.conn.Quiet(t, 300*time.Millisecond) // no echo relayed back to the connector
}

// TestGateway_unsendableToStatusFailsAtOnce is issue 15 finding 1's "an error that will
// never succeed is permanent" on the Status side: a post the Status encoder refuses
// (status.ErrUnsendable: the text the protocol cannot carry) is tried once, ends failed
// visibly (counted in statusgate_delivery_failures_total, its sender told in its own
// channel), and the message behind it goes through. Were the refusal classified
// transient, as the "too long" error was before the fix, it would be tried
// MaxAttempts (4) times.
func TestGateway_unsendableToStatusFailsAtOnce(t *testing.T) {
	net := newMemNet()
	net.unsendable = "POISON"
	e := newEnv(t, envOpts{net: net})
	for _, ev := range []bridges.Event{
		remoteEvent(t, "u1", "mallory", "Mallory", "POISON"),
		remoteEvent(t, "u2", "alice", "Alice", "after the poison"),
	} {
		if err := e.host.Deliver(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if m := nextStatus(t, e.user); m.Text != "[test] <Alice> after the poison" {
		t.Fatalf("Status got %q", m.Text)
	}
	if n := e.conn.Next(t); n.Event.Kind != bridges.KindNotice || !strings.Contains(n.Event.Text, "Mallory") {
		t.Fatalf("the poison's sender got %s %q, want a failure notice", n.Event.Kind, n.Event.Text)
	}
	e.until(t, "the poison's delivery ended failed", func() bool {
		n, err := e.st.CountPending(context.Background(), "status:status")
		return err == nil && n == 0
	})
	net.mu.Lock()
	refused := net.refused
	net.mu.Unlock()
	if refused != 1 {
		t.Fatalf("an unsendable Status post was tried %d times, want 1", refused)
	}
}
