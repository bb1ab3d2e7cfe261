package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/statusgate/statusgate/records"
)

// TestRoutes: the route table on both backends: add, list in order, refuse a second
// route for a chat or a channel another route holds (writing nothing), replace, delete.
func TestRoutes(t *testing.T) {
	for _, be := range ledgerBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := openLedger(t, be.config(t))
			ctx := context.Background()
			status := records.Route{Chat: "status", Kind: "public", Source: "config", Channels: []records.RouteChannel{
				{Channel: "api:status", Direction: "both"}, {Channel: "irc:#status", Direction: "in"}}}
			dev := records.Route{Chat: "dev", Kind: "public", LongText: "truncate", Source: "api",
				Channels: []records.RouteChannel{{Channel: "api:dev", Direction: "out"}}}
			for _, r := range []records.Route{status, dev} {
				if err := s.AddRoute(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			empty := records.Route{Chat: "quiet", Kind: "public", Source: "api"}
			if err := s.AddRoute(ctx, empty); err != nil {
				t.Fatal(err)
			}
			want := []records.Route{dev, empty, status}
			if got, err := s.Routes(ctx); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("routes %+v, %v\nwant %+v", got, err, want)
			}
			if err := s.AddRoute(ctx, records.Route{Chat: "dev", Kind: "public"}); !errors.Is(err, records.ErrRouteExists) {
				t.Errorf("a second route for dev: %v", err)
			}
			taken := records.Route{Chat: "other", Kind: "public", Channels: []records.RouteChannel{
				{Channel: "api:other", Direction: "both"}, {Channel: "api:dev", Direction: "both"}}}
			if err := s.AddRoute(ctx, taken); !errors.Is(err, records.ErrChannelTaken) {
				t.Errorf("a channel of dev in another route: %v", err)
			}
			if err := s.ReplaceRoute(ctx, taken); !errors.Is(err, records.ErrChannelTaken) {
				t.Errorf("replace with a channel of dev: %v", err)
			}
			if got, _ := s.Routes(ctx); !reflect.DeepEqual(got, want) {
				t.Fatalf("a refused write changed the table: %+v", got)
			}
			status.Channels = status.Channels[:1]
			status.LongText = "truncate"
			if err := s.ReplaceRoute(ctx, status); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRoute(ctx, "dev"); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRoute(ctx, "dev"); !errors.Is(err, records.ErrNoRoute) {
				t.Errorf("delete a deleted route: %v", err)
			}
			want = []records.Route{empty, status}
			if got, err := s.Routes(ctx); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("routes %+v, %v\nwant %+v", got, err, want)
			}
			// dev's channel is free again.
			if err := s.AddRoute(ctx, records.Route{Chat: "dev2", Kind: "public", Channels: dev.Channels}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
