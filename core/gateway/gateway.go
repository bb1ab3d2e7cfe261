package gateway

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/records"
)

// Puppets is what the gateway needs of the puppet registry (*puppet.Registry).
type Puppets interface {
	// Key returns the private key of the puppet for id, recording the sighting.
	Key(ctx context.Context, id identity.PuppetID, displayName string) (*ecdsa.PrivateKey, records.Puppet, error)
	// Whois looks puppets up by chat key or network:user.
	Whois(ctx context.Context, query string) ([]records.Puppet, error)
}

// Deps are the services a Gateway runs on. All are required except Registerer and
// OwnKeys.
type Deps struct {
	Ledger Ledger
	// Status is the Status network: StatusOver(client) in production.
	Status  StatusNet
	Puppets Puppets
	// Connectors are the enabled connectors, each with a distinct Name.
	Connectors []bridges.Connector
	// OwnKeys are chat keys ("0x04…") of the gateway's own identities (the node key):
	// messages they sign are never relayed.
	OwnKeys []string
	// Registerer receives the gateway's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Routes keeps the route table (routes.go); nil runs the routes of Config only,
	// and the table cannot change.
	Routes RouteStore
}

// Gateway routes events between the Status chats and the connectors. Build it with
// New and run it with Run.
//
// Lock: mu guards the connector states, the puppet key sets and the route table
// (routes, byChan, outbox); it is a leaf (nothing blocks under it, no I/O). The route
// table changes only at Run's start and through the route methods (routes.go), which
// build a route's outboxes and chat before they publish it.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	ledger  Ledger
	status  StatusNet
	puppets Puppets
	m       *metrics
	limits  *limiter

	// routeStore keeps the route table; routeMu serialises its changes (AddRoute,
	// RemoveRoute: held across their I/O, taken before mu), and runCtx is Run's
	// context while it runs, the lifetime of the routes it starts (nil otherwise).
	routeStore RouteStore
	routeMu    sync.Mutex
	runCtx     context.Context

	conns   map[string]bridges.Connector
	ownKeys map[string]bool

	ingestC chan *ingestReq // to ingestLoop
	markC   chan *markReq   // to markLoop

	mu      sync.Mutex
	states  map[string]ConnectorState
	changed chan struct{}   // closed and replaced at every state or queue depth change (Changed)
	ours    map[string]bool // chat keys of puppets used by this process
	notOur  map[string]bool // chat keys looked up and found to be no puppet (bounded)
	// oursLimit bounds ours (oursLimit; tests lower it).
	oursLimit int
	routes    map[string]*route
	byChan    map[bridges.ChannelID]*route // remote channel → route
	outbox    map[bridges.ChannelID]*outbox
	ready     chan struct{}
	// stopping is closed when Run's context ends: the writers, which outlive the rest,
	// then stop retrying what the store refuses (markGrace).
	stopping chan struct{}
}

// route is one route at run time: its Status chat, its outboxes and their goroutines.
type route struct {
	Route
	status bridges.ChannelID // "status:<chat>"
	dir    map[bridges.ChannelID]Direction
	chat   *statusDest
	// stop ends the route's goroutines (its chat reader and outboxes) and wg waits for
	// them; set when the route starts.
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// ConnectorState is what /readyz shows of one connector.
type ConnectorState struct {
	State bridges.State
	Err   string
	Since time.Time
}

// New checks cfg and deps and builds a gateway. It does no I/O.
func New(cfg Config, deps Deps) (*Gateway, error) {
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if deps.Ledger == nil || deps.Status == nil || deps.Puppets == nil {
		return nil, errors.New("gateway: Ledger, Status and Puppets are required")
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, ledger: deps.Ledger, status: deps.Status, puppets: deps.Puppets,
		routeStore: deps.Routes,
		m:          newMetrics(deps.Registerer), limits: newLimiter(cfg.RateLimit, cfg.Logger),
		conns: map[string]bridges.Connector{}, ownKeys: map[string]bool{},
		states: map[string]ConnectorState{}, changed: make(chan struct{}), ours: map[string]bool{}, notOur: map[string]bool{}, oursLimit: oursLimit,
		routes: map[string]*route{}, byChan: map[bridges.ChannelID]*route{}, outbox: map[bridges.ChannelID]*outbox{},
		ready: make(chan struct{}), stopping: make(chan struct{}),
		ingestC: make(chan *ingestReq, commitQueue), markC: make(chan *markReq, commitQueue)}
	for _, k := range deps.OwnKeys {
		g.ownKeys[k] = true
	}
	for _, c := range deps.Connectors {
		name := c.Name()
		if err := bridges.ValidNetwork(name); err != nil {
			return nil, fmt.Errorf("gateway: connector name: %w", err)
		}
		if name == StatusNetwork || name == GatewayNetwork {
			return nil, fmt.Errorf("gateway: connector name %q is reserved", name)
		}
		if _, dup := g.conns[name]; dup {
			return nil, fmt.Errorf("gateway: two connectors named %q", name)
		}
		g.conns[name] = c
		g.states[name] = ConnectorState{State: bridges.StateUnknown}
	}
	for _, r := range cfg.Routes {
		if err := g.checkRoute(r); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// checkRoute checks what Config.Validate cannot: that a connector carries every
// channel.
func (g *Gateway) checkRoute(r Route) error {
	for _, ch := range r.Channels {
		if _, ok := g.conns[ch.Channel.Network()]; !ok {
			return fmt.Errorf("gateway: route %q: channel %s: no connector named %q", r.Chat, ch.Channel, ch.Channel.Network())
		}
	}
	return nil
}

func trimHash(s string) string {
	if len(s) > 0 && s[0] == '#' {
		return s[1:]
	}
	return s
}

// Run joins every route's chat, runs the connectors and the outboxes, and relays until
// ctx ends. A connector's session that ends is retried after back-off; it never stops
// the others. Run returns nil when ctx ends, or an error when a chat cannot be joined
// or the ledger cannot be read at start.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The writers stop last: readers and outboxes hand them work until they exit.
	writers, stopWriters := context.WithCancel(context.WithoutCancel(ctx))
	var ww sync.WaitGroup
	ww.Go(func() { g.ingestLoop(writers) })
	ww.Go(func() { g.markLoop(writers) })
	defer func() { stopWriters(); ww.Wait() }()
	defer g.stopRoutes()
	defer close(g.stopping) // before the routes stop: their outboxes wait for their marks
	routes, err := g.loadRoutes(ctx)
	if err != nil {
		return err
	}
	g.routeMu.Lock()
	defer func() { // no route changes once Run returns
		g.routeMu.Lock()
		g.runCtx = nil
		g.routeMu.Unlock()
	}()
	g.runCtx = ctx
	for _, r := range routes {
		if err := g.startRoute(ctx, r); err != nil {
			g.routeMu.Unlock()
			return err
		}
	}
	g.routeMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range g.conns {
		wg.Go(func() { g.runConnector(ctx, c) })
	}
	close(g.ready)
	g.mu.Lock()
	n := len(g.routes)
	g.mu.Unlock()
	g.log.Info("gateway running", "routes", n, "connectors", len(g.conns))
	<-ctx.Done()
	wg.Wait()
	return nil
}

// startRoute joins r's Status chat, builds its outboxes, publishes the route and starts
// its goroutines (the chat reader and one per outbox) under ctx.
func (g *Gateway) startRoute(ctx context.Context, r Route) error {
	r.Chat = trimHash(r.Chat)
	sid, err := bridges.NewChannelID(StatusNetwork, r.Chat)
	if err != nil {
		return fmt.Errorf("gateway: route %q: %w", r.Chat, err)
	}
	g.mu.Lock()
	_, running := g.routes[r.Chat]
	for _, ch := range r.Channels {
		if _, ok := g.byChan[ch.Channel]; ok {
			running = true
		}
	}
	g.mu.Unlock()
	if running {
		return fmt.Errorf("gateway: route %q: %w", r.Chat, records.ErrChannelTaken)
	}
	if err := g.joinChannels(ctx, r); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	rt := &route{Route: r, status: sid, dir: map[bridges.ChannelID]Direction{}, stop: stop}
	chat, err := g.status.Join(rctx, r.Chat)
	if err != nil {
		stop()
		return fmt.Errorf("gateway: join %q: %w", r.Chat, err)
	}
	rt.chat = &statusDest{g: g, rt: rt, chat: chat}
	if err := rt.chat.restore(ctx); err != nil {
		stop()
		chat.Leave()
		return fmt.Errorf("gateway: %w", err)
	}
	obs := []*outbox{g.newOutbox(sid, rt, rt.chat)}
	for _, ch := range r.Channels {
		rt.dir[ch.Channel] = ch.Direction
		net := ch.Channel.Network()
		obs = append(obs, g.newOutbox(ch.Channel, rt, &connDest{g: g, rt: rt, c: g.conns[net], net: net}))
	}
	for _, ob := range obs {
		n, err := g.ledger.CountPending(ctx, string(ob.dest))
		if err != nil {
			stop()
			chat.Leave()
			return fmt.Errorf("gateway: read outbox %s: %w", ob.dest, err)
		}
		ob.depth.Store(n)
		g.m.depth.WithLabelValues(string(ob.dest)).Set(float64(n))
	}
	g.mu.Lock()
	g.routes[r.Chat] = rt
	for _, ob := range obs {
		g.outbox[ob.dest] = ob
		if ob.dest != sid {
			g.byChan[ob.dest] = rt
		}
	}
	g.mu.Unlock()
	rt.wg.Go(func() {
		rt.chat.readStatus(rctx)
		chat.Leave()
	})
	for _, ob := range obs {
		rt.wg.Go(func() { ob.run(rctx) })
	}
	return nil
}

// stopRoutes stops every route and waits for their goroutines.
func (g *Gateway) stopRoutes() {
	g.mu.Lock()
	rts := make([]*route, 0, len(g.routes))
	for _, rt := range g.routes {
		rts = append(rts, rt)
	}
	g.mu.Unlock()
	for _, rt := range rts {
		rt.stop()
	}
	for _, rt := range rts {
		rt.wg.Wait()
	}
}

// Ready is closed once Run has joined every chat and started every service.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// States returns each connector's last reported state.
func (g *Gateway) States() map[string]ConnectorState {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]ConnectorState, len(g.states))
	for k, v := range g.states {
		out[k] = v
	}
	return out
}

// QueueDepths returns each destination's pending outbox entries.
func (g *Gateway) QueueDepths() map[string]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int64, len(g.outbox))
	for dest, ob := range g.outbox {
		out[string(dest)] = ob.depth.Load()
	}
	return out
}

// host is the bridges.Host of one connector.
type host struct {
	g   *Gateway
	net string
	log *slog.Logger
	// connected: the current session reported StateConnected (runConnector resets the
	// back-off after such a session).
	connected atomic.Bool
}

func (h *host) Logger() *slog.Logger { return h.log }

func (h *host) ReportState(s bridges.State, err error) {
	if s == bridges.StateConnected {
		h.connected.Store(true)
	}
	st := ConnectorState{State: s, Since: h.g.clock.Now()}
	if err != nil {
		st.Err = err.Error()
	}
	h.g.mu.Lock()
	prev := h.g.states[h.net]
	h.g.states[h.net] = st
	h.g.signalLocked()
	h.g.mu.Unlock()
	h.g.m.setState(h.net, s)
	if prev.State != s {
		lvl := slog.LevelInfo
		if s == bridges.StateBadCredentials || s == bridges.StateTransientDisconnect {
			lvl = slog.LevelWarn
		}
		h.log.Log(context.Background(), lvl, "connector state", "state", s.String(), "err", st.Err)
	}
}

// Deliver is bridges.Host.Deliver: validate, filter, persist, wake the outboxes.
func (h *host) Deliver(ctx context.Context, ev bridges.Event) error {
	return h.deliver(ctx, ev, nil)
}

// DeliverQueued is bridges.QueueingHost.DeliverQueued: Deliver up to the ingest queue;
// ingestLoop answers persisted once the event is written (or why not).
func (h *host) DeliverQueued(ctx context.Context, ev bridges.Event) <-chan error {
	done := make(chan error, 1)
	if err := h.deliver(ctx, ev, done); err != nil {
		done <- err
	}
	return done
}

// deliver is Deliver, or, with queued not nil, DeliverQueued: it returns once ev is
// queued for ingestLoop, which answers on queued when ev is persisted. An event accepted
// and discarded is answered nil here; when deliver returns an error, the caller answers.
func (h *host) deliver(ctx context.Context, ev bridges.Event, queued chan error) error {
	accepted := func() error {
		if queued != nil {
			queued <- nil
		}
		return nil
	}
	if err := ev.Validate(); err != nil {
		return bridges.Permanent(err)
	}
	if ev.Origin.Network != h.net {
		return bridges.Permanent(fmt.Errorf("%w: origin network %q delivered by connector %q",
			bridges.ErrInvalidEvent, ev.Origin.Network, h.net))
	}
	g := h.g
	if ev.Sender.IsBridge {
		g.m.dropped.WithLabelValues(dropLoop).Inc()
		return accepted()
	}
	g.mu.Lock()
	rt := g.byChan[ev.Origin.Channel]
	g.mu.Unlock()
	if rt == nil {
		g.m.dropped.WithLabelValues(dropNoRoute).Inc()
		h.log.Debug("event for a channel in no route", "channel", ev.Origin.Channel)
		return accepted()
	}
	if rt.dir[ev.Origin.Channel] == DirOut {
		g.m.dropped.WithLabelValues(dropDirection).Inc()
		return accepted()
	}
	now := g.clock.Now()
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ok, reason := g.limits.allow(h.net, string(ev.Sender.ID), now); !ok {
		g.m.dropped.WithLabelValues(reason).Inc()
		g.limits.dropped(h.net, string(ev.Sender.ID), reason, now, "channel", ev.Origin.Channel)
		return accepted()
	}
	if ev.Kind == bridges.KindEdit || ev.Kind == bridges.KindDelete {
		ok, err := g.mayChange(ctx, &ev)
		if err != nil {
			return fmt.Errorf("check the author of %s: %w", ev.Target, err)
		}
		if !ok {
			g.m.dropped.WithLabelValues(dropNotAuthor).Inc()
			g.limits.dropped(h.net, string(ev.Sender.ID), dropNotAuthor, g.clock.Now(),
				"kind", ev.Kind.String(), "target", ev.Target, "channel", ev.Origin.Channel)
			return accepted()
		}
	}
	if queued != nil {
		return g.enqueue(ctx, rt, ev, g.destinations(rt, &ev), queued)
	}
	return g.ingest(ctx, rt, ev, true)
}

// mayChange reports whether ev (an edit or a delete) may change its target: the
// target's author may (the same sender of the same network, checked against the
// ledger's copy of the target event), and, for a delete, a sender the connector vouches
// for as a moderator of the channel (Sender.Moderator), audited in the log. A target
// the ledger does not know holds nobody else's words: an edit of it is posted as the
// editor's own new message, a delete of it does nothing.
func (g *Gateway) mayChange(ctx context.Context, ev *bridges.Event) (bool, error) {
	tev, found, err := g.ledger.EventOf(ctx, string(ev.Origin.Channel), string(ev.Target))
	if err == nil && !found {
		// The target may be a copy this gateway just posted, its mark on the way to the
		// ledger: wait for that channel's marks and look again.
		if ob := g.outboxOf(ev.Origin.Channel); ob != nil {
			ob.marked.await(ctx)
			tev, found, err = g.ledger.EventOf(ctx, string(ev.Origin.Channel), string(ev.Target))
		}
	}
	if err != nil || !found {
		return err == nil, err
	}
	target, err := decodeBody(tev.Body)
	if err != nil {
		g.log.Error("ledger event unreadable; edit or delete refused", "channel", ev.Origin.Channel, "target", ev.Target, "err", err)
		return false, nil
	}
	if target.Origin.Network == ev.Origin.Network && target.Sender.ID == ev.Sender.ID {
		return true, nil
	}
	if ev.Kind == bridges.KindDelete && ev.Sender.Moderator {
		g.log.Info("moderator deleted another's message", "net", ev.Origin.Network, "channel", ev.Origin.Channel,
			"moderator", ev.Sender.ID, "author", target.Sender.ID, "target", ev.Target, "message", target.Origin.ID)
		return true, nil
	}
	return false, nil
}

// destinations lists where an event from origin channel src goes in route rt: the
// Status chat (unless it came from there) and every other channel whose direction
// lets messages out.
func (g *Gateway) destinations(rt *route, ev *bridges.Event) []bridges.ChannelID {
	var out []bridges.ChannelID
	if ev.Origin.Network != StatusNetwork && toStatus(ev.Kind) {
		out = append(out, rt.status)
	}
	for _, ch := range rt.Channels {
		if ch.Channel != ev.Origin.Channel && ch.Direction != DirIn {
			out = append(out, ch.Channel)
		}
	}
	return out
}

// toStatus reports whether Status can show an event of kind k: Whisper-era public
// chats have text messages only, so edits become new messages and the rest is
// recorded, not sent.
func toStatus(k bridges.Kind) bool {
	switch k {
	case bridges.KindMessage, bridges.KindAction, bridges.KindNotice, bridges.KindEdit:
		return true
	}
	return false
}

// ingest queues ev, with one outbox entry per destination of route rt, for the
// writer (ingestLoop), which persists it and wakes those outboxes. With wait it
// returns once the event is persisted (nil) or ctx ended; without, once it is queued
// (the Status reader pipelines: queue order is commit order).
func (g *Gateway) ingest(ctx context.Context, rt *route, ev bridges.Event, wait bool, aliases ...string) error {
	return g.ingestTo(ctx, rt, ev, g.destinations(rt, &ev), wait, aliases...)
}

// ingestTo is ingest to the destinations dests.
func (g *Gateway) ingestTo(ctx context.Context, rt *route, ev bridges.Event, dests []bridges.ChannelID, wait bool, aliases ...string) error {
	var done chan error
	if wait {
		done = make(chan error, 1)
	}
	if err := g.enqueue(ctx, rt, ev, dests, done, aliases...); err != nil || !wait {
		return err
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("persist event %s: %w", ev.Origin.ID, err)
		}
		return nil
	case <-ctx.Done():
		// Queued: it may still be persisted; the connector re-delivers if unsure, and
		// the duplicate is a no-op.
		return fmt.Errorf("persist event %s: %w", ev.Origin.ID, ctx.Err())
	}
}

// enqueue queues ev, with one outbox entry per destination in dests, for ingestLoop,
// which answers on done (buffered 1; nil: no answer) once it is persisted.
func (g *Gateway) enqueue(ctx context.Context, rt *route, ev bridges.Event, dests []bridges.ChannelID, done chan error, aliases ...string) error {
	body, err := encodeBody(&ev)
	if err != nil {
		return bridges.Permanent(err)
	}
	ld := make([]records.Dest, 0, len(dests))
	for _, d := range dests {
		e := records.Dest{Dest: string(d), Key: bridges.IdempotencyKey(ev.Origin, d)}
		if ob := g.outboxOf(d); ob != nil {
			e.Clock = ob.to.reserve(&ev)
		}
		ld = append(ld, e)
	}
	r := &ingestReq{rt: rt, dests: dests, in: records.Ingest{Dests: ld, Event: records.Event{Network: ev.Origin.Network,
		Channel: string(ev.Origin.Channel), MsgID: string(ev.Origin.ID), Kind: ev.Kind.String(), Body: body,
		Received: g.clock.Now()}}}
	for _, a := range aliases {
		r.aliases = append(r.aliases, records.Alias{Channel: string(ev.Origin.Channel), MsgID: string(ev.Origin.ID), Alias: a})
	}
	r.done = done
	select {
	case g.ingestC <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("persist event %s: %w", ev.Origin.ID, ctx.Err())
	}
}

// Changed returns a channel closed at the next change of a connector state or a queue
// depth (States, QueueDepths): a caller waiting for one re-reads them when it closes.
func (g *Gateway) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// signalLocked wakes the Changed waiters. Called with g.mu held.
func (g *Gateway) signalLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// outboxOf returns the outbox of dest, nil if none.
func (g *Gateway) outboxOf(dest bridges.ChannelID) *outbox {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.outbox[dest]
}

// connState returns network's connector state, and a channel closed at the next change
// of any connector's state.
func (g *Gateway) connState(network string) (bridges.State, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.states[network].State, g.changed
}

// backoff doubles from min to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	return b.cur
}

// GatewayNetwork is the network name of the gateway's own notices.
const GatewayNetwork = "gateway"

// noticeFailure tells the origin channel of ev, when a connector's, that ev could not be
// delivered to dest: a notice from the gateway, queued in that channel's own outbox
// like any event (in order, retried, idempotent: one notice per failed entry). Called
// by the failing destination's outbox; it does not wait for the notice.
func (g *Gateway) noticeFailure(ctx context.Context, entry int64, ev *bridges.Event, dest bridges.ChannelID) {
	origin := g.outboxOf(ev.Origin.Channel)
	if origin == nil || ev.Origin.Network == StatusNetwork || ev.Origin.Network == GatewayNetwork {
		return
	}
	id, err1 := bridges.NewRemoteMsgID(GatewayNetwork, fmt.Sprintf("failure-%d", entry))
	ch, err2 := bridges.NewChannelID(GatewayNetwork, "notices")
	sender, err3 := bridges.NewRemoteUserID(GatewayNetwork, "statusgate")
	if err := errors.Join(err1, err2, err3); err != nil {
		return
	}
	who := ev.Sender.Name
	if who == "" {
		who = ev.Sender.ID.Local()
	}
	n := bridges.Event{Kind: bridges.KindNotice, Origin: bridges.Origin{Network: GatewayNetwork, Channel: ch, ID: id},
		Sender: bridges.Sender{ID: sender, Name: "statusgate", IsBridge: true}, Time: g.clock.Now(),
		Text: bridges.Escape(fmt.Sprintf("A message from %s could not be delivered to %s.", who, dest))}
	if err := g.ingestTo(ctx, origin.rt, n, []bridges.ChannelID{ev.Origin.Channel}, false); err != nil {
		g.log.Warn("failure notice not queued", "net", ev.Origin.Network, "channel", ev.Origin.Channel, "err", err)
	}
}
