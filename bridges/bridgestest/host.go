// Package bridgestest tests connectors against the bridges contract, in the shape of
// testing/fstest and testing/slogtest: Host is a recording bridges.Host (what the
// gateway would be told), Start runs a connector in sessions as the gateway does, and
// TestConnector is the conformance suite every connector runs against its real server.
//
// The Host stands in for the gateway in-process: the contract is a Go interface, not a
// network, so there is nothing to run in the gateway's place. It checks what the
// gateway checks (Event.Validate, the origin network) and records everything else.
//
// It is for _test.go files only (test/archtest checks) and, like the connectors it
// tests, imports no statusgate package but bridges.
package bridgestest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// DefaultTimeout bounds every wait of a Host or Runner unless its Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// StateReport is one Host.ReportState call.
type StateReport struct {
	State bridges.State
	Err   error
}

// Attempt is one Host.Deliver call and what it returned.
type Attempt struct {
	Event bridges.Event
	Err   error
}

// Host is a recording bridges.Host. Its zero value is not usable; build it with
// NewHost. All methods are safe for concurrent use.
type Host struct {
	// Timeout bounds the Wait methods. NewHost sets DefaultTimeout.
	Timeout time.Duration

	network string
	logs    *syncBuffer
	log     *slog.Logger

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every record
	attempts []Attempt
	events   []bridges.Event // accepted, in order
	states   []StateReport
	stateAt  int // WaitState's cursor into states
	eventsAt int // events WaitEvents counted
	deliver  func(context.Context, bridges.Event) error
}

// NewHost returns a Host for a connector named network. It logs at debug level into a
// buffer (Logs), so that a test can check what the connector logged.
func NewHost(network string) *Host {
	logs := new(syncBuffer)
	return &Host{Timeout: DefaultTimeout, network: network, logs: logs, changed: make(chan struct{}),
		log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("net", network)}
}

// Deliver is bridges.Host.Deliver as the gateway does it: an event that breaks
// Event.Validate, or whose origin is another network, is refused with a permanent
// error; otherwise the function set with SetDeliver decides (nil: accept). Every call
// is recorded (Attempts), accepted events also in Events.
func (h *Host) Deliver(ctx context.Context, ev bridges.Event) error {
	err := ev.Validate()
	if err == nil && ev.Origin.Network != h.network {
		err = fmt.Errorf("%w: origin network %q delivered by connector %q", bridges.ErrInvalidEvent, ev.Origin.Network, h.network)
	}
	if err != nil {
		err = bridges.Permanent(err)
	} else {
		h.mu.Lock()
		deliver := h.deliver
		h.mu.Unlock()
		if deliver != nil {
			err = deliver(ctx, ev)
		}
	}
	h.record(func() {
		h.attempts = append(h.attempts, Attempt{ev, err})
		if err == nil {
			h.events = append(h.events, ev)
		}
	})
	return err
}

// DeliverQueued is bridges.QueueingHost's: Deliver, done before it returns.
func (h *Host) DeliverQueued(ctx context.Context, ev bridges.Event) <-chan error {
	done := make(chan error, 1)
	done <- h.Deliver(ctx, ev)
	return done
}

// ReportState records a state report.
func (h *Host) ReportState(s bridges.State, err error) {
	h.record(func() { h.states = append(h.states, StateReport{s, err}) })
}

// Logger returns the Host's logger ("net" set to the network).
func (h *Host) Logger() *slog.Logger { return h.log }

// Logs returns what the connector logged so far.
func (h *Host) Logs() string { return h.logs.String() }

// SetDeliver makes f decide the result of Deliver for every valid event (nil: accept
// all), for tests of how a connector handles a gateway that refuses or fails.
func (h *Host) SetDeliver(f func(context.Context, bridges.Event) error) {
	h.mu.Lock()
	h.deliver = f
	h.mu.Unlock()
}

// Events returns the accepted events, in order.
func (h *Host) Events() []bridges.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bridges.Event(nil), h.events...)
}

// Attempts returns every Deliver call with its result, in order.
func (h *Host) Attempts() []Attempt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Attempt(nil), h.attempts...)
}

// States returns every state report, in order.
func (h *Host) States() []StateReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]StateReport(nil), h.states...)
}

// WaitEvents waits until n more events were accepted than the previous WaitEvents
// counted (like reading n tokens from a channel of deliveries), and returns every
// event accepted so far; it fails the test after Timeout.
func (h *Host) WaitEvents(t testing.TB, n int) []bridges.Event {
	t.Helper()
	var out []bridges.Event
	h.Until(t, fmt.Sprintf("%d more delivered events", n), func([]bridges.Event, []StateReport) bool {
		if len(h.events) < h.eventsAt+n {
			return false
		}
		h.eventsAt += n
		out = append(out[:0], h.events...)
		return true
	})
	return out
}

// Next waits for the next accepted event after those WaitEvents and Next counted, and
// returns it (like reading one event from a channel of deliveries); it fails the test
// after Timeout.
func (h *Host) Next(t testing.TB) bridges.Event {
	t.Helper()
	var ev bridges.Event
	h.Until(t, "a delivered event", func(events []bridges.Event, _ []StateReport) bool {
		if len(events) <= h.eventsAt {
			return false
		}
		ev = events[h.eventsAt]
		h.eventsAt++
		return true
	})
	return ev
}

// WaitEvent waits for an accepted event for which match is true and returns the first
// one; it fails the test after Timeout.
func (h *Host) WaitEvent(t testing.TB, desc string, match func(bridges.Event) bool) bridges.Event {
	t.Helper()
	var found bridges.Event
	h.Until(t, desc, func(events []bridges.Event, _ []StateReport) bool {
		for _, ev := range events {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// WaitState waits for a report of state want after the one the previous WaitState
// returned (reports of other states in between are passed over), and returns it; it
// fails the test after Timeout. Like reading a channel of reports: each is seen once.
func (h *Host) WaitState(t testing.TB, want bridges.State) StateReport {
	t.Helper()
	var got StateReport
	h.Until(t, "state "+want.String(), func([]bridges.Event, []StateReport) bool {
		for i := h.stateAt; i < len(h.states); i++ {
			if h.states[i].State == want {
				got, h.stateAt = h.states[i], i+1
				return true
			}
		}
		return false
	})
	return got
}

// Changed returns a channel that is closed at the next record (a delivery attempt or
// a state report): a test that retries as the gateway does can wake on it.
func (h *Host) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Until waits until cond, called with the accepted events and the state reports after
// every record (read-only: the Host's own slices, under its lock), is true; it fails the
// test, naming desc, after Timeout.
func (h *Host) Until(t testing.TB, desc string, cond func(events []bridges.Event, states []StateReport) bool) {
	t.Helper()
	timeout := time.NewTimer(h.Timeout)
	defer timeout.Stop()
	for {
		h.mu.Lock()
		ok, changed := cond(h.events, h.states), h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("bridgestest: no %s within %s; states %v; deliveries %v", desc, h.Timeout, h.States(), h.Attempts())
		}
	}
}

// record applies f under the lock and wakes the waiters.
func (h *Host) record(f func()) {
	h.mu.Lock()
	f()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
