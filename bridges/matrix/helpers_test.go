package matrix

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/homeserver"
)

// testHost stands in for the gateway: it validates and records delivered events and
// reported states, in order.
type testHost struct {
	t      testing.TB
	events chan bridges.Event
	mu     sync.Mutex
	state  bridges.State
}

func newTestHost(t testing.TB) *testHost {
	return &testHost{t: t, events: make(chan bridges.Event, 256)}
}

func (h *testHost) Deliver(ctx context.Context, ev bridges.Event) error {
	if err := ev.Validate(); err != nil {
		return bridges.Permanent(err)
	}
	select {
	case h.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *testHost) ReportState(s bridges.State, _ error) {
	h.mu.Lock()
	h.state = s
	h.mu.Unlock()
}

func (h *testHost) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends log lines to t.Log (shown for failed or -v tests).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// next returns the next delivered event, failing after 15 s.
func (h *testHost) next(t testing.TB) bridges.Event {
	t.Helper()
	select {
	case ev := <-h.events:
		return ev
	case <-time.After(15 * time.Second):
		t.Fatal("no event delivered within 15 s")
		return bridges.Event{}
	}
}

// rig is one Dendrite with the connector registered, running, and a human in the
// portal room of chat "dev".
type rig struct {
	hs    *homeserver.Server
	cfg   Config
	c     *Connector
	host  *testHost
	stop  func()
	room  id.RoomID
	alias id.RoomAlias
	human *mautrix.Client
}

func testConfig(t testing.TB, hsURL string) Config {
	return Config{
		HomeserverURL: hsURL, ServerName: homeserver.ServerName,
		ASToken: "as-" + t.Name(), HSToken: "hs-" + t.Name(),
		Listen: homeserver.FreeAddr(t), Rooms: []RoomConfig{{Chat: "dev"}},
	}
}

// newRig starts Dendrite and the connector; opts adjust the config first.
func newRig(t testing.TB, opts ...func(*Config)) *rig {
	t.Helper()
	// The registration needs the listener address before Dendrite starts, and the
	// homeserver URL is known only after: fill it in between.
	cfg := testConfig(t, "http://127.0.0.1:1")
	for _, o := range opts {
		o(&cfg)
	}
	reg, err := RegistrationYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := homeserver.Start(t, homeserver.Options{Registrations: [][]byte{reg}})
	cfg.HomeserverURL = hs.URL()
	r := &rig{hs: hs, cfg: cfg}
	r.start(t)
	room, ok := r.c.Room("dev")
	if !ok {
		t.Fatal("no room for chat dev")
	}
	r.room, r.alias = room, portalAlias(DefaultGhostPrefix, "dev", homeserver.ServerName)
	r.human = hs.RegisterUser(t, "alice")
	ctx := context.Background()
	if err := r.human.SetDisplayName(ctx, "Alice Human"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.human.JoinRoom(ctx, r.alias.String(), nil); err != nil {
		t.Fatalf("human joins %s: %v", r.alias, err)
	}
	return r
}

// start builds a connector from r.cfg and runs it with a fresh host until stop or the
// end of the test, waiting until its portal rooms are ready.
func (r *rig) start(t testing.TB) {
	t.Helper()
	c, err := New(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.host == nil {
		r.host = newTestHost(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, r.host) }()
	r.c = c
	r.stop = func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			r.stop()
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("portal rooms not ready within 30 s\n%s", r.hs.Log())
	}
}

func outbound(t testing.TB, kind bridges.Kind, sender, name, text, key string) bridges.Outbound {
	t.Helper()
	ch, err := channelID(DefaultName, "dev")
	if err != nil {
		t.Fatal(err)
	}
	return bridges.Outbound{
		Event: bridges.Event{Kind: kind, Text: text,
			Origin: bridges.Origin{Network: "status", Channel: "status:dev", ID: bridges.RemoteMsgID("status:" + key)},
			Sender: bridges.Sender{ID: bridges.RemoteUserID(sender), Name: name}},
		Channel: ch, Key: key,
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// getEvent is the human's GetEvent, retried while the homeserver answers M_NOT_FOUND
// for up to 10 s: Dendrite's client API learns of a new event asynchronously, so an
// event just sent may not be readable yet.
func (r *rig) getEvent(ctx context.Context, room id.RoomID, ev id.EventID) (*event.Event, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := r.human.GetEvent(ctx, room, ev)
		if err == nil || !errors.Is(err, mautrix.MNotFound) || time.Now().After(deadline) {
			return got, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
