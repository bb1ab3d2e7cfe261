package gateway_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/gateway/gatewaytest"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/records"
)

// joinConn is a connector that serves channels named at run time (bridges.Joiner),
// recording the joins and leaves.
type joinConn struct {
	*gatewaytest.Conn
	mu     sync.Mutex
	joined []string
}

func (c *joinConn) Join(_ context.Context, ch bridges.ChannelID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joined = append(c.joined, "+"+string(ch))
	return nil
}

func (c *joinConn) Leave(_ context.Context, ch bridges.ChannelID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joined = append(c.joined, "-"+string(ch))
	return nil
}

func (c *joinConn) log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.joined)
}

// TestGateway_routesAtRunTime: a route added while the gateway runs carries messages
// both ways at once (its channel joined), is in the table after a restart and still
// carries them, and once removed carries nothing (its channel left). Bad additions
// change nothing.
func TestGateway_routesAtRunTime(t *testing.T) {
	net := newMemNet()
	db := filepath.Join(t.TempDir(), "gw.db")
	secret, _ := identity.GenerateSecret(rand.Reader)
	conn := &joinConn{Conn: gatewaytest.NewConn("test")}
	start := func() *env {
		return newEnv(t, envOpts{net: net, dbPath: db, secret: secret, conn: conn.Conn, wrap: conn, routes: true})
	}
	e := start()
	ctx := context.Background()
	dev := gateway.Route{Chat: "dev", Channels: []gateway.RouteChannel{{Channel: "test:dev"}}}
	if err := e.gw.AddRoute(ctx, dev); err != nil {
		t.Fatal(err)
	}
	if got := conn.log(); !slices.Contains(got, "+test:dev") {
		t.Errorf("joins %v, want test:dev joined", got)
	}
	user := net.user(t, "dev")
	both := func(e *env, n string) {
		t.Helper()
		if _, err := user.Send(ctx, "from status "+n, e.userKey); err != nil {
			t.Fatal(err)
		}
		if out := conn.Next(t); out.Channel != "test:dev" || out.Event.Text != "from status "+n {
			t.Fatalf("connector got %q in %s", out.Event.Text, out.Channel)
		}
		ev := remoteEvent(t, "dev-"+n, "alice", "Alice", "from test "+n)
		ev.Origin.Channel = "test:dev"
		if err := e.host.Deliver(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if m := nextStatus(t, user); m.Text != "[test] <Alice> from test "+n {
			t.Fatalf("dev got %q", m.Text)
		}
	}
	both(e, "1")

	// Bad additions: refused, the table unchanged.
	before := e.gw.Routes()
	for name, tc := range map[string]struct {
		r    gateway.Route
		want error
	}{
		"bad chat":        {gateway.Route{Chat: "Bad Chat"}, gateway.ErrInvalidRoute},
		"unknown network": {gateway.Route{Chat: "x", Channels: []gateway.RouteChannel{{Channel: "nope:x"}}}, gateway.ErrInvalidRoute},
		"bad channel":     {gateway.Route{Chat: "x", Channels: []gateway.RouteChannel{{Channel: "nonetwork"}}}, gateway.ErrInvalidRoute},
		"status channel":  {gateway.Route{Chat: "x", Channels: []gateway.RouteChannel{{Channel: "status:x"}}}, gateway.ErrInvalidRoute},
		"duplicate":       {gateway.Route{Chat: "dev"}, records.ErrRouteExists},
		"channel taken":   {gateway.Route{Chat: "x", Channels: []gateway.RouteChannel{{Channel: "test:room"}}}, records.ErrChannelTaken},
	} {
		if err := e.gw.AddRoute(ctx, tc.r); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if err := e.gw.RemoveRoute(ctx, "nonesuch"); !errors.Is(err, records.ErrNoRoute) {
		t.Errorf("remove an unknown route: %v", err)
	}
	if after := e.gw.Routes(); !slices.EqualFunc(before, after, func(a, b gateway.Route) bool {
		return a.Chat == b.Chat && slices.Equal(a.Channels, b.Channels)
	}) {
		t.Errorf("refused changes changed the table: %+v, was %+v", after, before)
	}

	// A restart: the route is in the table and carries messages.
	e.stop()
	e = start()
	if got := e.gw.Routes(); len(got) != 2 || got[0].Chat != "dev" {
		t.Fatalf("routes after a restart: %+v", got)
	}
	both(e, "2")

	// Removed: nothing more either way, the channel left.
	if err := e.gw.RemoveRoute(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if got := conn.log(); got[len(got)-1] != "-test:dev" {
		t.Errorf("joins %v, want test:dev left last", got)
	}
	if _, err := user.Send(ctx, "after removal", e.userKey); err != nil {
		t.Fatal(err)
	}
	ev := remoteEvent(t, "dev-3", "alice", "Alice", "after removal")
	ev.Origin.Channel = "test:dev"
	if err := e.host.Deliver(ctx, ev); err != nil {
		t.Fatal(err)
	}
	conn.Quiet(t, 300*time.Millisecond)
	quietStatus(t, user, 300*time.Millisecond)
	if got := e.gw.Routes(); len(got) != 1 || got[0].Chat != "status" {
		t.Fatalf("routes after removal: %+v", got)
	}
}
