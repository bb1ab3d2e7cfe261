package matrix

import (
	"context"
	"errors"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/homeserver"
)

// rig is one Dendrite with the connector registered, running, and a human in the
// portal room of chat "dev".
type rig struct {
	hs    *homeserver.Server
	cfg   Config
	c     *Connector
	host  *bridgestest.Host
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
		r.host = bridgestest.NewHost(c.Name())
		r.host.Timeout = 15 * time.Second
	}
	runner := bridgestest.Start(t, c, r.host)
	r.c = c
	r.stop = func() {
		if err := runner.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	select {
	case <-c.Ready():
	case <-runner.Done():
		t.Fatalf("Run stopped early: %v", runner.Ended())
	case <-time.After(30 * time.Second):
		t.Fatalf("portal rooms not ready within 30 s; sessions ended: %v\n%s", runner.Ended(), r.hs.Log())
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
