// Package gatewaytest holds what the gateway's tests share: Conn, a scripted connector
// for the network its name says. It stands for a remote network inside the tests (the
// real connectors have their own tests against real servers, bridges/bridgestest): it
// records what the gateway sends and lets a test deliver events as if they came from
// remote users. For _test.go files only (test/archtest checks).
package gatewaytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// Conn is a scripted bridges.Connector. Its methods are safe for concurrent use.
type Conn struct {
	name string
	host chan bridges.Host

	mu    sync.Mutex
	sent  []bridges.Outbound
	keys  map[string]bridges.RemoteMsgID
	fail  func(out bridges.Outbound) error
	calls int
	caps  bridges.Capabilities
	got   chan bridges.Outbound
}

// NewConn returns a connector for network name whose Capabilities are Replies only.
func NewConn(name string) *Conn {
	return &Conn{name: name, host: make(chan bridges.Host, 1), keys: map[string]bridges.RemoteMsgID{},
		got: make(chan bridges.Outbound, 4096), caps: bridges.Capabilities{Replies: true}}
}

// Name is the network name.
func (c *Conn) Name() string { return c.name }

// Capabilities returns what SetCaps set.
func (c *Conn) Capabilities() bridges.Capabilities {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps
}

// SetCaps sets what Capabilities returns.
func (c *Conn) SetCaps(caps bridges.Capabilities) {
	c.mu.Lock()
	c.caps = caps
	c.mu.Unlock()
}

// SetFail makes f decide the error of each Send (nil: succeed).
func (c *Conn) SetFail(f func(out bridges.Outbound) error) {
	c.mu.Lock()
	c.fail = f
	c.mu.Unlock()
}

// Run is one session: connected until ctx ends. The Host is handed to Host.
func (c *Conn) Run(ctx context.Context, h bridges.Host) error {
	h.ReportState(bridges.StateConnecting, nil)
	h.ReportState(bridges.StateConnected, nil)
	select {
	case c.host <- h:
	default:
	}
	<-ctx.Done()
	return nil
}

// Host returns the Host of the first session, failing the test after 20 s.
func (c *Conn) Host(t testing.TB) bridges.Host {
	t.Helper()
	select {
	case h := <-c.host:
		return h
	case <-time.After(20 * time.Second):
		t.Fatal("connector not started within 20 s")
		return nil
	}
}

// Send records out and returns an ID for it: the same for every Send of one key, as a
// network with transaction IDs answers.
func (c *Conn) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		if err := c.fail(out); err != nil {
			return bridges.Receipt{}, err
		}
	}
	if id, ok := c.keys[out.Key]; ok {
		return bridges.Receipt{ID: id}, nil
	}
	id, _ := bridges.NewRemoteMsgID(c.name, fmt.Sprintf("m%d", len(c.sent)+1))
	c.keys[out.Key] = id
	c.sent = append(c.sent, out)
	c.got <- out
	return bridges.Receipt{ID: id}, nil
}

// Record records out as received, for a capability method of a wrapping connector
// (a Redact, an Edit) that posts nothing itself.
func (c *Conn) Record(out bridges.Outbound) { c.got <- out }

// Calls returns how often Send was called.
func (c *Conn) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// IDOf returns the ID Send gave the message posted with key.
func (c *Conn) IDOf(key string) bridges.RemoteMsgID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key]
}

// Next returns the next Outbound the connector received, failing after 20 s.
func (c *Conn) Next(t testing.TB) bridges.Outbound {
	t.Helper()
	select {
	case out := <-c.got:
		return out
	case <-time.After(20 * time.Second):
		t.Fatal("connector got nothing within 20 s")
		return bridges.Outbound{}
	}
}

// Quiet checks that the connector receives nothing for d.
func (c *Conn) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case out := <-c.got:
		t.Fatalf("connector got an unexpected %s %q", out.Event.Kind, out.Event.Text)
	case <-time.After(d):
	}
}
