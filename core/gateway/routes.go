package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/records"
)

// The route table at run time. The routes of Config are loaded into the RouteStore at
// every start (replacing the stored route of the same chat), then every stored route
// starts: those added through AddRoute survive a restart. AddRoute and RemoveRoute
// change the table while Run runs: persisted first, then applied (a route's chat joined
// and its outboxes started, or stopped). A route is a Status conversation and its
// channels; Kind "public" (a public chat) is the only kind yet, and the table keeps the
// kind so that 1:1 and group conversations can be routes later.

// RouteStore persists the route table; store.Store implements it. Writes are atomic:
// a refused write changes nothing.
type RouteStore interface {
	// Routes returns every route.
	Routes(ctx context.Context) ([]records.Route, error)
	// AddRoute adds r; records.ErrRouteExists when r.Chat has a route,
	// records.ErrChannelTaken when a channel of r is in another.
	AddRoute(ctx context.Context, r records.Route) error
	// ReplaceRoute writes r in place of r.Chat's route; records.ErrChannelTaken when a
	// channel of r is in another.
	ReplaceRoute(ctx context.Context, r records.Route) error
	// DeleteRoute removes chat's route; records.ErrNoRoute when there is none.
	DeleteRoute(ctx context.Context, chat string) error
}

// Errors of the route table's changes. The store's records.ErrRouteExists,
// records.ErrChannelTaken and records.ErrNoRoute come through wrapped.
var (
	// ErrInvalidRoute: a route breaks a rule (chat name, channel ID, direction, a
	// network without a connector).
	ErrInvalidRoute = errors.New("invalid route")
	// ErrNotRunning: the route table changes only while Run runs, with a RouteStore.
	ErrNotRunning = errors.New("gateway not running with a route table")
)

// routeKindPublic is the kind of a route whose chat is a public chat.
const routeKindPublic = "public"

// Route sources, records.Route.Source.
const (
	sourceConfig = "config"
	sourceAPI    = "api"
)

// record is r as the route table keeps it.
func (r Route) record(source string) records.Route {
	rec := records.Route{Chat: trimHash(r.Chat), Kind: routeKindPublic, LongText: r.LongText.String(), Source: source}
	for _, ch := range r.Channels {
		rec.Channels = append(rec.Channels, records.RouteChannel{Channel: string(ch.Channel), Direction: ch.Direction.String()})
	}
	return rec
}

// routeOf reads a route of the table.
func routeOf(rec records.Route) (Route, error) {
	if rec.Kind != routeKindPublic {
		return Route{}, fmt.Errorf("%w: route %s: kind %q", ErrInvalidRoute, rec.Chat, rec.Kind)
	}
	lt, err := ParseLongText(rec.LongText)
	if err != nil {
		return Route{}, fmt.Errorf("%w: route %s: %v", ErrInvalidRoute, rec.Chat, err)
	}
	r := Route{Chat: rec.Chat, LongText: lt}
	for _, ch := range rec.Channels {
		dir, err := ParseDirection(ch.Direction)
		if err != nil {
			return Route{}, fmt.Errorf("%w: route %s: %v", ErrInvalidRoute, rec.Chat, err)
		}
		r.Channels = append(r.Channels, RouteChannel{Channel: bridges.ChannelID(ch.Channel), Direction: dir})
	}
	return r, nil
}

// checkNewRoute checks r alone (Route.problems) and its networks (checkRoute).
func (g *Gateway) checkNewRoute(r Route) error {
	if errs := r.problems("route"); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidRoute, errors.Join(errs...))
	}
	if err := g.checkRoute(r); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRoute, err)
	}
	return nil
}

// loadRoutes writes the routes of Config into the table and returns every route of
// the table to start. A stored route that no longer passes (its connector is gone)
// is skipped, with an error in the log.
func (g *Gateway) loadRoutes(ctx context.Context) ([]Route, error) {
	if g.routeStore == nil {
		return g.cfg.Routes, nil
	}
	for _, r := range g.cfg.Routes {
		if err := g.routeStore.ReplaceRoute(ctx, r.record(sourceConfig)); err != nil {
			return nil, fmt.Errorf("gateway: load route %q: %w", r.Chat, err)
		}
	}
	recs, err := g.routeStore.Routes(ctx)
	if err != nil {
		return nil, fmt.Errorf("gateway: read routes: %w", err)
	}
	var out []Route
	for _, rec := range recs {
		r, err := routeOf(rec)
		if err == nil {
			err = g.checkNewRoute(r)
		}
		if err != nil {
			g.log.Error("stored route not started", "chat", rec.Chat, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// AddRoute adds r to the route table of the running gateway: checked, persisted, and
// started (its chat joined, its channels joined where the connector is a
// bridges.Joiner, its outboxes running), so that it carries messages at once and after
// every restart. Errors: ErrInvalidRoute, records.ErrRouteExists,
// records.ErrChannelTaken (nothing changed), ErrNotRunning, or a failure to start it
// (then it is removed again).
func (g *Gateway) AddRoute(ctx context.Context, r Route) error {
	r.Chat = trimHash(r.Chat)
	if err := g.checkNewRoute(r); err != nil {
		return err
	}
	g.routeMu.Lock()
	defer g.routeMu.Unlock()
	if g.runCtx == nil || g.routeStore == nil {
		return ErrNotRunning
	}
	if err := g.routeStore.AddRoute(ctx, r.record(sourceAPI)); err != nil {
		return err
	}
	if err := g.startRoute(g.runCtx, r); err != nil {
		if derr := g.routeStore.DeleteRoute(context.WithoutCancel(ctx), r.Chat); derr != nil {
			g.log.Error("route that did not start not removed from the table", "chat", r.Chat, "err", derr)
		}
		return err
	}
	g.log.Info("route added", "chat", r.Chat, "channels", len(r.Channels))
	return nil
}

// RemoveRoute removes chat's route: from the table, then stopped (its goroutines end,
// its channels are left where the connector is a bridges.Joiner). Its pending
// deliveries stay in the ledger, and resume if the route comes back. Errors:
// records.ErrNoRoute, ErrNotRunning.
func (g *Gateway) RemoveRoute(ctx context.Context, chat string) error {
	chat = trimHash(chat)
	g.routeMu.Lock()
	defer g.routeMu.Unlock()
	if g.runCtx == nil || g.routeStore == nil {
		return ErrNotRunning
	}
	if err := g.routeStore.DeleteRoute(ctx, chat); err != nil {
		return err
	}
	g.stopRoute(ctx, chat)
	g.log.Info("route removed", "chat", chat)
	return nil
}

// Routes returns the routes running, by chat.
func (g *Gateway) Routes() []Route {
	g.mu.Lock()
	out := make([]Route, 0, len(g.routes))
	for _, rt := range g.routes {
		r := rt.Route
		r.Channels = slices.Clone(r.Channels)
		out = append(out, r)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Chat, b.Chat) })
	return out
}

// stopRoute unpublishes chat's route, stops its goroutines and waits for them, then
// leaves its channels.
func (g *Gateway) stopRoute(ctx context.Context, chat string) {
	g.mu.Lock()
	rt := g.routes[chat]
	if rt != nil {
		delete(g.routes, chat)
		delete(g.outbox, rt.status)
		for _, ch := range rt.Channels {
			delete(g.byChan, ch.Channel)
			delete(g.outbox, ch.Channel)
		}
	}
	g.mu.Unlock()
	if rt == nil {
		return
	}
	rt.stop()
	rt.wg.Wait()
	for _, ch := range rt.Channels {
		if j, ok := g.conns[ch.Channel.Network()].(bridges.Joiner); ok {
			if _, err := guarded(g.log, "leave", func() (struct{}, error) { return struct{}{}, j.Leave(ctx, ch.Channel) }); err != nil {
				g.log.Warn("connector did not leave the channel", "channel", ch.Channel, "err", err)
			}
		}
	}
}

// joinChannels has r's channels served by their connectors where they are
// bridges.Joiners.
func (g *Gateway) joinChannels(ctx context.Context, r Route) error {
	for _, ch := range r.Channels {
		if j, ok := g.conns[ch.Channel.Network()].(bridges.Joiner); ok {
			if _, err := guarded(g.log, "join", func() (struct{}, error) { return struct{}{}, j.Join(ctx, ch.Channel) }); err != nil {
				return fmt.Errorf("gateway: route %q: join %s: %w", r.Chat, ch.Channel, err)
			}
		}
	}
	return nil
}
