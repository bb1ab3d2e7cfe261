package slack

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/slackfake"
)

// wait is the deadline of every wait in these tests.
const wait = 10 * time.Second

// Channel IDs of the fake workspace.
const (
	chGeneral = "C0GENERAL"
	chDev     = "C0DEV"
	chOther   = "C0OTHER" // exists on Slack, not served by the connector
)

// testHost stands in for the gateway. It implements the bridges.Host contract
// in-process: the contract is the seam between connector and gateway, not a network,
// so there is no server to run in its place. Deliver checks Event.Validate and wraps a
// failure in bridges.Permanent, as the gateway does.
type testHost struct {
	mu      sync.Mutex
	events  []bridges.Event
	states  []bridges.State
	changed chan struct{} // closed and replaced on every event or state
	deliver func(context.Context, bridges.Event) error

	logs *syncBuffer
	log  *slog.Logger
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

func newTestHost() *testHost {
	logs := new(syncBuffer)
	return &testHost{
		changed: make(chan struct{}),
		logs:    logs,
		log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("net", "slack"),
	}
}

func (h *testHost) Deliver(ctx context.Context, ev bridges.Event) error {
	if err := ev.Validate(); err != nil {
		return bridges.Permanent(err)
	}
	h.mu.Lock()
	deliver := h.deliver
	h.mu.Unlock()
	if deliver != nil {
		if err := deliver(ctx, ev); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
	h.signal()
	return nil
}

func (h *testHost) ReportState(s bridges.State, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.states = append(h.states, s)
	h.signal()
}

// signal wakes the waiters. Called with h.mu held.
func (h *testHost) signal() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *testHost) Logger() *slog.Logger { return h.log }

func (h *testHost) setDeliver(f func(context.Context, bridges.Event) error) {
	h.mu.Lock()
	h.deliver = f
	h.mu.Unlock()
}

// until waits until cond holds for the delivered events and reported states.
func (h *testHost) until(t *testing.T, what string, cond func([]bridges.Event, []bridges.State) bool) {
	t.Helper()
	timeout := time.After(wait)
	for {
		h.mu.Lock()
		ok, ch := cond(h.events, h.states), h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; logs:\n%s", what, h.logs.String())
		}
	}
}

// waitEvent waits for the first delivered event matching match and returns it.
func (h *testHost) waitEvent(t *testing.T, what string, match func(bridges.Event) bool) bridges.Event {
	t.Helper()
	var found bridges.Event
	h.until(t, what, func(evs []bridges.Event, _ []bridges.State) bool {
		for _, ev := range evs {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// waitState waits until state s has been reported.
func (h *testHost) waitState(t *testing.T, s bridges.State) {
	t.Helper()
	h.until(t, "state "+s.String(), func(_ []bridges.Event, states []bridges.State) bool {
		for _, got := range states {
			if got == s {
				return true
			}
		}
		return false
	})
}

func (h *testHost) delivered() []bridges.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bridges.Event(nil), h.events...)
}

// newFake starts a fake workspace with channels and users alice and bob.
func newFake(t testing.TB) *slackfake.Server {
	fake := slackfake.New(t, chGeneral, chDev, chOther)
	fake.AddUser("U0ALICE", "Alice")
	fake.AddUser("U0BOB", "Bob")
	return fake
}

func testConfig(fake *slackfake.Server) Config {
	return Config{
		BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: fake.APIURL(),
		Channels:       []string{chGeneral, chDev},
		RatePerChannel: 1000, Burst: 100, // tests of rate limiting set their own
	}
}

// running is a connector started by start.
type running struct {
	c    *Connector
	host *testHost
	stop func() // cancels Run and waits for it to return
}

// start builds a connector from cfg, runs it until the test ends (or stop) and waits
// until Socket Mode is connected, unless noWait.
func start(t *testing.T, cfg Config, noWait bool) *running {
	t.Helper()
	return startWith(t, cfg, noWait, nil)
}

// startWith is start with edit, if not nil, changing the connector before Run.
func startWith(t *testing.T, cfg Config, noWait bool, edit func(*Connector)) *running {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.retryMin, c.retryMax, c.badCredsRetry = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	if edit != nil {
		edit(c)
	}
	host := newTestHost()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, host) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(wait):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	if !noWait {
		host.waitState(t, bridges.StateConnected)
	}
	return &running{c: c, host: host, stop: stop}
}

func mustChannel(t *testing.T, ch string) bridges.ChannelID {
	t.Helper()
	id, err := channelID(DefaultName, ch)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustMsg(t *testing.T, ch, ts string) bridges.RemoteMsgID {
	t.Helper()
	id, err := msgID(DefaultName, ch, ts)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// statusOutbound is an Outbound as the gateway builds it for a Status message.
func statusOutbound(ch bridges.ChannelID, kind bridges.Kind, id, text string) bridges.Outbound {
	o := bridges.Origin{Network: "status", Channel: "status:#test", ID: bridges.RemoteMsgID("status:" + id)}
	return bridges.Outbound{
		Event: bridges.Event{
			Kind: kind, Origin: o, Text: text, Time: time.Now(),
			Sender: bridges.Sender{ID: "status:0x04abcdef", Name: "Carol"},
		},
		Channel: ch,
		Key:     bridges.IdempotencyKey(o, ch),
	}
}
