package gateway_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/gateway/gatewaytest"
)

// capsConn is a connector that can edit and react, with Capabilities set by the test.
type capsConn struct{ *gatewaytest.Conn }

func (c capsConn) Edit(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	c.Record(out)
	return bridges.Receipt{ID: out.Target}, nil
}

func (c capsConn) React(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	c.Record(out)
	return bridges.Receipt{}, nil
}

// capsEnv is the route status ⇄ test:room ⇄ other:room, other:room a capsConn.
func capsEnv(t *testing.T, caps bridges.Capabilities, clock gateway.Clock) (*env, capsConn) {
	other := capsConn{gatewaytest.NewConn("other")}
	other.SetCaps(caps)
	e := newEnv(t, envOpts{extra: []bridges.Connector{other}, cfg: func(c *gateway.Config) {
		c.Routes[0].Channels = append(c.Routes[0].Channels, gateway.RouteChannel{Channel: "other:room"})
		c.Clock = clock
	}})
	return e, other
}

// TestGateway_replyAsQuote: to a network without replies (Capabilities.Replies false)
// a reply goes as a quote of the answered message's author and first line, then the
// text, with no ReplyTo; to one with replies, as a reply to its own copy.
func TestGateway_replyAsQuote(t *testing.T) {
	e, other := capsEnv(t, bridges.Capabilities{}, nil)
	ctx := context.Background()
	first := remoteEvent(t, "q1", "alice", "Alice", "Where do we meet?\nSecond line")
	if err := e.host.Deliver(ctx, first); err != nil {
		t.Fatal(err)
	}
	if out := other.Next(t); out.Event.Text != first.Text {
		t.Fatalf("other got %q", out.Event.Text)
	}
	nextStatus(t, e.user)
	reply := remoteEvent(t, "q2", "bob", "Bob", "At the station")
	reply.ReplyTo = first.Origin.ID
	if err := e.host.Deliver(ctx, reply); err != nil {
		t.Fatal(err)
	}
	out := other.Next(t)
	if out.ReplyTo != "" || out.Event.Text != "> Alice: Where do we meet?…\n\nAt the station" {
		t.Fatalf("reply to a network without replies: %q (ReplyTo %q)", out.Event.Text, out.ReplyTo)
	}
	// Status has replies: the answer names the puppet message's id.
	if m := nextStatus(t, e.user); m.Text != "[test] <Bob> At the station" || m.ResponseTo == "" {
		t.Fatalf("Status got %q replying to %q", m.Text, m.ResponseTo)
	}
}

// TestGateway_editWindow: an edit within the destination's EditWindow goes through its
// Editor; one of an older message goes as a new message.
func TestGateway_editWindow(t *testing.T) {
	clock := &steppedClock{at: time.Now()}
	e, other := capsEnv(t, bridges.Capabilities{Replies: true, EditWindow: time.Hour}, clock)
	ctx := context.Background()
	msg := remoteEvent(t, "e1", "alice", "Alice", "teh typo")
	msg.Time = clock.Now()
	if err := e.host.Deliver(ctx, msg); err != nil {
		t.Fatal(err)
	}
	sent := other.Next(t)
	edit := remoteEvent(t, "e2", "alice", "Alice", "the typo")
	edit.Kind, edit.Target, edit.Time = bridges.KindEdit, msg.Origin.ID, clock.Now()
	if err := e.host.Deliver(ctx, edit); err != nil {
		t.Fatal(err)
	}
	if out := other.Next(t); out.Event.Kind != bridges.KindEdit || out.Target != other.IDOf(sent.Key) {
		t.Fatalf("an edit within the window: %s of %q", out.Event.Kind, out.Target)
	}
	clock.step(2 * time.Hour)
	late := remoteEvent(t, "e3", "alice", "Alice", "the typo, fixed again")
	late.Kind, late.Target, late.Time = bridges.KindEdit, msg.Origin.ID, clock.Now()
	if err := e.host.Deliver(ctx, late); err != nil {
		t.Fatal(err)
	}
	if out := other.Next(t); out.Event.Kind != bridges.KindMessage || out.Target != "" || out.Event.Text != "the typo, fixed again" {
		t.Fatalf("an edit after the window: %s %q of %q, want a new message", out.Event.Kind, out.Event.Text, out.Target)
	}
}

// TestGateway_reaction: a reaction reaches a connector that can react (Reactor) on its
// copy of the message, and Status, which cannot show it, gets nothing.
func TestGateway_reaction(t *testing.T) {
	e, other := capsEnv(t, bridges.Capabilities{Replies: true}, nil)
	ctx := context.Background()
	msg := remoteEvent(t, "m1", "alice", "Alice", "lunch?")
	if err := e.host.Deliver(ctx, msg); err != nil {
		t.Fatal(err)
	}
	sent := other.Next(t)
	nextStatus(t, e.user)
	r := remoteEvent(t, "r1", "bob", "Bob", "")
	r.Kind, r.Target, r.Reaction = bridges.KindReaction, msg.Origin.ID, "👍"
	if err := e.host.Deliver(ctx, r); err != nil {
		t.Fatal(err)
	}
	if out := other.Next(t); out.Event.Kind != bridges.KindReaction || out.Event.Reaction != "👍" || out.Target != other.IDOf(sent.Key) {
		t.Fatalf("other got %s %q on %q", out.Event.Kind, out.Event.Reaction, out.Target)
	}
	quietStatus(t, e.user, 200*time.Millisecond)
}

// TestGateway_panickingConnector: a connector whose Send panics fails those deliveries
// (a transient error each time, then failed for good, visibly), and the gateway keeps
// relaying to the others.
func TestGateway_panickingConnector(t *testing.T) {
	bad := gatewaytest.NewConn("other")
	bad.SetFail(func(bridges.Outbound) error { panic("a bug in the connector") })
	e := newEnv(t, envOpts{extra: []bridges.Connector{bad}, cfg: func(c *gateway.Config) {
		c.Routes[0].Channels = append(c.Routes[0].Channels, gateway.RouteChannel{Channel: "other:room"})
	}})
	if _, err := e.user.Send(context.Background(), "to everyone", e.userKey); err != nil {
		t.Fatal(err)
	}
	if out := e.conn.Next(t); out.Event.Text != "to everyone" {
		t.Fatalf("test got %q", out.Event.Text)
	}
	e.until(t, "the failing entry to end", func() bool {
		n, _ := e.st.CountPending(context.Background(), "other:room")
		return n == 0 && bad.Calls() == 4 // MaxAttempts
	})
	if st := e.gw.States()["other"]; st.State != bridges.StateConnected {
		t.Errorf("the connector's state after its panics: %v", st)
	}
}

// steppedClock is a clock a test moves forward; its timers are the system's.
type steppedClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	c.at = c.at.Add(d)
	c.mu.Unlock()
}

func (c *steppedClock) NewTimer(d time.Duration) gateway.Timer {
	return gateway.SystemClock{}.NewTimer(d)
}
