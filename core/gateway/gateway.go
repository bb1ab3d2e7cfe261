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
	"github.com/statusgate/statusgate/core/status"
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
	Ledger  Ledger
	Status  *status.Client
	Puppets Puppets
	// Connectors are the enabled connectors, each with a distinct Name.
	Connectors []bridges.Connector
	// OwnKeys are chat keys ("0x04…") of the gateway's own identities (the node key):
	// messages they sign are never relayed.
	OwnKeys []string
	// Registerer receives the gateway's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Joined, if set, is called once for each route's chat after it is joined, on the
	// chat's goroutine (cmd/bridge uses it to start a mailserver catch-up).
	Joined func(ctx context.Context, ch *status.Chat)
}

// Gateway routes events between the Status chats and the connectors. Build it with
// New and run it with Run.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	ledger  Ledger
	status  *status.Client
	puppets Puppets
	joined  func(context.Context, *status.Chat)
	m       *metrics
	limits  *limiter

	conns   map[string]bridges.Connector
	routes  []*route
	byChan  map[bridges.ChannelID]*route // remote channel → route
	outbox  map[bridges.ChannelID]*outbox
	ownKeys map[string]bool

	ingestC chan *ingestReq // to ingestLoop
	markC   chan *markReq   // to markLoop

	mu     sync.Mutex
	states map[string]ConnectorState
	ours   map[string]bool // chat keys of puppets used by this process
	notOur map[string]bool // chat keys looked up and found to be no puppet (bounded)
	ready  chan struct{}
	// stopping is closed when Run's context ends: the writers, which outlive the rest,
	// then stop retrying what the store refuses (markGrace).
	stopping chan struct{}
}

// route is one configured route at run time.
type route struct {
	Route
	status bridges.ChannelID // "status:<chat>"
	dir    map[bridges.ChannelID]Direction

	chatMu sync.Mutex
	chat   *status.Chat // set once joined
	joined chan struct{}
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
	g := &Gateway{cfg: cfg, log: cfg.Logger, ledger: deps.Ledger, status: deps.Status, puppets: deps.Puppets,
		joined: deps.Joined, m: newMetrics(deps.Registerer), limits: newLimiter(cfg.RateLimit, cfg.Logger),
		conns: map[string]bridges.Connector{}, byChan: map[bridges.ChannelID]*route{},
		outbox: map[bridges.ChannelID]*outbox{}, ownKeys: map[string]bool{},
		states: map[string]ConnectorState{}, ours: map[string]bool{}, notOur: map[string]bool{},
		ready: make(chan struct{}), stopping: make(chan struct{}), ingestC: make(chan *ingestReq, commitQueue), markC: make(chan *markReq, commitQueue)}
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
		r.Chat = trimHash(r.Chat)
		sid, err := bridges.NewChannelID(StatusNetwork, r.Chat)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %q: %w", r.Chat, err)
		}
		rt := &route{Route: r, status: sid, dir: map[bridges.ChannelID]Direction{}, joined: make(chan struct{})}
		g.routes = append(g.routes, rt)
		g.outbox[sid] = g.newOutbox(sid, rt)
		for _, ch := range r.Channels {
			if _, ok := g.conns[ch.Channel.Network()]; !ok {
				return nil, fmt.Errorf("gateway: route %q: channel %s: no connector named %q", r.Chat, ch.Channel, ch.Channel.Network())
			}
			rt.dir[ch.Channel] = ch.Direction
			g.byChan[ch.Channel] = rt
			g.outbox[ch.Channel] = g.newOutbox(ch.Channel, rt)
		}
	}
	return g, nil
}

func trimHash(s string) string {
	if len(s) > 0 && s[0] == '#' {
		return s[1:]
	}
	return s
}

// Run joins every route's chat, runs the connectors and the outboxes, and relays until
// ctx ends. A connector whose Run fails is logged and restarted with back-off; it
// never stops the others. Run returns nil when ctx ends, or an error when a chat
// cannot be joined or the ledger cannot be read at start.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for dest, ob := range g.outbox {
		n, err := g.ledger.CountPending(ctx, string(dest))
		if err != nil {
			return fmt.Errorf("gateway: read outbox %s: %w", dest, err)
		}
		ob.depth.Store(n)
		g.m.depth.WithLabelValues(string(dest)).Set(float64(n))
	}
	chats := make([]*status.Chat, len(g.routes))
	for i, rt := range g.routes {
		ch, err := g.status.Join(ctx, rt.Chat)
		if err != nil {
			for _, c := range chats[:i] {
				c.Leave()
			}
			return fmt.Errorf("gateway: join %q: %w", rt.Chat, err)
		}
		chats[i] = ch
		// Clocks fixed before a restart may run ahead of the wall clock (a burst faster
		// than one message a millisecond): resume from them, so the order holds.
		last, err := g.ledger.MaxClock(ctx, string(rt.status))
		if err != nil {
			for _, c := range chats[:i+1] {
				c.Leave()
			}
			return fmt.Errorf("gateway: read clock of %q: %w", rt.Chat, err)
		}
		// The last entry may have been split: its parts took up to MaxParts clocks.
		if last > 0 {
			last += uint64(g.cfg.MaxParts)
		}
		ch.RestoreClock(last)
		rt.chatMu.Lock()
		rt.chat = ch
		rt.chatMu.Unlock()
		close(rt.joined)
	}
	// The writers stop last: readers and outboxes hand them work until they exit.
	writers, stopWriters := context.WithCancel(context.WithoutCancel(ctx))
	var ww sync.WaitGroup
	ww.Add(2)
	go func() { defer ww.Done(); g.ingestLoop(writers) }()
	go func() { defer ww.Done(); g.markLoop(writers) }()
	defer func() { stopWriters(); ww.Wait() }()
	var wg sync.WaitGroup
	for i, rt := range g.routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.readStatus(ctx, rt, chats[i])
		}()
	}
	for _, ob := range g.outbox {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ob.run(ctx)
		}()
	}
	for _, c := range g.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.runConnector(ctx, c)
		}()
	}
	close(g.ready)
	g.log.Info("gateway running", "routes", len(g.routes), "connectors", len(g.conns), "outboxes", len(g.outbox))
	<-ctx.Done()
	close(g.stopping)
	for _, ch := range chats {
		ch.Leave()
	}
	wg.Wait()
	return nil
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
	st := ConnectorState{State: s, Since: h.g.cfg.Clock()}
	if err != nil {
		st.Err = err.Error()
	}
	h.g.mu.Lock()
	prev := h.g.states[h.net]
	h.g.states[h.net] = st
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
		return nil
	}
	rt := g.byChan[ev.Origin.Channel]
	if rt == nil {
		g.m.dropped.WithLabelValues(dropNoRoute).Inc()
		h.log.Debug("event for a channel in no route", "channel", ev.Origin.Channel)
		return nil
	}
	if rt.dir[ev.Origin.Channel] == DirOut {
		g.m.dropped.WithLabelValues(dropDirection).Inc()
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = g.cfg.Clock()
	}
	if ev.Kind != bridges.KindJoin && ev.Kind != bridges.KindPart {
		if ok, reason := g.limits.allow(h.net, string(ev.Sender.ID), g.cfg.Clock()); !ok {
			g.m.dropped.WithLabelValues(reason).Inc()
			g.limits.dropped(h.net, string(ev.Sender.ID), reason, g.cfg.Clock(), "channel", ev.Origin.Channel)
			return nil
		}
	}
	if ev.Kind == bridges.KindEdit || ev.Kind == bridges.KindDelete {
		ok, err := g.mayChange(ctx, &ev)
		if err != nil {
			return fmt.Errorf("check the author of %s: %w", ev.Target, err)
		}
		if !ok {
			g.m.dropped.WithLabelValues(dropNotAuthor).Inc()
			g.limits.dropped(h.net, string(ev.Sender.ID), dropNotAuthor, g.cfg.Clock(),
				"kind", ev.Kind.String(), "target", ev.Target, "channel", ev.Origin.Channel)
			return nil
		}
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
		if ob := g.outbox[ev.Origin.Channel]; ob != nil {
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
	dests := g.destinations(rt, &ev)
	body, err := encodeBody(&ev)
	if err != nil {
		return bridges.Permanent(err)
	}
	ld := make([]records.Dest, 0, len(dests))
	for _, d := range dests {
		e := records.Dest{Dest: string(d), Key: bridges.IdempotencyKey(ev.Origin, d)}
		if d.Network() == StatusNetwork {
			// The clock is fixed now, so every retry sends the same message ids: one
			// clock per part of a long text, consecutive.
			if ch := rt.statusChat(); ch != nil {
				e.Clock = ch.NextClocks(ev.Time, len(g.statusTexts(rt, &ev)))
			}
		}
		ld = append(ld, e)
	}
	r := &ingestReq{rt: rt, dests: dests, in: records.Ingest{Dests: ld, Event: records.Event{Network: ev.Origin.Network,
		Channel: string(ev.Origin.Channel), MsgID: string(ev.Origin.ID), Kind: ev.Kind.String(), Body: body,
		Received: g.cfg.Clock()}}}
	for _, a := range aliases {
		r.aliases = append(r.aliases, records.Alias{Channel: string(ev.Origin.Channel), MsgID: string(ev.Origin.ID), Alias: a})
	}
	if wait {
		r.done = make(chan error, 1)
	}
	select {
	case g.ingestC <- r:
	case <-ctx.Done():
		return fmt.Errorf("persist event %s: %w", ev.Origin.ID, ctx.Err())
	}
	if !wait {
		return nil
	}
	select {
	case err := <-r.done:
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

func (rt *route) statusChat() *status.Chat {
	rt.chatMu.Lock()
	defer rt.chatMu.Unlock()
	return rt.chat
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

// notifyFailure tells the origin channel of ev, when it is a connector's and the
// connector can post, that ev could not be delivered to dest. It is one best-effort
// attempt, not an outbox entry: the failure itself is already recorded, logged and
// counted, and a notice about a notice must not queue up behind a broken network.
func (g *Gateway) notifyFailure(ctx context.Context, entry int64, ev *bridges.Event, dest bridges.ChannelID) {
	c, ok := g.conns[ev.Origin.Network]
	if !ok || ev.Kind == bridges.KindJoin || ev.Kind == bridges.KindPart {
		return
	}
	g.mu.Lock()
	up := g.states[ev.Origin.Network].State == bridges.StateConnected
	g.mu.Unlock()
	if !up {
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
		Sender: bridges.Sender{ID: sender, Name: "statusgate", IsBridge: true}, Time: g.cfg.Clock(),
		Text: bridges.Escape(fmt.Sprintf("A message from %s could not be delivered to %s.", who, dest))}
	nctx, cancel := context.WithTimeout(ctx, g.cfg.AttemptTimeout)
	defer cancel()
	out := bridges.Outbound{Event: n, Channel: ev.Origin.Channel, Key: bridges.IdempotencyKey(n.Origin, ev.Origin.Channel)}
	if _, err := guarded(g.log, "send", func() (bridges.Receipt, error) { return c.Send(nctx, out) }); err != nil {
		g.log.Warn("failure notice not posted", "net", ev.Origin.Network, "channel", ev.Origin.Channel, "err", err)
	}
}
