package bridgestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// Harness is what TestConnector needs from a connector's tests: how to build the
// connector for a real server, and how to act on that network as one of its users.
type Harness struct {
	// New builds a fresh connector for the server (its package's New: no I/O). The
	// suite builds one per check, one after the other, all for the same server.
	New func(t *testing.T) bridges.Connector
	// Channel is a channel the connector serves.
	Channel bridges.ChannelID
	// Post posts text into Channel as a user of the network would, through the
	// network (not the connector), retrying as that user's client does when the
	// network answers with a transient failure (an api client retries its POST with
	// the same id). It returns once the network accepted the message.
	Post func(t *testing.T, text string)
	// Seen waits until a user of the network has seen a message holding text in
	// Channel and returns every message seen there so far, in order, as the network
	// shows them (a relay prefix or formatting around the text is fine). It fails the
	// test when the message does not come.
	Seen func(t *testing.T, text string) []string
	// Outage, when set, cuts the connector off from the network (stops the server)
	// and returns the function that ends the outage. nil means the connector has no
	// connection to lose (the api connector is the server itself): the check says so
	// and is skipped.
	Outage func(t *testing.T) (restore func())
	// Goroutines are the prefixes of the functions whose goroutines a Run must not
	// leave behind, such as "github.com/statusgate/statusgate/bridges/irc." and the
	// network SDK's package path. Goroutines in _test.go code are not counted.
	Goroutines []string
}

// TestConnector runs the conformance suite against the connector h builds, each check
// a subtest:
//
//   - StateConnectingFirst: a session reports StateConnecting before anything else,
//     then StateConnected.
//   - EchoIsBridge: what the connector posts and then sees again on its network is
//     delivered, if at all, with Sender.IsBridge set; a user's message is not.
//   - OnePostPerKey: a second Send of the same Outbound.Key after a success returns
//     the same Receipt and posts nothing more.
//   - StableOrigin: an event the gateway failed to accept is delivered again, with the
//     same Origin (by the network's redelivery or the connector's own retry).
//   - TransientWhileDisconnected: during an outage Send fails with an error wrapping
//     bridges.ErrTransient, and works again after it.
//   - SendAfterRun: once Run returned, Send fails at once with bridges.ErrTransient.
//   - NoGoroutineLeft: after Run returned, none of its goroutines is left.
func TestConnector(t *testing.T, h Harness) {
	t.Run("StateConnectingFirst", func(t *testing.T) {
		_, host, _ := h.start(t)
		states := host.States()
		if len(states) == 0 || states[0].State != bridges.StateConnecting {
			t.Errorf("first state reports %v, want connecting first", states)
		}
	})
	t.Run("EchoIsBridge", func(t *testing.T) {
		c, host, _ := h.start(t)
		mine := marker("echo")
		if _, err := c.Send(h.ctx(t), h.outbound(mine)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		h.Seen(t, mine)
		theirs := marker("user")
		h.Post(t, theirs)
		ev := host.WaitEvent(t, "the user's message", func(ev bridges.Event) bool { return strings.Contains(ev.Text, theirs) })
		if ev.Sender.IsBridge {
			t.Errorf("a user's message delivered with IsBridge: %+v", ev)
		}
		for _, a := range host.Attempts() {
			if strings.Contains(a.Event.Text, mine) && !a.Event.Sender.IsBridge {
				t.Errorf("the connector's own message came back without IsBridge: %+v", a.Event)
			}
		}
	})
	t.Run("OnePostPerKey", func(t *testing.T) {
		c, _, _ := h.start(t)
		first := marker("once")
		out := h.outbound(first)
		r1, err := c.Send(h.ctx(t), out)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		r2, err := c.Send(h.ctx(t), out)
		if err != nil {
			t.Fatalf("second Send of key %s: %v", out.Key, err)
		}
		if r1 != r2 {
			t.Errorf("second Send of one key: receipt %+v, first %+v", r2, r1)
		}
		// What the connection carried before the next message has arrived by then.
		next := marker("next")
		if _, err := c.Send(h.ctx(t), h.outbound(next)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		n := 0
		for _, s := range h.Seen(t, next) {
			if strings.Contains(s, first) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("one key posted %d times", n)
		}
	})
	t.Run("StableOrigin", func(t *testing.T) {
		_, host, _ := h.start(t)
		text := marker("again")
		var refused atomic.Bool
		host.SetDeliver(func(_ context.Context, ev bridges.Event) error {
			if strings.Contains(ev.Text, text) && refused.CompareAndSwap(false, true) {
				return fmt.Errorf("bridgestest refuses the first delivery: %w", bridges.ErrTransient)
			}
			return nil
		})
		h.Post(t, text)
		host.WaitEvent(t, "the redelivered message", func(ev bridges.Event) bool { return strings.Contains(ev.Text, text) })
		var origins []bridges.Origin
		for _, a := range host.Attempts() {
			if strings.Contains(a.Event.Text, text) {
				origins = append(origins, a.Event.Origin)
			}
		}
		if len(origins) < 2 {
			t.Fatalf("%d deliveries of a refused event, want it again", len(origins))
		}
		for _, o := range origins[1:] {
			if o != origins[0] {
				t.Errorf("redelivered with origin %+v, first %+v", o, origins[0])
			}
		}
	})
	t.Run("TransientWhileDisconnected", func(t *testing.T) {
		if h.Outage == nil {
			t.Skip("bridgestest: this connector has no connection to lose (Harness.Outage is nil)")
		}
		c, host, _ := h.start(t)
		restore := h.Outage(t)
		restored := false
		defer func() {
			if !restored {
				restore()
			}
		}()
		// Until the connector notices the outage, a Send may still succeed or time out,
		// and the gateway would retry it; once it has, a Send fails fast and transiently.
		h.retry(t, host, "a transient Send during the outage", func() (bool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), host.Timeout)
			defer cancel()
			_, err := c.Send(ctx, h.outbound(marker("down")))
			if bridges.IsPermanent(err) {
				return false, fmt.Errorf("Send during an outage failed permanently: %w", err)
			}
			return errors.Is(err, bridges.ErrTransient), nil
		})
		restore()
		restored = true
		after := h.outbound(marker("back"))
		h.retry(t, host, "a Send after the outage", func() (bool, error) {
			_, err := c.Send(h.ctx(t), after)
			if bridges.IsPermanent(err) {
				return false, fmt.Errorf("Send after the outage failed permanently: %w", err)
			}
			return err == nil, nil
		})
		h.Seen(t, after.Event.Text)
	})
	t.Run("SendAfterRun", func(t *testing.T) {
		c, _, r := h.start(t)
		if err := r.Stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Send(ctx, h.outbound(marker("late")))
		if !errors.Is(err, bridges.ErrTransient) || ctx.Err() != nil {
			t.Errorf("Send after Run returned: %v (ctx %v), want an error wrapping ErrTransient at once", err, ctx.Err())
		}
	})
	t.Run("NoGoroutineLeft", func(t *testing.T) {
		before := h.goroutines()
		c, host, r := h.start(t)
		text := marker("busy")
		if _, err := c.Send(h.ctx(t), h.outbound(text)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		theirs := marker("user")
		h.Post(t, theirs)
		host.WaitEvent(t, "the user's message", func(ev bridges.Event) bool { return strings.Contains(ev.Text, theirs) })
		if err := r.Stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// A goroutine's exit has no event to wait on: look again until the deadline.
		deadline := time.Now().Add(5 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			left := h.goroutines()
			for id := range before {
				delete(left, id)
			}
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				var stacks []string
				for _, s := range left {
					stacks = append(stacks, s)
				}
				t.Fatalf("%d goroutines left after Run returned:\n%s", len(left), strings.Join(stacks, "\n\n"))
			}
			<-tick.C
		}
	})
}

// start builds a connector, runs it and waits until it is connected.
func (h Harness) start(t *testing.T) (bridges.Connector, *Host, *Runner) {
	t.Helper()
	c := h.New(t)
	host := NewHost(c.Name())
	r := Start(t, c, host)
	host.WaitState(t, bridges.StateConnected)
	return c, host, r
}

// ctx is a context for one call into the connector, ended with the test.
func (h Harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	t.Cleanup(cancel)
	return ctx
}

// outbound is a Status message for h.Channel with a fresh idempotency key.
func (h Harness) outbound(text string) bridges.Outbound {
	key := make([]byte, 16)
	rand.Read(key)
	return bridges.Outbound{
		Event: bridges.Event{Kind: bridges.KindMessage,
			Origin: bridges.Origin{Network: "status", Channel: "status:bridgestest", ID: bridges.RemoteMsgID("status:0x" + hex.EncodeToString(key))},
			Sender: bridges.Sender{ID: "status:0x04bb", Name: "Test Sender"}, Text: text, Time: time.Now()},
		Channel: h.Channel,
		Key:     hex.EncodeToString(key),
	}
}

// retry calls try as the gateway's outbox retries a delivery (exponential back-off
// from 10 ms to 1 s) until it reports done or an error, failing the test on the error
// or after the Host's Timeout.
func (h Harness) retry(t *testing.T, host *Host, what string, try func() (done bool, err error)) {
	t.Helper()
	deadline := time.NewTimer(host.Timeout)
	defer deadline.Stop()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		done, err := try()
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		next := time.NewTimer(wait)
		select {
		case <-next.C:
		case <-deadline.C:
			next.Stop()
			t.Fatalf("no %s within %s", what, host.Timeout)
		}
	}
}

// goroutines returns the stacks of the running goroutines that are in one of
// h.Goroutines and in no _test.go file, by goroutine header.
func (h Harness) goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		id := strings.Fields(header)
		if len(id) < 2 || strings.Contains(g, "_test.go:") {
			continue
		}
		if slices.ContainsFunc(h.Goroutines, func(p string) bool { return strings.Contains(g, "\n"+p) }) {
			out[id[1]] = g
		}
	}
	return out
}

// marker returns a text no other check uses: "bridgestest <what> <random>".
func marker(what string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "bridgestest " + what + " " + hex.EncodeToString(b)
}
