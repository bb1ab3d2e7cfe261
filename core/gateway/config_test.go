package gateway_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/gateway/gatewaytest"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
)

func TestConfig_validateReportsEveryProblem(t *testing.T) {
	c := gateway.Config{Routes: []gateway.Route{
		{Chat: "status", Channels: []gateway.RouteChannel{{Channel: "api:status"}, {Channel: "nonetwork"}}},
		{Chat: "#status", Channels: []gateway.RouteChannel{{Channel: "api:status"}}},
		{Chat: "", Channels: []gateway.RouteChannel{{Channel: "status:status"}, {Channel: "gateway:x"}}},
	}, NickFormat: "<{nick}>\n"}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"routes[0].channels[1].channel", `routes[1].chat: "status" is also routes[0]`,
		`routes[1].channels[0].channel: "api:status" is also in routes[0].channels[0]`,
		"routes[2].chat: empty", "routes[2].channels[0].channel", "routes[2].channels[1].channel",
		"nick_format",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := (&gateway.Config{}).Validate(); err == nil {
		t.Error("no routes accepted")
	}
	ok := gateway.Config{Routes: []gateway.Route{{Chat: "status", Channels: []gateway.RouteChannel{{Channel: "api:status", Direction: gateway.DirOut}}}}}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseDirection(t *testing.T) {
	for s, want := range map[string]gateway.Direction{"": gateway.DirBoth, "both": gateway.DirBoth, "in": gateway.DirIn, "out": gateway.DirOut} {
		if d, err := gateway.ParseDirection(s); err != nil || d != want {
			t.Errorf("%q: %v %v", s, d, err)
		}
		if want != gateway.DirBoth || s == "both" {
			if back := want.String(); back != s && s != "" {
				t.Errorf("%v.String() = %q", want, back)
			}
		}
	}
	if _, err := gateway.ParseDirection("sideways"); err == nil {
		t.Error("sideways accepted")
	}
}

func TestNew_refusesUnknownOrReservedConnectors(t *testing.T) {
	cfg := gateway.Config{Routes: []gateway.Route{{Chat: "status", Channels: []gateway.RouteChannel{{Channel: "test:room"}}}}}
	if _, err := gateway.New(cfg, gateway.Deps{}); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("missing deps: %v", err)
	}
	sc := newMemNet()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deps := func(conns ...bridges.Connector) gateway.Deps {
		return gateway.Deps{Ledger: st, Status: sc, Puppets: puppet.New(nil, st, nil), Connectors: conns}
	}
	for name, tc := range map[string]struct {
		deps gateway.Deps
		want string
	}{
		"no connector for the channel": {deps(gatewaytest.NewConn("other")), `no connector named "test"`},
		"reserved status":              {deps(gatewaytest.NewConn("test"), gatewaytest.NewConn("status")), "reserved"},
		"reserved gateway":             {deps(gatewaytest.NewConn("test"), gatewaytest.NewConn("gateway")), "reserved"},
		"twice the same name":          {deps(gatewaytest.NewConn("test"), gatewaytest.NewConn("test")), "two connectors"},
	} {
		if _, err := gateway.New(cfg, tc.deps); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := gateway.New(cfg, deps(gatewaytest.NewConn("test"))); err != nil {
		t.Errorf("valid: %v", err)
	}
}
